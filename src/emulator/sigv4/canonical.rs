//! The pieces of SigV4 that are pure text: the canonical request (method, URI, query, signed
//! headers, payload hash) and the `YYYYMMDDTHHMMSSZ` dates. No keys, no verdicts: `sigv4` owns
//! those.

use http::{HeaderMap, Method, Uri};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything except the RFC 3986 unreserved characters is percent-encoded.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Builds the canonical request (bytes, because header values need not be UTF-8).
pub(super) fn canonical_request(
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
pub(super) fn canonical_uri(path: &str) -> String {
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
pub(super) fn parse_amz_date(s: &str) -> Option<i64> {
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
pub(super) fn format_amz_date(unix: i64) -> String {
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
