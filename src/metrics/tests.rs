//! Unit tests of the registry: names and labels as encoded, and a request's record (spawned
//! tasks note into it only when carried; outside a request nothing is noted).

use super::request::{self, Record};
use super::Metrics;
use std::time::Duration;

/// The sample line for `name` with exactly `labels`, as text.
fn sample<'a>(text: &'a str, name_and_labels: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.split_once(' ').is_some_and(|(k, _)| k == name_and_labels))
        .and_then(|l| l.split_once(' '))
        .map(|(_, v)| v)
}

#[test]
fn families_are_named_and_labelled() {
    let m = Metrics::new();
    m.http_request("manifest", "GET", 200, Duration::from_millis(3));
    m.http_request("manifest", "GET", 200, Duration::from_millis(4));
    m.ecr_call("PutImage", "ok", Duration::from_millis(20));
    m.upload_bytes(7);
    m.download_bytes().inc_by(5);
    m.manifest_cache(true);
    m.manifest_cache(false);
    m.manifest_cache(false);
    m.gauge_fn("upload_sessions", "open uploads", || 3);
    let text = m.encode().unwrap();
    let want = [
        (
            r#"ecr_proxy_http_requests_total{route="manifest",method="GET",status="200"}"#,
            "2",
        ),
        (
            r#"ecr_proxy_http_request_duration_seconds_count{route="manifest"}"#,
            "2",
        ),
        (
            r#"ecr_proxy_ecr_calls_total{operation="PutImage",outcome="ok"}"#,
            "1",
        ),
        (
            r#"ecr_proxy_ecr_call_duration_seconds_count{operation="PutImage"}"#,
            "1",
        ),
        ("ecr_proxy_upload_bytes_total", "7"),
        ("ecr_proxy_download_bytes_total", "5"),
        ("ecr_proxy_manifest_cache_hits_total", "1"),
        ("ecr_proxy_manifest_cache_misses_total", "2"),
        ("ecr_proxy_upload_sessions", "3"),
    ];
    for (k, v) in want {
        assert_eq!(sample(&text, k), Some(v), "{k} in\n{text}");
    }
    assert!(
        text.contains("# TYPE ecr_proxy_upload_sessions gauge"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE ecr_proxy_http_request_duration_seconds histogram"),
        "{text}"
    );
}

#[tokio::test]
async fn a_record_gathers_what_its_request_caused() {
    let m = Metrics::new();
    let record = Record::new(m.clone());
    request::scope(record.clone(), async {
        request::set_route("blob", Some("team/app"));
        request::received_blob_bytes(10);
        request::received_body_bytes(3);
        request::note_ecr_request_id("one");
        // A spawned task notes into the same record only when carried.
        tokio::spawn(request::carry(async {
            request::note_ecr_request_id("two")
        }))
        .await
        .unwrap();
        tokio::spawn(async { request::note_ecr_request_id("lost") })
            .await
            .unwrap();
        assert_eq!(request::route(), "blob");
        request::note_error("BLOB_UNKNOWN", "blob unknown");
    })
    .await;
    assert_eq!(record.bytes_in(), 13);
    let f = record.facts();
    assert_eq!(f.route, "blob");
    assert_eq!(f.repository.as_deref(), Some("team/app"));
    assert_eq!(f.ecr_request_ids, ["one", "two"]);
    assert_eq!(f.ecr_calls, 2);
    assert_eq!(f.error.as_ref().map(|e| e.0), Some("BLOB_UNKNOWN"));
    let text = m.encode().unwrap();
    assert_eq!(sample(&text, "ecr_proxy_upload_bytes_total"), Some("10"));
    // Outside a request nothing is noted and nothing fails.
    request::received_blob_bytes(5);
    assert_eq!(request::route(), request::UNKNOWN_ROUTE);
    assert_eq!(
        sample(&m.encode().unwrap(), "ecr_proxy_upload_bytes_total"),
        Some("10")
    );
}

#[tokio::test]
async fn a_long_upload_keeps_a_bounded_list_of_ecr_request_ids() {
    let record = Record::new(Metrics::new());
    request::scope(record.clone(), async {
        for i in 0..(request::MAX_ECR_IDS + 4) {
            request::note_ecr_request_id(&format!("part-{i}"));
        }
    })
    .await;
    let f = record.facts();
    assert_eq!(f.ecr_request_ids.len(), request::MAX_ECR_IDS);
    assert_eq!(f.ecr_request_ids[0], "part-0");
    assert_eq!(f.ecr_calls, request::MAX_ECR_IDS as u64 + 4);
}
