//! OIDC JWTs as passwords (to be written): see `Oidc`.

use super::{Failure, Subject};
use crate::config::Issuer;

/// Why the configured issuers cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("auth.issuers `{issuer}`: {why}")]
    Issuer { issuer: String, why: String },
}

/// The configured issuers, their keys, and a cache of verified tokens.
pub struct Oidc {
    _issuers: Vec<Issuer>,
}

impl Oidc {
    pub fn new(issuers: &[Issuer]) -> Result<Oidc, SetupError> {
        Ok(Oidc {
            _issuers: issuers.to_vec(),
        })
    }

    /// Verify `jwt` against the issuer its `iss` names; the subject it maps to.
    pub async fn verify(&self, _jwt: &str) -> Result<Subject, Failure> {
        Err(Failure::BadCredentials("OIDC is not built yet".into()))
    }
}

/// Whether a password is shaped like a JWT (three base64url parts), so it goes to `Oidc`
/// rather than the htpasswd file.
pub fn looks_like_jwt(s: &str) -> bool {
    let mut parts = s.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    ok(parts.next()) && ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}
