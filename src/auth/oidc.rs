//! OIDC JWTs as passwords: a token's `iss` picks a configured issuer (exactly), its `kid` a key
//! of that issuer's JWKS (`source`: a local file re-read on change, or fetched and cached),
//! and `jwt` checks the signature (asymmetric algorithms only), `exp`, `nbf` and `aud`, then
//! maps the claims to a `Subject` (`subject_prefix` + `subject_claim`). Verified tokens are
//! remembered until they expire (`cache`), so a pull's requests cost one signature check.
//! This module decides who a token names; it must not decide what they may do (`rules`) nor
//! answer HTTP requests.

mod cache;
mod fetch;
mod jwt;
mod keys;
mod source;
#[cfg(test)]
mod tests;

use super::{Failure, Subject};
use crate::config::Issuer;
use crate::watch::Watched;
use keys::{KeySet, Miss};
use source::{Clock, Remote, Source};
use std::sync::Arc;

/// Why the configured issuers cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("auth.issuers `{issuer}`: {why}")]
    Issuer { issuer: String, why: String },
}

struct Configured {
    config: Issuer,
    source: Source,
}

/// The configured issuers, their keys, and a cache of verified tokens.
pub struct Oidc {
    issuers: Vec<Configured>,
    verified: cache::Verified,
    /// Read for every time check (unit tests move it forward).
    clock: Arc<Clock>,
}

impl Oidc {
    pub fn new(issuers: &[Issuer]) -> Result<Oidc, SetupError> {
        let clock = Arc::new(Clock::default());
        let mut http: Option<fetch::Http> = None;
        let mut configured: Vec<Configured> = Vec::new();
        for i in issuers {
            let fail = |why: String| SetupError::Issuer {
                issuer: i.issuer.clone(),
                why,
            };
            if configured.iter().any(|c| c.config.issuer == i.issuer) {
                return Err(fail("listed twice; give each issuer once".into()));
            }
            let source = match &i.jwks_file {
                Some(path) => Source::File(
                    Watched::load(path, "JWKS file", KeySet::parse)
                        .map_err(|e| fail(e.to_string()))?,
                ),
                None => {
                    let client = match &http {
                        Some(h) => h.clone(),
                        None => fetch::Http::new().map_err(|e| {
                            fail(format!("cannot load the system's CA certificates: {e}"))
                        })?,
                    };
                    http = Some(client.clone());
                    let url = i.jwks_url.as_deref().unwrap_or(&i.issuer);
                    if plain_http_off_host(url) {
                        tracing::warn!(issuer = %i.issuer, "the keys of this issuer are fetched over plain HTTP from {url}: anyone on the way could swap them; use https");
                    }
                    Source::Remote(Arc::new(Remote::new(
                        &i.issuer,
                        i.jwks_url.as_deref(),
                        client,
                        clock.clone(),
                    )))
                }
            };
            configured.push(Configured {
                config: i.clone(),
                source,
            });
        }
        Ok(Oidc {
            issuers: configured,
            verified: cache::Verified::default(),
            clock,
        })
    }

    /// Verify `jwt` against the issuer its `iss` names; the subject it maps to.
    pub async fn verify(&self, jwt: &str) -> Result<Subject, Failure> {
        let hash = cache::hash(jwt);
        let now = self.clock.unix_now();
        if let Some(s) = self.verified.get(&hash, now) {
            return Ok(s);
        }
        let token = jwt::Unverified::read(jwt)?;
        let Some(issuer) = self.issuers.iter().find(|i| i.config.issuer == token.iss) else {
            let accepted: Vec<String> = self
                .issuers
                .iter()
                .map(|i| format!("`{}`", i.config.issuer))
                .collect();
            return Err(Failure::BadCredentials(format!(
                "the token's issuer `{}` is not accepted here (accepted: {})",
                token.iss.chars().take(80).collect::<String>(),
                accepted.join(", ")
            )));
        };
        let (kid, alg) = (token.kid.as_deref(), token.alg);
        let name = &issuer.config.issuer;
        let mut keys = issuer.source.keys().await?;
        if let Err(miss) = keys.pick(kid, alg) {
            let refetched = match miss.worth_refetching() {
                true => issuer.source.refetch().await,
                false => None,
            };
            match refetched {
                Some(k) => keys = k,
                None => return Err(Failure::BadCredentials(miss.explain(name, alg))),
            }
        }
        let key = keys
            .pick(kid, alg)
            .map_err(|m: Miss| Failure::BadCredentials(m.explain(name, alg)))?;
        let key_name = match kid {
            Some(k) => format!("key `{k}`"),
            None => format!("the only {alg:?} key"),
        };
        jwt::verify(jwt, &token, key, &key_name, &issuer.config, now)?;
        let subject = jwt::subject(&token, &issuer.config)?;
        self.verified.put(hash, subject.clone(), token.exp(), now);
        Ok(subject)
    }
}

/// Whether `url` is plain HTTP to a host other than this one.
fn plain_http_off_host(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    !matches!(host, "localhost" | "127.0.0.1" | "[::1]")
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
