//! `GET /metrics` after real traffic: a push and a pull over plain HTTP (exact counts of every
//! family), a skopeo push and pull (the byte counters match the image), the gauges read at scrape
//! time, and the request timeout (503 UNAVAILABLE with Retry-After, counted).

use crate::support::*;
use bytes::Bytes;
use std::collections::HashMap;

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// Every metric family the README documents.
const FAMILIES: [&str; 11] = [
    "ecr_proxy_http_requests_total",
    "ecr_proxy_http_request_duration_seconds",
    "ecr_proxy_ecr_calls_total",
    "ecr_proxy_ecr_call_duration_seconds",
    "ecr_proxy_upload_bytes_total",
    "ecr_proxy_download_bytes_total",
    "ecr_proxy_upload_sessions",
    "ecr_proxy_buffer_bytes_in_use",
    "ecr_proxy_buffer_bytes_limit",
    "ecr_proxy_manifest_cache_hits_total",
    "ecr_proxy_manifest_cache_misses_total",
];

/// A scrape: each sample (`name{labels}` exactly as written) and its value.
pub struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    /// The sample's value; 0 when absent (a counter not yet incremented).
    pub fn get(&self, sample: &str) -> f64 {
        self.samples.get(sample).copied().unwrap_or(0.0)
    }

    pub fn assert(&self, sample: &str, want: f64) {
        assert_eq!(self.get(sample), want, "{sample} in\n{}", self.text);
    }
}

pub async fn scrape(s: &Stack) -> Scrape {
    let r = request("GET", &s.url("/metrics"), &[], Bytes::new()).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(r.body.to_vec()).expect("UTF-8 metrics");
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("`sample value`");
            (k.to_string(), v.parse().expect("a number"))
        })
        .collect();
    Scrape { text, samples }
}

pub fn http(route: &str, method: &str, status: u16) -> String {
    format!(
        r#"ecr_proxy_http_requests_total{{route="{route}",method="{method}",status="{status}"}}"#
    )
}

fn ecr(operation: &str, outcome: &str) -> String {
    format!(r#"ecr_proxy_ecr_calls_total{{operation="{operation}",outcome="{outcome}"}}"#)
}

pub async fn get(s: &Stack, path: &str, headers: &[(&str, &str)]) -> Resp {
    request("GET", &s.url(path), headers, Bytes::new()).await
}

#[tokio::test]
async fn a_push_and_a_pull_are_counted() {
    let s = Stack::start_with(&[
        ("ECR_PROXY_BUFFER_BUDGET", "64MiB"),
        ("ECR_PROXY_BLOB_MODE", "stream"),
    ])
    .await;
    let repo = "metrics/app";
    // A layer of two parts, streamed in one PATCH, and a config pushed in one request.
    let layer = data(41, 12 * MIB + 5);
    let ld = digest(&layer);
    let r = request(
        "POST",
        &s.url(&format!("/v2/{repo}/blobs/uploads/")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").to_string();
    let r = request_streamed("PATCH", &s.url(&loc), Bytes::from(layer.clone()), 64 * 1024).await;
    assert_eq!(r.status, 202);
    let put = format!("{}?digest={ld}", r.header("location"));
    let r = request("PUT", &s.url(&put), &[], Bytes::new()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let cd = crate::uploads::push_blob(&s, repo, &config).await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let md = digest(manifest.as_bytes());
    let path = format!("/v2/{repo}/manifests/v1");
    let r = request(
        "PUT",
        &s.url(&path),
        &[("Content-Type", OCI)],
        manifest.clone(),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(s.proxy.open_sessions(), 0);

    // The pull: the manifest twice by digest (ECR, then the cache), by tag (ECR), the blobs.
    let accept = [("Accept", OCI)];
    for reference in [md.as_str(), md.as_str(), "v1"] {
        let r = get(&s, &format!("/v2/{repo}/manifests/{reference}"), &accept).await;
        assert_eq!((r.status, r.body.as_ref()), (200, manifest.as_bytes()));
    }
    let r = get(&s, &format!("/v2/{repo}/blobs/{ld}"), &[]).await;
    assert!(
        r.status == 200 && r.body == layer,
        "layer GET: {}",
        r.status
    );
    let r = get(
        &s,
        &format!("/v2/{repo}/blobs/{ld}"),
        &[("Range", "bytes=0-99")],
    )
    .await;
    assert_eq!((r.status, r.body.as_ref()), (206, &layer[..100]));
    let r = get(&s, &format!("/v2/{repo}/blobs/{cd}"), &[]).await;
    assert_eq!((r.status, r.body.as_ref()), (200, config.as_slice()));

    let m = scrape(&s).await;
    for family in FAMILIES {
        assert!(
            m.text.contains(&format!("# TYPE {family} ")),
            "{family} in\n{}",
            m.text
        );
    }
    m.assert(
        "ecr_proxy_upload_bytes_total",
        (layer.len() + config.len()) as f64,
    );
    m.assert(
        "ecr_proxy_download_bytes_total",
        (layer.len() + 100 + config.len()) as f64,
    );
    for (sample, n) in [
        (http("upload", "POST", 202), 1.0),
        (http("upload", "PATCH", 202), 1.0),
        (http("upload", "PUT", 201), 1.0),
        (http("upload", "POST", 201), 1.0),
        (http("manifest", "PUT", 201), 1.0),
        (http("manifest", "GET", 200), 3.0),
        (http("blob", "GET", 200), 2.0),
        (http("blob", "GET", 206), 1.0),
        (ecr("InitiateLayerUpload", "repository_not_found"), 1.0),
        (ecr("CreateRepository", "ok"), 1.0),
        (ecr("InitiateLayerUpload", "ok"), 2.0),
        (ecr("UploadLayerPart", "ok"), 3.0),
        (ecr("CompleteLayerUpload", "ok"), 2.0),
        (ecr("PutImage", "ok"), 1.0),
        (ecr("BatchGetImage", "ok"), 2.0),
        (ecr("GetDownloadUrlForLayer", "ok"), 3.0),
        ("ecr_proxy_manifest_cache_misses_total".into(), 1.0),
        ("ecr_proxy_manifest_cache_hits_total".into(), 1.0),
        (
            r#"ecr_proxy_http_request_duration_seconds_count{route="manifest"}"#.into(),
            4.0,
        ),
        (
            r#"ecr_proxy_ecr_call_duration_seconds_count{operation="PutImage"}"#.into(),
            1.0,
        ),
        ("ecr_proxy_upload_sessions".into(), 0.0),
        ("ecr_proxy_buffer_bytes_limit".into(), (64 * MIB) as f64),
    ] {
        m.assert(&sample, n);
    }
    let in_use = m.get("ecr_proxy_buffer_bytes_in_use");
    assert!(in_use <= (64 * MIB) as f64, "{in_use}");
    // Only what was sent: no other status or operation was counted.
    let total = |prefix: &str| -> f64 {
        m.samples
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(total("ecr_proxy_http_requests_total{"), 11.0, "{}", m.text);
    assert_eq!(total("ecr_proxy_ecr_calls_total{"), 15.0, "{}", m.text);

    // The scrape itself is counted, and an open upload shows in the gauge at once.
    let r = request(
        "POST",
        &s.url(&format!("/v2/{repo}/blobs/uploads/")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    let m = scrape(&s).await;
    m.assert(&http("metrics", "GET", 200), 1.0);
    m.assert("ecr_proxy_upload_sessions", 1.0);
    assert_eq!(s.proxy.open_sessions(), 1);
}

#[tokio::test]
async fn a_skopeo_push_and_pull_count_the_image_bytes() {
    if !tool_available("skopeo", "--version") {
        return;
    }
    let s = Stack::start_with(&[("ECR_PROXY_BLOB_MODE", "stream")]).await;
    let tmp = tempfile::tempdir().expect("temporary directory");
    let src = OciLayout::create(&tmp.path().join("src"));
    let layers = vec![data(51, 3 * MIB + 1), data(52, 11 * MIB)];
    let manifest = src.image("amd64", &layers);
    src.tag("v1", OCI_MANIFEST, &manifest);
    let remote = format!("docker://{}/metrics/skopeo:v1", s.host());
    let layout = |dir: &std::path::Path| format!("oci:{}:v1", dir.display());
    let pushed: u64 = src
        .blobs()
        .iter()
        .filter(|(d, _)| **d != digest(&manifest))
        .map(|(_, b)| b.len() as u64)
        .sum();
    skopeo(
        tmp.path(),
        &[
            "copy",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &layout(&src.dir),
            &remote,
        ],
    )
    .await;
    let m = scrape(&s).await;
    m.assert("ecr_proxy_upload_bytes_total", pushed as f64);
    m.assert(&ecr("PutImage", "ok"), 1.0);
    m.assert(&http("manifest", "PUT", 201), 1.0);
    m.assert("ecr_proxy_download_bytes_total", 0.0);

    let out = tmp.path().join("out");
    skopeo(
        tmp.path(),
        &[
            "copy",
            "--src-tls-verify=false",
            "--preserve-digests",
            &remote,
            &layout(&out),
        ],
    )
    .await;
    let m = scrape(&s).await;
    // Every blob but the manifest went through the proxy's blob GETs, whole.
    m.assert("ecr_proxy_download_bytes_total", pushed as f64);
    m.assert("ecr_proxy_upload_sessions", 0.0);
    assert!(m.get(&http("blob", "GET", 200)) >= 3.0, "{}", m.text);
}
