//! The tokens the proxy's token endpoint signs and its registry routes accept: JWTs signed with
//! HS256 under a key from `auth.token_key_file` (so replicas agree) or generated at start, with
//! `iss` and `aud` the service name, a lifetime of `auth.token_ttl_secs`, the subject, and
//! exactly the access granted (`scope::Access`). Verified tokens are cached until they expire,
//! so a pull's hundreds of requests with one token cost one signature check. Signing and
//! checking only; what to grant is `Auth`'s business.

use super::scope::Access;
use super::{Failure, Kind, Subject};
use dashmap::DashMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Verified tokens kept at most; the cache is emptied when it is full (tokens live minutes, so
/// it refills from the few clients active).
const CACHE_MAX: usize = 10_000;
/// The shortest key accepted from a file: HS256's own output size.
const MIN_KEY: usize = 32;

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
    /// How the subject signed in (`password`, `oidc`, `certificate`, `anonymous`).
    kind: String,
    /// The subject's claims that rules look at.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    claims: BTreeMap<String, String>,
}

/// A token's content, once its signature, audience and expiry are checked.
#[derive(Debug)]
pub struct Verified {
    pub subject: Subject,
    pub access: Vec<Access>,
    pub expires: u64,
}

/// A token just signed, as the token endpoint returns it.
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: u64,
}

impl Issued {
    /// `issued_at` as RFC 3339 (`2026-11-27T19:30:00Z`), as the token protocol's answer has it.
    pub fn issued_at_rfc3339(&self) -> String {
        let secs = self.issued_at;
        let (days, rest) = (secs / 86_400, secs % 86_400);
        // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        )
    }
}

/// Signs and checks tokens.
pub struct Tokens {
    service: String,
    ttl: Duration,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Verified tokens by their SHA-256 (a fixed-size key whatever the token's length).
    cache: DashMap<[u8; 32], Arc<Verified>>,
}

/// Why the signing key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read auth.token_key_file {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("auth.token_key_file {path} holds {len} bytes; it needs at least {MIN_KEY} (for example `head -c 48 /dev/urandom | base64 > {path}`)")]
    Short {
        path: std::path::PathBuf,
        len: usize,
    },
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Anonymous => "anonymous",
        Kind::Password => "password",
        Kind::Oidc => "oidc",
        Kind::Certificate => "certificate",
    }
}

fn kind_of(s: &str) -> Kind {
    match s {
        "password" => Kind::Password,
        "oidc" => Kind::Oidc,
        "certificate" => Kind::Certificate,
        _ => Kind::Anonymous,
    }
}

impl Tokens {
    /// With the key in `key_file` (surrounding whitespace ignored), or a random one.
    pub fn new(key_file: Option<&Path>, service: &str, ttl: Duration) -> Result<Tokens, KeyError> {
        let key = match key_file {
            Some(path) => {
                let raw = std::fs::read(path).map_err(|source| KeyError::Read {
                    path: path.into(),
                    source,
                })?;
                let key = raw.trim_ascii().to_vec();
                if key.len() < MIN_KEY {
                    return Err(KeyError::Short {
                        path: path.into(),
                        len: key.len(),
                    });
                }
                key
            }
            // Two v4 UUIDs: 244 bits from the operating system's random source.
            None => [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
                .iter()
                .flat_map(|u| *u.as_bytes())
                .collect(),
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[service]);
        validation.set_issuer(&[service]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 5;
        validation.validate_nbf = true;
        Ok(Tokens {
            service: service.into(),
            ttl,
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            cache: DashMap::new(),
        })
    }

    /// A token for `subject` granting exactly `access`.
    pub fn issue(&self, subject: &Subject, access: Vec<Access>) -> Issued {
        let iat = now();
        let claims = Claims {
            iss: self.service.clone(),
            aud: self.service.clone(),
            sub: subject.name.to_string(),
            exp: subject.expires.map_or(iat + self.ttl.as_secs(), |e| {
                e.min(iat + self.ttl.as_secs())
            }),
            nbf: iat.saturating_sub(1),
            iat,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
            kind: kind_name(subject.kind).into(),
            claims: (*subject.claims).clone(),
        };
        let claims_exp = claims.exp;
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail");
        Issued {
            token,
            expires_in: claims_exp.saturating_sub(iat),
            issued_at: iat,
        }
    }

    /// Check a token: signature, issuer, audience, expiry.
    pub fn verify(&self, token: &str) -> Result<Arc<Verified>, Failure> {
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(v) = self.cache.get(&key) {
            if v.expires > now() {
                return Ok(v.clone());
            }
            drop(v);
            self.cache.remove(&key);
            return Err(Failure::Expired);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Failure::Expired,
                _ => Failure::BadCredentials(format!("the bearer token is not valid here: {e}")),
            })?;
        let c = data.claims;
        let verified = Arc::new(Verified {
            subject: Subject {
                name: Arc::from(c.sub.as_str()),
                kind: kind_of(&c.kind),
                claims: Arc::new(c.claims),
                expires: Some(c.exp),
            },
            access: c.access,
            expires: c.exp,
        });
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(key, verified.clone());
        Ok(verified)
    }
}

#[cfg(test)]
mod tests;
