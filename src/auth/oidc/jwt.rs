//! One JWT, read and checked: its header and claims before the signature is known good (only
//! to pick the issuer and the key), the signature and the time and audience claims through
//! `jsonwebtoken`, and the `Subject` its claims map to. Every refusal says what was wrong in
//! words a client can act on, and never quotes the token itself (claim values it quotes are
//! cut short). No keys are fetched here and nothing is cached.

use super::{Failure, Subject};
use crate::auth::Kind;
use crate::config::Issuer;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 60;
/// Longer tokens are refused before any work (real OIDC tokens are 1–2 KiB).
pub const MAX_LEN: usize = 16 * 1024;

fn bad(why: impl Into<String>) -> Failure {
    Failure::BadCredentials(why.into())
}

/// A claim value quoted in a message: at most 80 characters.
fn quote(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A token's header and claims, not yet verified.
pub struct Unverified {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub iss: String,
    pub claims: Map<String, Value>,
}

#[derive(serde::Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

fn part<T: serde::de::DeserializeOwned>(b64: &str, what: &str) -> Result<T, Failure> {
    let bytes = base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(b64)
        .map_err(|_| bad(format!("the token's {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "the token's {what} is not the JSON a JWT holds: {e}"
        ))
    })
}

/// The asymmetric signature algorithms accepted; `none` and the HMAC ones are refused with
/// the reason (a symmetric "signature" could be made by anyone holding the public key).
fn algorithm(name: &str) -> Result<Algorithm, Failure> {
    Ok(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        n if n.eq_ignore_ascii_case("none") => {
            return Err(bad("unsigned tokens (`alg: none`) are not accepted"))
        }
        n if n.starts_with("HS") => {
            return Err(bad(format!(
                "`alg: {}` is not accepted: an OIDC token must be signed with its issuer's \
                 private key (RS*, PS*, ES256, ES384 or EdDSA)",
                quote(n)
            )))
        }
        n => {
            return Err(bad(format!(
                "the token's algorithm `{}` is not supported (RS*, PS*, ES256, ES384 or EdDSA)",
                quote(n)
            )))
        }
    })
}

impl Unverified {
    /// Read a token's header and claims (`jwt` is shaped as `looks_like_jwt` checks).
    pub fn read(jwt: &str) -> Result<Unverified, Failure> {
        if jwt.len() > MAX_LEN {
            return Err(bad(format!(
                "the token is {} bytes long; at most {MAX_LEN} are accepted",
                jwt.len()
            )));
        }
        let mut parts = jwt.split('.');
        let (Some(h), Some(c), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("the token is not a JWT (three base64url parts)"));
        };
        let header: RawHeader = part(h, "header")?;
        if header.crit.is_some() {
            return Err(bad(
                "the token's header lists critical extensions (`crit`), which this registry \
                 does not support",
            ));
        }
        if header.kid.as_ref().is_some_and(|k| k.len() > 256) {
            return Err(bad("the token's `kid` is longer than 256 characters"));
        }
        let alg = algorithm(&header.alg)?;
        let claims: Map<String, Value> = part(c, "claims")?;
        let iss = match claims.get("iss") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(bad("the token's `iss` claim is not a string")),
            None => return Err(bad("the token has no `iss` claim")),
        };
        Ok(Unverified {
            alg,
            kid: header.kid,
            iss,
            claims,
        })
    }

    /// `exp`, as seconds since the epoch (checked present by `verify`).
    pub fn exp(&self) -> u64 {
        self.claims
            .get("exp")
            .and_then(Value::as_f64)
            .map(|f| f.max(0.0) as u64)
            .unwrap_or(0)
    }

    /// The token's audiences, quoted for a message.
    fn audiences(&self) -> String {
        match self.claims.get("aud") {
            Some(Value::String(s)) => format!("`{}`", quote(s)),
            Some(Value::Array(a)) => a
                .iter()
                .take(5)
                .map(|v| format!("`{}`", quote(v.as_str().unwrap_or("?"))))
                .collect::<Vec<_>>()
                .join(", "),
            _ => "none".into(),
        }
    }
}

/// Check `jwt`'s signature with `key` (`key_name` in messages), `iss` and `aud` against
/// `issuer`, then `exp` (required) and `nbf` at `now` (Unix seconds) with `LEEWAY_SECS` of
/// skew. The time checks are ours rather than `jsonwebtoken`'s so that they and the cache of
/// verified tokens read one clock.
pub fn verify(
    jwt: &str,
    token: &Unverified,
    key: &DecodingKey,
    key_name: &str,
    issuer: &Issuer,
    now: u64,
) -> Result<(), Failure> {
    let mut v = Validation::new(token.alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = true;
    v.set_required_spec_claims(&["iss", "aud"]);
    v.set_audience(&issuer.audiences);
    v.set_issuer(&[issuer.issuer.as_str()]);
    if let Err(err) = jsonwebtoken::decode::<Value>(jwt, key, &v) {
        return Err(refusal(err.kind(), token, key_name, issuer));
    }
    let exp = match token.claims.get("exp") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(_) => return Err(bad("the token's `exp` claim is not a number")),
        None => {
            return Err(bad(
                "the token has no `exp` claim; tokens without an expiry are not accepted",
            ))
        }
    };
    if now as f64 > exp + LEEWAY_SECS as f64 {
        return Err(Failure::Expired);
    }
    match token.claims.get("nbf") {
        Some(Value::Number(n)) if n.as_f64().unwrap_or(0.0) > (now + LEEWAY_SECS) as f64 => {
            Err(bad("the token is not valid yet (its `nbf` is ahead)"))
        }
        Some(Value::Number(_)) | None => Ok(()),
        Some(_) => Err(bad("the token's `nbf` claim is not a number")),
    }
}

fn refusal(kind: &ErrorKind, token: &Unverified, key_name: &str, issuer: &Issuer) -> Failure {
    match kind {
        ErrorKind::InvalidSignature => bad(format!(
            "bad signature: the token is not signed by {key_name} of issuer `{}`",
            issuer.issuer
        )),
        ErrorKind::InvalidAudience => bad(format!(
            "the token's audience ({}) is not accepted; expected one of: {}",
            token.audiences(),
            issuer
                .audiences
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        ErrorKind::InvalidIssuer => bad(format!("the token's issuer is not `{}`", issuer.issuer)),
        ErrorKind::MissingRequiredClaim(c) => bad(format!("the token has no `{c}` claim")),
        ErrorKind::InvalidClaimFormat(c) => bad(format!("the token's `{c}` claim is malformed")),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat | ErrorKind::InvalidEcdsaKey => {
            bad(format!(
                "{key_name} of issuer `{}` cannot verify {:?} signatures",
                issuer.issuer, token.alg
            ))
        }
        other => bad(format!("the token cannot be verified: {other:?}")),
    }
}

/// The subject a verified token's claims map to: the issuer's prefix and its subject claim;
/// the string, number and boolean claims as text.
pub fn subject(token: &Unverified, issuer: &Issuer) -> Result<Subject, Failure> {
    let claim = issuer.subject_claim.as_str();
    let name = match token.claims.get(claim) {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::String(_)) => return Err(bad(format!("the token's `{claim}` claim is empty"))),
        Some(_) => {
            return Err(bad(format!(
                "the token's `{claim}` claim (the subject) is not a string"
            )))
        }
        None => {
            return Err(bad(format!(
                "the token has no `{claim}` claim, which names the subject for issuer `{}`",
                issuer.issuer
            )))
        }
    };
    let claims: BTreeMap<String, String> = token
        .claims
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect();
    Ok(Subject {
        name: Arc::from(format!("{}{name}", issuer.subject_prefix)),
        kind: Kind::Oidc,
        claims: Arc::new(claims),
        expires: Some(token.exp()),
    })
}
