//! AWS Signature Version 4 verification for the local ECR emulator.
//!
//! Owns: checking header-based SigV4 signatures (`Authorization: AWS4-HMAC-SHA256 ...`) on incoming
//! requests against the configured credentials, the credential scope and the clock.
//! Must not touch: HTTP responses (callers map [`AuthError`] via `aws_code`/`status`) or the store.

use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const MAX_SKEW_SECS: i64 = 15 * 60;

#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No Authorization header (and no presigned query).
    #[error("Missing Authentication Token")]
    Missing,
    /// Authorization header present but unusable (unparseable, wrong algorithm, no X-Amz-Date, ...).
    #[error("{0}")]
    Incomplete(String),
    /// Access key id not among the configured credentials.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    /// The credential scope names another service than expected.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService { expected: String },
    /// Signature mismatch.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    SignatureMismatch,
    /// X-Amz-Date more than 15 minutes away from now (either way).
    #[error("{0}")]
    Expired(String),
}

impl AuthError {
    /// The AWS error code that goes in `__type`.
    pub fn aws_code(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownAccessKey => "UnrecognizedClientException",
            AuthError::WrongService { .. } | AuthError::SignatureMismatch => {
                "InvalidSignatureException"
            }
            AuthError::Expired(_) => "RequestExpired",
        }
    }

    /// HTTP status, as AWS's common errors list them: 400 for a malformed header
    /// (IncompleteSignature) and a date more than 15 minutes off (RequestExpired), 403 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Incomplete(_) | AuthError::Expired(_) => 400,
            _ => 403,
        }
    }
}

fn incomplete(msg: impl Into<String>) -> AuthError {
    AuthError::Incomplete(msg.into())
}

/// The parsed `Authorization` header.
struct AuthHeader<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

/// Verify a request. `now_unix` is seconds since the epoch (passed in so tests are deterministic).
/// `service` is the expected signing name ("ecr"). Any region is accepted and returned.
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    credentials: &[Credentials],
    service: &str,
    now_unix: i64,
) -> Result<Verified, AuthError> {
    let payload_sha256: [u8; 32] = Sha256::digest(body).into();
    verify_hashed(
        method,
        uri,
        headers,
        &payload_sha256,
        credentials,
        service,
        now_unix,
    )
}

/// `verify` for a body whose SHA-256 the caller computed as it arrived.
pub fn verify_hashed(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    payload_sha256: &[u8; 32],
    credentials: &[Credentials],
    service: &str,
    now_unix: i64,
) -> Result<Verified, AuthError> {
    precheck(uri, headers, credentials, service, now_unix)?.verify(
        method,
        uri,
        headers,
        payload_sha256,
    )
}

/// What `precheck` found: a well-formed header from a known access key, in scope and in time.
/// Only the signature itself, which covers the body, is left to check.
pub struct Prechecked<'a> {
    parsed: AuthHeader<'a>,
    amz_date: &'a str,
    cred: &'a Credentials,
}

/// Everything that can be checked without the body: the `Authorization` header's shape, the
/// date and its distance from now, the credential scope and the access key. Callers run it
/// before they read a (possibly large) body, so a request that cannot succeed costs no read.
pub fn precheck<'a>(
    uri: &Uri,
    headers: &'a HeaderMap,
    credentials: &'a [Credentials],
    service: &str,
    now_unix: i64,
) -> Result<Prechecked<'a>, AuthError> {
    let Some(auth) = headers.get(http::header::AUTHORIZATION) else {
        let query = uri.query().unwrap_or("");
        if query.split('&').any(|p| p.starts_with("X-Amz-Algorithm=")) {
            return Err(incomplete(
                "Presigned (query string) signatures are not supported.",
            ));
        }
        return Err(AuthError::Missing);
    };
    let auth = auth
        .to_str()
        .map_err(|_| incomplete("Authorization header is not valid ASCII."))?;
    let parsed = parse_authorization(auth)?;
    let Some(amz_date) = headers.get("x-amz-date") else {
        return Err(incomplete(format!(
            "Authorization header requires existence of an 'X-Amz-Date' header. Authorization={auth}"
        )));
    };
    let amz_date = amz_date.to_str().unwrap_or_default();
    let request_time = parse_amz_date(amz_date).ok_or_else(|| {
        incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        ))
    })?;
    if !parsed
        .signed_headers
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("host"))
    {
        return Err(incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    if parsed.date != &amz_date[..8] {
        return Err(incomplete(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            parsed.date, &amz_date[..8]
        )));
    }
    if parsed.service != service {
        return Err(AuthError::WrongService {
            expected: service.to_string(),
        });
    }
    let skew = request_time - now_unix;
    if skew.abs() > MAX_SKEW_SECS {
        let (now, limit) = (
            format_amz_date(now_unix),
            format_amz_date(now_unix + skew.signum() * MAX_SKEW_SECS),
        );
        return Err(AuthError::Expired(if skew < 0 {
            format!("Signature expired: {amz_date} is now earlier than {limit} ({now} - 15 min.)")
        } else {
            format!("Signature not yet current: {amz_date} is still later than {limit} ({now} + 15 min.)")
        }));
    }
    let cred = credentials
        .iter()
        .find(|c| c.access_key_id == parsed.access_key_id)
        .ok_or(AuthError::UnknownAccessKey)?;

    Ok(Prechecked {
        parsed,
        amz_date,
        cred,
    })
}

impl Prechecked<'_> {
    /// Check the signature over the request, given the SHA-256 of its body.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        payload_sha256: &[u8; 32],
    ) -> Result<Verified, AuthError> {
        let (parsed, amz_date, cred) = (&self.parsed, self.amz_date, self.cred);
        let payload_hash = hex::encode(payload_sha256);
        if let Some(declared) = headers.get("x-amz-content-sha256") {
            let declared = declared.as_bytes();
            if declared != b"UNSIGNED-PAYLOAD"
                && !declared.eq_ignore_ascii_case(payload_hash.as_bytes())
            {
                tracing::debug!("x-amz-content-sha256 does not match the received body");
                return Err(AuthError::SignatureMismatch);
            }
        }
        let canonical =
            canonical_request(method, uri, headers, parsed.signed_headers, &payload_hash);
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{}/{}/{}/aws4_request\n{}",
            parsed.date,
            parsed.region,
            parsed.service,
            hex::encode(Sha256::digest(&canonical))
        );
        let mut key = hmac(
            format!("AWS4{}", cred.secret_access_key).as_bytes(),
            parsed.date.as_bytes(),
        );
        for part in [parsed.region, parsed.service, "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let provided = hex::decode(parsed.signature).map_err(|_| AuthError::SignatureMismatch)?;
        let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC accepts any key length");
        mac.update(string_to_sign.as_bytes());
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&provided).is_err() {
            tracing::debug!(
                canonical_request = %String::from_utf8_lossy(&canonical),
                string_to_sign = %string_to_sign,
                "SigV4 signature mismatch"
            );
            return Err(AuthError::SignatureMismatch);
        }
        Ok(Verified {
            access_key_id: cred.access_key_id.clone(),
            region: parsed.region.to_string(),
        })
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn parse_authorization(auth: &str) -> Result<AuthHeader<'_>, AuthError> {
    let (algorithm, rest) = auth.trim().split_once(' ').unwrap_or((auth.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported Authorization algorithm '{algorithm}'; expected {ALGORITHM}."
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for (key, value) in rest.split(',').filter_map(|p| p.split_once('=')) {
        match key.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    let missing: String = [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ]
    .iter()
    .filter(|(_, v)| v.is_none_or(str::is_empty))
    .map(|(name, _)| format!("Authorization header requires '{name}' parameter. "))
    .collect();
    if !missing.is_empty() {
        return Err(incomplete(format!("{missing}Authorization={auth}")));
    }
    let scope: Vec<&str> = credential.unwrap_or_default().split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(incomplete(format!(
            "Credential should be scoped to a valid region, service and terminator. Authorization={auth}"
        )));
    };
    if terminator != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    Ok(AuthHeader {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed_headers.unwrap_or_default(),
        signature: signature.unwrap_or_default(),
    })
}

mod canonical;
use canonical::{canonical_request, format_amz_date, parse_amz_date};

#[cfg(test)]
mod tests;
