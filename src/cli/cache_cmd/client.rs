//! `cache warm`'s HTTP client of the proxy it started on loopback: manifests read whole and
//! checked against their digest, blobs streamed (never held whole), hashed and counted, and the
//! proxy's own `/metrics` read for its cache counters. Nothing else: what to fetch is `plan`'s.

use super::plan::Blob;
use crate::digest::Digest;
use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use sha2::{Digest as _, Sha256};

/// The manifest types asked for (the proxy caches what ECR stores, whichever it is).
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// A client of one proxy.
#[derive(Clone)]
pub struct Proxy {
    http: Client<HttpConnector, Empty<Bytes>>,
    base: String,
    /// Basic credentials of the one user the in-process proxy admits.
    authorization: String,
}

/// A manifest as the proxy served it.
pub struct Fetched {
    pub bytes: Bytes,
    pub digest: Digest,
}

/// The proxy's cache counters at one moment (`/metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Blob GETs served from complete cached files.
    pub blob_hits: u64,
    /// Blob GETs that started or joined a fill from ECR.
    pub blob_misses: u64,
    pub served_bytes: u64,
    pub fetched_bytes: u64,
    pub fills_in_flight: u64,
    /// Bytes in the cache.
    pub bytes: u64,
}

impl Counters {
    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Counters) -> Counters {
        Counters {
            blob_hits: self.blob_hits.saturating_sub(before.blob_hits),
            blob_misses: self.blob_misses.saturating_sub(before.blob_misses),
            served_bytes: self.served_bytes.saturating_sub(before.served_bytes),
            fetched_bytes: self.fetched_bytes.saturating_sub(before.fetched_bytes),
            fills_in_flight: self.fills_in_flight,
            bytes: self.bytes,
        }
    }

    /// Read them from the Prometheus text `/metrics` answers.
    pub fn parse(text: &str) -> Counters {
        let value = |series: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map_or(0, |v| v as u64)
        };
        Counters {
            blob_hits: value(r#"ecr_proxy_cache_lookups_total{kind="blob",result="hit"}"#),
            blob_misses: value(r#"ecr_proxy_cache_lookups_total{kind="blob",result="miss"}"#),
            served_bytes: value("ecr_proxy_cache_served_bytes_total"),
            fetched_bytes: value("ecr_proxy_cache_fetched_bytes_total"),
            fills_in_flight: value("ecr_proxy_cache_fills_in_flight"),
            bytes: value("ecr_proxy_cache_bytes"),
        }
    }
}

impl Proxy {
    /// A client of the proxy at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: String, authorization: String) -> Proxy {
        Proxy {
            http: Client::builder(TokioExecutor::new()).build_http(),
            base,
            authorization,
        }
    }

    async fn get(
        &self,
        path: &str,
        accept: Option<&str>,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        let mut req = Request::get(format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, &self.authorization);
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
        self.http
            .request(req)
            .await
            .map_err(|e| format!("the proxy did not answer: {e}"))
    }

    /// The manifest `reference` of `repository`; a digest reference is checked.
    pub async fn manifest(&self, repository: &str, reference: &str) -> Result<Fetched, String> {
        let resp = self
            .get(
                &format!("/v2/{repository}/manifests/{reference}"),
                Some(ACCEPT),
            )
            .await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("the manifest's body broke off: {e}"))?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(refusal(status, &bytes));
        }
        let digest = Digest::of(&bytes);
        if reference.starts_with("sha256:") && digest.as_str() != reference {
            return Err(format!("the manifest served has digest {digest}"));
        }
        Ok(Fetched { bytes, digest })
    }

    /// GET a blob of `repository` whole, calling `progress` with each piece's length; the bytes
    /// must hash to its digest and add up to its size.
    pub async fn blob(
        &self,
        repository: &str,
        blob: &Blob,
        mut progress: impl FnMut(u64),
    ) -> Result<(), String> {
        let resp = self
            .get(&format!("/v2/{repository}/blobs/{}", blob.digest), None)
            .await?;
        let status = resp.status();
        let mut body = resp.into_body();
        if status != StatusCode::OK {
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(refusal(status, &bytes));
        }
        let mut hasher = Sha256::new();
        let mut read = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("broke off after {read} bytes: {e}"))?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                read += data.len() as u64;
                progress(data.len() as u64);
            }
        }
        if read != blob.size {
            return Err(format!(
                "{read} bytes served where the manifest says {}",
                blob.size
            ));
        }
        let got = Digest::from_sha256(hasher.finalize().into());
        if got != blob.digest {
            return Err(format!("the bytes served hash to {got}"));
        }
        Ok(())
    }

    /// The proxy's cache counters.
    pub async fn counters(&self) -> Result<Counters, String> {
        let resp = self.get("/metrics", None).await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(refusal(status, &bytes));
        }
        Ok(Counters::parse(&String::from_utf8_lossy(&bytes)))
    }
}

/// An error answer, as a line: the status and the registry's first error code and message.
fn refusal(status: StatusCode, body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let e = &v["errors"][0];
    match (e["code"].as_str(), e["message"].as_str()) {
        (Some(code), Some(message)) => format!("{status}: {code}: {message}"),
        (Some(code), None) => format!("{status}: {code}"),
        _ => format!("{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_from_metrics_text() {
        let text = "# HELP x y\n\
            ecr_proxy_cache_lookups_total{kind=\"blob\",result=\"hit\"} 3\n\
            ecr_proxy_cache_lookups_total{kind=\"blob\",result=\"miss\"} 4\n\
            ecr_proxy_cache_lookups_total{kind=\"tag\",result=\"miss\"} 9\n\
            ecr_proxy_cache_fetched_bytes_total 1000\n\
            ecr_proxy_cache_served_bytes_total 20\n\
            ecr_proxy_cache_fills_in_flight 1\n\
            ecr_proxy_cache_bytes 5000\n";
        let c = Counters::parse(text);
        assert_eq!(
            c,
            Counters {
                blob_hits: 3,
                blob_misses: 4,
                served_bytes: 20,
                fetched_bytes: 1000,
                fills_in_flight: 1,
                bytes: 5000
            }
        );
        let d = c.since(&Counters {
            blob_hits: 1,
            fetched_bytes: 400,
            ..Counters::default()
        });
        assert_eq!((d.blob_hits, d.fetched_bytes, d.bytes), (2, 600, 5000));
    }

    #[test]
    fn refusals_name_the_code() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        assert_eq!(
            refusal(StatusCode::NOT_FOUND, body),
            "404 Not Found: MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(refusal(StatusCode::BAD_GATEWAY, b""), "502 Bad Gateway");
    }
}
