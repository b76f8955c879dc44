//! A test OIDC issuer: signing keys generated when the test runs (aws-lc-rs; no key is stored
//! anywhere), tokens minted with them, and the issuer's JWKS and discovery document served on
//! 127.0.0.1 by a tiny hyper server that counts its hits and can be told to serve another key
//! set. Shared by the OIDC unit tests (`src/auth/oidc/tests.rs` includes this file through
//! `#[path]`) and the proxy tests, so it uses only crates both see and nothing of `crate::`.

#![allow(dead_code)]

use aws_lc_rs::encoding::AsDer;
use bytes::Bytes;
use http_body_util::Full;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A private signing key and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public key's bytes (for forging an HS256 "signature" with them).
    pub public: Vec<u8>,
    pub jwk: Value,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64_simd::STANDARD.encode_to_string(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl TestKey {
    fn finish(kid: &str, alg: Algorithm, encoding: EncodingKey, public: Vec<u8>) -> TestKey {
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        TestKey {
            kid: kid.to_string(),
            alg,
            encoding,
            public,
            jwk,
        }
    }

    /// A new RSA-2048 key for RS256 (what GitHub Actions and Kubernetes use).
    pub fn rsa(kid: &str) -> TestKey {
        use aws_lc_rs::signature::KeyPair as _;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let encoding =
            EncodingKey::from_rsa_pem(pem("PRIVATE KEY", der.as_ref()).as_bytes()).unwrap();
        let public = pair.public_key().as_ref().to_vec();
        TestKey::finish(kid, Algorithm::RS256, encoding, public)
    }

    /// A new P-256 key for ES256.
    pub fn ec(kid: &str) -> TestKey {
        use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let public = pair.public_key().as_ref().to_vec();
        TestKey::finish(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(der.as_ref()),
            public,
        )
    }

    /// A new Ed25519 key for EdDSA.
    pub fn ed(kid: &str) -> TestKey {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
        let pair = Ed25519KeyPair::generate().unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let public = pair.public_key().as_ref().to_vec();
        TestKey::finish(
            kid,
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(der.as_ref()),
            public,
        )
    }

    /// Another key of the same type under the same `kid` (a forger's).
    pub fn another(&self) -> TestKey {
        match self.alg {
            Algorithm::ES256 => TestKey::ec(&self.kid),
            Algorithm::EdDSA => TestKey::ed(&self.kid),
            _ => TestKey::rsa(&self.kid),
        }
    }

    /// `claims` signed with this key, the header naming its `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        self.sign_with(h, claims)
    }

    /// `claims` signed with this key under `header` (which may name another key).
    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// A JWKS document holding `keys`.
pub fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims as GitHub Actions puts them in its tokens, for `iss` and `aud`, expiring `exp_in`
/// seconds from now (negative: already expired).
pub fn github_claims(iss: &str, aud: &str, exp_in: i64) -> Value {
    json!({
        "iss": iss,
        "aud": aud,
        "sub": "repo:org/app:ref:refs/heads/main",
        "repository": "org/app",
        "ref": "refs/heads/main",
        "run_number": 42,
        "job_workflow_ref": "org/app/.github/workflows/build.yml@refs/heads/main",
        "runner_environment": "github-hosted",
        "iat": now() - 5,
        "nbf": now() - 5,
        "exp": now() + exp_in,
        "groups": ["a", "b"],
    })
}

/// A JWKS (and discovery) server on 127.0.0.1.
pub struct JwksServer {
    pub addr: std::net::SocketAddr,
    jwks: Arc<Mutex<String>>,
    jwks_hits: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    /// Serve `jwks` at `/jwks` and a discovery document naming it at
    /// `/.well-known/openid-configuration`.
    pub async fn start(jwks: String) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body = Arc::new(Mutex::new(jwks));
        let jwks_hits = Arc::new(AtomicUsize::new(0));
        let discovery_hits = Arc::new(AtomicUsize::new(0));
        let (b, jh, dh) = (body.clone(), jwks_hits.clone(), discovery_hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (b, jh, dh) = (b.clone(), jh.clone(), dh.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<_>| {
                        let (status, text) = match req.uri().path() {
                            "/jwks" => {
                                jh.fetch_add(1, Ordering::SeqCst);
                                (200, b.lock().unwrap().clone())
                            }
                            "/.well-known/openid-configuration" => {
                                dh.fetch_add(1, Ordering::SeqCst);
                                let me = format!("http://{addr}");
                                let doc = json!({ "issuer": me, "jwks_uri": format!("{me}/jwks") });
                                (200, doc.to_string())
                            }
                            _ => (404, String::new()),
                        };
                        let resp = http::Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(text)))
                            .unwrap();
                        async move { Ok::<_, std::convert::Infallible>(resp) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        JwksServer {
            addr,
            jwks: body,
            jwks_hits,
            discovery_hits,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`: the issuer this server plays.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    /// Serve another key set from now on (a rotation).
    pub fn set_jwks(&self, jwks: String) {
        *self.jwks.lock().unwrap() = jwks;
    }

    pub fn jwks_hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn discovery_hits(&self) -> usize {
        self.discovery_hits.load(Ordering::SeqCst)
    }
}

/// An address on 127.0.0.1 where nothing listens.
pub async fn closed_addr() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}
