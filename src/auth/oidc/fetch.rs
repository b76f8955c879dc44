//! Getting an issuer's JWKS over HTTP(S): from `jwks_url`, or from the `jwks_uri` of
//! `{issuer}/.well-known/openid-configuration` (OIDC Discovery). Each GET is bounded (10 s for
//! the whole exchange, bodies of at most 1 MiB, status 200 only) and its failure is a sentence
//! naming the URL. No caching, no rate limits (`source` decides when to call); the URLs come
//! only from the config and the issuer's discovery document, never from a token.

use super::keys::KeySet;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// The most one GET may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest body read (real key sets are a few KiB).
pub const MAX_BODY: usize = 1024 * 1024;

/// An HTTP/HTTPS client trusting the system's CA certificates.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Http {
    pub fn new() -> std::io::Result<Http> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Http {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// The body of a 200 answer to `GET url`, or why there is none.
    async fn get(&self, url: &str) -> Result<Bytes, String> {
        let req = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "ecr-proxy")
            .body(Empty::new())
            .map_err(|e| format!("`{url}` is not a URL this client can use: {e}"))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("GET {url} failed: {}", chain(&e)))?;
            let status = resp.status();
            if status != http::StatusCode::OK {
                return Err(format!("GET {url} answered {status}"));
            }
            Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| format!("reading the answer of GET {url} failed: {e}"))
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| format!("GET {url} took longer than {} s", TIMEOUT.as_secs()))?
    }

    /// The `jwks_uri` that `issuer`'s discovery document names.
    pub async fn discover(&self, issuer: &str) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: Option<String>,
            jwks_uri: Option<String>,
        }
        let d: Discovery = serde_json::from_slice(&body)
            .map_err(|e| format!("{url} is not an OpenID discovery document: {e}"))?;
        if let Some(named) = d.issuer.as_deref() {
            if named != issuer {
                return Err(format!(
                    "{url} describes issuer `{named}`, not `{issuer}` (set `jwks_url` if this \
                     is intended)"
                ));
            }
        }
        d.jwks_uri
            .ok_or_else(|| format!("{url} names no `jwks_uri`; set `jwks_url` for this issuer"))
    }

    /// The key set at `url`.
    pub async fn jwks(&self, url: &str) -> Result<KeySet, String> {
        let body = self.get(url).await?;
        KeySet::parse(&body).map_err(|why| format!("the answer of GET {url} cannot be used: {why}"))
    }
}

/// An error with its sources ("client error (Connect): tcp connect error: Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
