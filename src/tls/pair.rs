//! The server's certificate and private key, served from their files without a restart: each is
//! a `watch::Watched` file (looked at, at most once a second, when a handshake asks), and the
//! pair served changes when either file has changed and the two match again. A certificate and
//! key that do not match (one file replaced, the other not yet) keep the previous pair, with
//! one WARN line per change seen, so a rotation written in two steps never serves a broken pair.
//! It parses PEM and pairs keys; it must not know about connections.

use super::TlsError;
use crate::watch::Watched;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio_rustls::rustls::crypto::aws_lc_rs::sign::any_supported_type;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::{CertifiedKey, SigningKey};
use tokio_rustls::rustls::{Error, InconsistentKeys};

type Certs = Vec<CertificateDer<'static>>;

/// A private key, loaded for signing with aws-lc-rs.
pub(super) struct Key(Arc<dyn SigningKey>);

/// Serves the current pair to every handshake.
pub(super) struct Resolver {
    cert: Watched<Certs>,
    key: Watched<Key>,
    served: Mutex<Served>,
}

struct Served {
    /// The files' generations last looked at (served or refused).
    generations: (u64, u64),
    pair: Arc<CertifiedKey>,
}

impl Resolver {
    /// Read both files now; they must hold a certificate and the key it was issued for.
    pub(super) fn load(cert_path: &Path, key_path: &Path) -> Result<Resolver, TlsError> {
        let cert = Watched::load(cert_path, "TLS certificate (tls.cert)", parse_certs)?;
        let key = Watched::load(key_path, "TLS private key (tls.key)", parse_key)?;
        let (certs, cert_gen) = cert.current();
        let (k, key_gen) = key.current();
        let pair = matched(&certs, &k).ok_or_else(|| TlsError::KeyMismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        })?;
        Ok(Resolver {
            cert,
            key,
            served: Mutex::new(Served {
                generations: (cert_gen, key_gen),
                pair: Arc::new(pair),
            }),
        })
    }

    /// The pair to serve now (the files re-read first if they changed and a check is due).
    pub(super) fn current(&self) -> Arc<CertifiedKey> {
        let (certs, cert_gen) = self.cert.current();
        let (key, key_gen) = self.key.current();
        let mut s = self
            .served
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if s.generations != (cert_gen, key_gen) {
            s.generations = (cert_gen, key_gen);
            match matched(&certs, &key) {
                Some(pair) => {
                    s.pair = Arc::new(pair);
                    tracing::info!(
                        cert = %self.cert.path().display(),
                        "serving the new TLS certificate"
                    );
                }
                None => tracing::warn!(
                    cert = %self.cert.path().display(),
                    key = %self.key.path().display(),
                    "the TLS certificate and private key do not match (one replaced without the \
                     other?): still serving the previous pair until both files are replaced"
                ),
            }
        }
        s.pair.clone()
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("cert", &self.cert.path())
            .field("key", &self.key.path())
            .finish()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The pair, if the key is the certificate's (or the key cannot tell, as rustls itself allows).
fn matched(certs: &Certs, key: &Key) -> Option<CertifiedKey> {
    let pair = CertifiedKey::new(certs.clone(), key.0.clone());
    match pair.keys_match() {
        Ok(()) | Err(Error::InconsistentKeys(InconsistentKeys::Unknown)) => Some(pair),
        Err(_) => None,
    }
}

/// Every PEM certificate in `bytes`, in order (the server's first, then intermediates).
pub(super) fn parse_certs(bytes: &[u8]) -> Result<Certs, String> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Certs, _>>()
        .map_err(|e| format!("not valid PEM ({e})"))?;
    if certs.is_empty() {
        return Err(
            "no certificate in it: expected PEM `-----BEGIN CERTIFICATE-----` blocks, \
                    the server's certificate first, then its intermediates"
                .into(),
        );
    }
    Ok(certs)
}

/// The first PEM private key in `bytes` (PKCS#8, PKCS#1 RSA or SEC1 EC), ready for signing.
fn parse_key(bytes: &[u8]) -> Result<Key, String> {
    let der = PrivateKeyDer::from_pem_slice(bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => "no private key in it: expected a PEM `-----BEGIN PRIVATE \
                                     KEY-----` (PKCS#8), `RSA PRIVATE KEY` or `EC PRIVATE KEY` \
                                     block"
            .to_string(),
        e => format!("not valid PEM ({e})"),
    })?;
    any_supported_type(&der).map(Key).map_err(|e| {
        format!(
            "a key that cannot sign ({e}): use RSA (2048 bits or more), ECDSA P-256/P-384/P-521 \
             or Ed25519"
        )
    })
}

#[cfg(test)]
#[path = "pair/tests.rs"]
mod tests;
