//! The requests of one blob upload, each sent to whichever replica the test names (a base URL
//! plus the `Location` path another replica handed out): POST, PATCH with `Content-Range`,
//! status GET, PUT with `?digest=`. A broken connection or no answer within `BOUND` is an
//! `Err` naming the request, so tests can tell "answered" from "reset" or "hung".

use crate::support::Resp;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use std::time::Duration;

/// How long one request may go unanswered before the test calls it hung (a bound, so the test
/// stops by itself; nothing is asserted about speed).
pub const BOUND: Duration = Duration::from_secs(120);

type Body = BoxBody<Bytes, std::io::Error>;

/// `method url` with `headers` and a whole `body`: its answer read whole, or why there was none.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Resp, String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Body>();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = Full::new(body.into())
        .map_err(|never| match never {})
        .boxed();
    let exchange = async {
        let resp = client
            .request(req.body(body).unwrap())
            .await
            .map_err(|e| format!("{method} {url}: no answer ({e:?})"))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("{method} {url}: the answer broke off ({e:?})"))?
            .to_bytes();
        Ok(Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(BOUND, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("{method} {url}: no answer within {BOUND:?}")))
}

/// `send`, failing the test if there is no answer.
pub async fn answered(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
    send(method, url, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// POST `repo`'s upload on `base`.
pub async fn begin(base: &str, repo: &str) -> Result<Resp, String> {
    let url = format!("{base}/v2/{repo}/blobs/uploads/");
    send("POST", &url, &[], Bytes::new()).await
}

/// PATCH `chunk`, which starts at byte `start` of the blob, to the upload at `location` on `base`.
pub async fn patch(base: &str, location: &str, start: usize, chunk: &[u8]) -> Result<Resp, String> {
    let range = format!("{start}-{}", start + chunk.len() - 1);
    let headers = [
        ("Content-Range", range.as_str()),
        ("Content-Type", "application/octet-stream"),
    ];
    let url = format!("{base}{location}");
    send("PATCH", &url, &headers, chunk.to_vec()).await
}

/// PUT `?digest=` (and `body`, the last bytes, if any) to the upload at `location` on `base`.
pub async fn put(base: &str, location: &str, digest: &str, body: &[u8]) -> Result<Resp, String> {
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{base}{location}{sep}digest={digest}");
    send("PUT", &url, &[], body.to_vec()).await
}

/// The body of an answer, for assertion messages.
pub fn text(r: &Resp) -> String {
    format!(
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body[..r.body.len().min(600)])
    )
}

/// POST on `bases[0]`, then the `chunk`-byte PATCHes of `bytes` on the next bases in turn, each
/// answered 202 with the `Range` so far; the location for the PUT and the index of the base
/// that comes next.
pub async fn chunks_across(
    bases: &[String],
    repo: &str,
    bytes: &[u8],
    chunk: usize,
) -> (String, usize) {
    let r = begin(&bases[0], repo)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 202, "POST on replica 0: {}", text(&r));
    let mut location = r.header("location").to_string();
    let mut next = 1;
    for (i, c) in bytes.chunks(chunk).enumerate() {
        let base = &bases[next % bases.len()];
        let start = i * chunk;
        let r = patch(base, &location, start, c)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (r.status, r.header("range")),
            (202, format!("0-{}", start + c.len() - 1).as_str()),
            "PATCH of chunk {i} on replica {}: {}",
            next % bases.len(),
            text(&r)
        );
        location = r.header("location").to_string();
        next += 1;
    }
    (location, next % bases.len())
}

/// Blob bytes the replica at `base` has received so far (`ecr_proxy_upload_bytes_total`; 0
/// when it does not answer).
pub async fn received_bytes(base: &str) -> f64 {
    let url = format!("{base}/metrics");
    let Ok(r) = send("GET", &url, &[], Bytes::new()).await else {
        return 0.0;
    };
    String::from_utf8_lossy(&r.body)
        .lines()
        .filter(|l| l.starts_with("ecr_proxy_upload_bytes_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
