//! The registry listener's TLS (`[tls]`): the rustls server configuration on aws-lc-rs (the
//! crypto provider the AWS SDK uses), offering HTTP/2 and HTTP/1.1 through ALPN; the certificate
//! and key served from their files and re-read when they change (`pair`); the client-certificate
//! verifier for mTLS (`tls.client_ca`); and a verified client certificate's identity
//! (`identity`). It builds configuration only: accepting connections, the handshake and its
//! timer are `crate::listener`'s, and what an identity may do is `crate::auth`'s.

mod identity;
mod pair;

pub use identity::identity;

use crate::config::TlsSettings;
use crate::watch::LoadError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::crypto::{aws_lc_rs, CryptoProvider};
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::server::danger::ClientCertVerifier;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// ALPN protocols offered, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why `[tls]` cannot be put to use at start. Each message names the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate or key file is missing, unreadable, or holds no certificate (key).
    #[error(transparent)]
    File(#[from] LoadError),
    #[error(
        "the TLS private key {} (tls.key) does not match the certificate {} (tls.cert): give \
         the key the certificate was issued for (`openssl x509 -noout -pubkey -in CERT` and \
         `openssl pkey -pubout -in KEY` print the same key for a pair)",
        .key.display(), .cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error(
        "cannot use the client CA bundle {} (tls.client_ca): {why}; give the PEM certificate(s) \
         of the CA that signs client certificates",
        .path.display()
    )]
    ClientCa { path: PathBuf, why: String },
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The registry listener's TLS setup, ready for handshakes. Clones share it.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Read the certificate, key and client CA named by `s` and build the server's TLS
    /// configuration. A missing or unusable file, or a key that is not the certificate's, is an
    /// error naming the file.
    pub fn load(s: &TlsSettings) -> Result<Tls, TlsError> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let resolver = Arc::new(pair::Resolver::load(&s.cert, &s.key)?);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &s.client_ca {
            Some(ca) => builder.with_client_cert_verifier(client_verifier(
                ca,
                s.client_cert_required,
                provider,
            )?),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// What performs a handshake on an accepted connection.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// Client certificates signed by the CAs in `path` are verified; without one, the connection is
/// refused at the handshake when `required`, else accepted without an identity.
fn client_verifier(
    path: &Path,
    required: bool,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let fail = |why: String| TlsError::ClientCa {
        path: path.to_path_buf(),
        why,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in pair::parse_certs(&bytes).map_err(fail)? {
        roots
            .add(cert)
            .map_err(|e| fail(format!("a certificate in it cannot be a trust anchor: {e}")))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder.build().map_err(|e| fail(e.to_string()))
}

/// The identity of the verified client certificate of a finished handshake, if it sent one.
pub fn peer_identity(certs: Option<&[CertificateDer<'static>]>) -> Option<String> {
    certs.and_then(<[_]>::first).and_then(identity)
}
