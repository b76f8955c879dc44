//! AWS Signature Version 4 verification for the local ECR emulator.
//!
//! Owns: checking header-based SigV4 signatures (`Authorization: AWS4-HMAC-SHA256 ...`) on incoming
//! requests against the configured credentials, the credential scope and the clock.
//! Must not touch: HTTP responses (callers map [`AuthError`] via `aws_code`/`status`) or the store.

use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const MAX_SKEW_SECS: i64 = 15 * 60;
/// Everything except the RFC 3986 unreserved characters is percent-encoded.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

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

/// Builds the canonical request (bytes, because header values need not be UTF-8).
fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = format!(
        "{}\n{}\n{}\n",
        method.as_str(),
        canonical_uri(uri.path()),
        canonical_query(uri.query().unwrap_or(""))
    )
    .into_bytes();
    for name in signed_headers.split(';') {
        let name = name.to_ascii_lowercase();
        let mut values: Vec<Vec<u8>> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                v.as_bytes()
                    .split(u8::is_ascii_whitespace)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(&b' ')
            })
            .collect();
        if values.is_empty() && name == "host" {
            // HTTP/2 carries the host in `:authority`, which ends up in the URI.
            values.extend(uri.authority().map(|a| a.as_str().as_bytes().to_vec()));
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&values.join(&b','));
        out.push(b'\n');
    }
    out.extend_from_slice(format!("\n{signed_headers}\n{payload_hash}").as_bytes());
    out
}

/// Non-S3 canonical URI: remove dot segments and empty segments (RFC 3986 5.2.4, as the SDKs do),
/// then URI-encode each segment of the path as received (which makes it doubly encoded overall).
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::new();
    for s in &segments {
        out.push('/');
        out.extend(utf8_percent_encode(s, RFC3986));
    }
    let trailing = ["/", "/.", "/.."].iter().any(|e| path.ends_with(e));
    if segments.is_empty() || trailing {
        out.push('/');
    }
    out
}

/// Decodes each key and value, re-encodes per RFC 3986 and sorts by key, then value.
fn canonical_query(query: &str) -> String {
    let encode = |s: &str| -> String {
        let decoded = percent_decode_str(s).collect::<Vec<u8>>();
        percent_encoding::percent_encode(&decoded, RFC3986).to_string()
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(k), encode(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYYMMDDTHHMMSSZ` into seconds since the epoch.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Formats seconds since the epoch as `YYYYMMDDTHHMMSSZ` (inverse of `days_from_civil`).
fn format_amz_date(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests;
