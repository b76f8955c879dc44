//! ECR unreachable: digests are served from the cache, tags resolve to their last known digest
//! while it is younger than `max_stale_secs` (counted as stale answers), and past that the
//! answer is a 503 that says why.

use super::*;
use std::time::Duration;

#[tokio::test]
async fn pulls_go_on_through_an_outage_within_the_staleness_bound() {
    // max_stale_secs leaves room for a slow machine: a failing ECR call (the SDK's retries)
    // can take seconds under load before the stale answer is given.
    let s = cache_stack("max_size = \"1GiB\"\ntag_ttl_secs = 1\nmax_stale_secs = 8").await;
    let m = push_image(
        &s,
        "mirror/outage",
        "v1",
        &[data(7, 2 * MIB), data(8, 5000)],
    )
    .await;
    pull(&s.url(""), "mirror/outage", "v1").await.unwrap();
    let d = digest(m.as_bytes());
    let Stack {
        proxy, emu, _dir, ..
    } = s;
    emu.shutdown();
    let url = format!("http://{}", proxy.addr());
    // By digest: the cache alone.
    assert_eq!(pull(&url, "mirror/outage", &d).await.unwrap(), m.as_bytes());
    // By tag, after its time-to-live: ECR cannot be asked, the last known digest is served.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        pull(&url, "mirror/outage", "v1").await.unwrap(),
        m.as_bytes()
    );
    let r = request("GET", &format!("{url}/metrics"), &[], Bytes::new()).await;
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("ecr_proxy_cache_lookups_total")
                && l.contains("result=\"stale\"")
                && !l.ends_with(" 0")),
        "a stale answer is counted:\n{text}"
    );
    // Past max_stale_secs: 503, saying why.
    let mut last = None;
    for _ in 0..120 {
        let r = request(
            "GET",
            &format!("{url}/v2/mirror/outage/manifests/v1"),
            &[("Accept", OCI)],
            Bytes::new(),
        )
        .await;
        if r.status == 503 {
            last = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let r = last.expect("a 503 once the last known digest is too old");
    assert_eq!(r.error_code(), "UNAVAILABLE");
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        body.contains("max_stale_secs") && body.contains(&d),
        "{body}"
    );
    assert!(!r.header("retry-after").is_empty());
    // Digests still work.
    assert_eq!(pull(&url, "mirror/outage", &d).await.unwrap(), m.as_bytes());
}
