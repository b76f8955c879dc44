//! Several proxies sharing one Redis (`[sessions] redis_url`) in front of one emulator.
//! Here: a manifest deleted or re-tagged through one replica is gone from the others' caches
//! within a second; with Redis stopped pulls, tags and one-request uploads go on, uploads of
//! several requests get 503 with Retry-After, and once it is back invalidations work again;
//! pulls through Debian's haproxy in round-robin in front of two replicas. In `replicas/`: the
//! session store against a real Redis (`store`), one upload's requests each on another replica
//! (`moves`), 20 skopeo pushes and a docker push through haproxy (`pushes`), a wrong digest
//! (`wrong_digest`), a replica killed mid-push (`kill`), Redis restarted mid-load (`outage`),
//! requests given up mid-way and failed saves (`dropped`, `saves`); the harness (`cluster`,
//! `processes`, `balancer`, `redis`, `client`, `verify`, `docker_image`).

#[path = "replicas/balancer.rs"]
mod balancer;
#[path = "replicas/client.rs"]
mod client;
#[path = "replicas/cluster.rs"]
mod cluster;
#[path = "replicas/docker_image.rs"]
mod docker_image;
#[path = "replicas/dropped.rs"]
mod dropped;
#[path = "replicas/kill.rs"]
mod kill;
#[path = "replicas/moves.rs"]
mod moves;
#[path = "replicas/outage.rs"]
mod outage;
#[path = "replicas/processes.rs"]
mod processes;
#[path = "replicas/pushes.rs"]
mod pushes;
#[path = "replicas/redis.rs"]
mod redis;
#[path = "replicas/saves.rs"]
mod saves;
#[path = "replicas/store.rs"]
mod store;
#[path = "replicas/verify.rs"]
mod verify;
#[path = "replicas/wrong_digest.rs"]
mod wrong_digest;

use crate::cache::{pull, OCI};
use crate::support::*;
use balancer::Balancer;
use bytes::Bytes;
use ecr_proxy::config::{self, Flags};
use ecr_proxy::emulator::{self, EmulatorConfig, RunningEmulator};
use ecr_proxy::proxy::{self as registry, RunningProxy};
use redis::Redis;
use std::time::{Duration, Instant};

/// The invalidation channel with the default `key_prefix`.
const CHANNEL: &str = "ecr-proxy:invalidate";

/// One emulator and a proxy per config, every proxy with `redis_url`.
struct Replicas {
    proxies: Vec<RunningProxy>,
    emu: RunningEmulator,
    _dir: tempfile::TempDir,
}

impl Replicas {
    /// `tomls`: each replica's config file (a relative `[cache] dir` is its own folder's).
    async fn start(redis_url: &str, tomls: &[&str]) -> Replicas {
        Replicas::start_with(redis_url, tomls, "", &[]).await
    }

    /// `start`, with an emulator injecting `faults` and every replica given the `ECR_PROXY_*`
    /// settings `env` besides.
    async fn start_with(
        redis_url: &str,
        tomls: &[&str],
        faults: &str,
        env: &[(&str, &str)],
    ) -> Replicas {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut emu_config = EmulatorConfig::new(dir.path());
        emu_config.faults = faults.to_string();
        let emu = emulator::start(emu_config).await.expect("emulator starts");
        let mut proxies = Vec::new();
        for (i, toml) in tomls.iter().enumerate() {
            let conf = dir.path().join(format!("replica{i}"));
            std::fs::create_dir_all(&conf).unwrap();
            let path = conf.join("config.toml");
            std::fs::write(&path, toml).unwrap();
            let vars: std::collections::HashMap<String, String> = [
                ("ECR_PROXY_CREATE_REPOSITORIES", "true"),
                ("ECR_PROXY_LISTEN", "127.0.0.1:0"),
                ("ECR_PROXY_BLOB_MODE", "stream"),
                ("ECR_PROXY_REDIS_URL", redis_url),
            ]
            .iter()
            .chain(env)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let mut c = config::load(Some(&path), &vars, &Flags::default()).expect("config");
            c.upstream = upstream(&emu);
            proxies.push(registry::start(c).await.expect("proxy starts"));
        }
        Replicas {
            proxies,
            emu,
            _dir: dir,
        }
    }

    fn url(&self, i: usize) -> String {
        self.proxies[i].url()
    }
}

/// Push an image of `layers` to `repo:tag` through `url`; its manifest's digest.
async fn push_image(url: &str, repo: &str, tag: &str, layers: &[Vec<u8>]) -> String {
    let cfg = format!(r#"{{"layers":{}}}"#, layers.len());
    let mut blobs = vec![cfg.clone().into_bytes()];
    blobs.extend(layers.iter().cloned());
    let mut descs = Vec::new();
    for b in &blobs {
        let d = digest(b);
        let r = request(
            "POST",
            &format!("{url}/v2/{repo}/blobs/uploads/?digest={d}"),
            &[],
            b.clone(),
        )
        .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        descs.push(format!(r#""digest":"{d}","size":{}"#, b.len()));
    }
    let layers: Vec<String> = descs[1..]
        .iter()
        .map(|d| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar",{d}}}"#))
        .collect();
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json",{}}},"layers":[{}]}}"#,
        descs[0],
        layers.join(",")
    );
    let r = request(
        "PUT",
        &format!("{url}/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", OCI)],
        m.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    digest(m.as_bytes())
}

/// The counter `name` of the proxy at `url` (summed over the samples whose line has `filter`).
async fn metric_at(url: &str, name: &str, filter: &str) -> f64 {
    let r = request("GET", &format!("{url}/metrics"), &[], Bytes::new()).await;
    String::from_utf8_lossy(&r.body)
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn status(method: &str, url: &str) -> u16 {
    request(method, url, &[("Accept", OCI)], Bytes::new())
        .await
        .status
}

/// Delete `repo@digest` through `a`, then poll `b` for it: how long after the delete answered
/// `b` first said 404 (`None`: not within `limit`).
async fn delete_seen_by(
    a: &str,
    b: &str,
    repo: &str,
    d: &str,
    limit: Duration,
) -> Option<Duration> {
    assert_eq!(
        status("DELETE", &format!("{a}/v2/{repo}/manifests/{d}")).await,
        202
    );
    let answered = Instant::now();
    while answered.elapsed() < limit {
        if status("GET", &format!("{b}/v2/{repo}/manifests/{d}")).await == 404 {
            return Some(answered.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn a_manifest_deleted_through_one_replica_is_gone_from_the_other_within_a_second() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let r = Replicas::start(&redis.url(), &["", ""]).await;
    redis.wait_subscribers(CHANNEL, 2).await;
    let (a, b) = (r.url(0), r.url(1));
    let d = push_image(&a, "team/app", "v1", &[data(1, 1000)]).await;
    // B answers by digest from its manifest cache from now on (a 60 s TTL).
    let manifest = format!("{b}/v2/team/app/manifests/{d}");
    assert_eq!(status("GET", &manifest).await, 200);
    assert_eq!(status("GET", &manifest).await, 200);
    let took = delete_seen_by(&a, &b, "team/app", &d, Duration::from_secs(1)).await;
    assert!(
        took.is_some(),
        "B still served the manifest 1 s after A deleted it"
    );
    assert_eq!(status("HEAD", &manifest).await, 404);
}

#[tokio::test]
async fn a_retag_through_one_replica_reaches_the_others_disk_cache() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let cached = "[cache]\ndir = \"cache\"\nmax_size = \"64MiB\"\ntag_ttl_secs = 3600\nmax_stale_secs = 3600\n";
    let r = Replicas::start(&redis.url(), &["", cached]).await;
    redis.wait_subscribers(CHANNEL, 2).await;
    let (a, b) = (r.url(0), r.url(1));
    let first = push_image(&a, "mirror/tool", "latest", &[data(2, 2000)]).await;
    let got = pull(&b, "mirror/tool", "latest")
        .await
        .expect("pull through B");
    assert_eq!(digest(&got), first);
    // B now trusts its tag for an hour: only the invalidation can make it ask ECR again.
    let second = push_image(&a, "mirror/tool", "latest", &[data(3, 3000)]).await;
    assert_ne!(first, second);
    let pushed = Instant::now();
    let mut seen = first.clone();
    while seen != second && pushed.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        seen = digest(
            &pull(&b, "mirror/tool", "latest")
                .await
                .expect("pull through B"),
        );
    }
    assert_eq!(
        seen, second,
        "B still answered the old digest 1 s after the re-tag"
    );
}

#[tokio::test]
async fn with_redis_down_pulls_tags_and_one_request_uploads_go_on_others_get_503() {
    let Some(mut redis) = Redis::start().await else {
        return;
    };
    let r = Replicas::start(&redis.url(), &["", ""]).await;
    redis.wait_subscribers(CHANNEL, 2).await;
    let (a, b) = (r.url(0), r.url(1));
    let d = push_image(&a, "team/svc", "v1", &[data(4, 4000)]).await;
    let manifest = pull(&a, "team/svc", &d).await.expect("pull");

    redis.stop().await;
    for (i, url) in [&a, &b].into_iter().enumerate() {
        // An upload of several requests needs the shared session store: a clean 503 with
        // Retry-After. A one-request upload never leaves its request: it goes on.
        let start = format!("{url}/v2/team/svc/blobs/uploads/");
        let r = request("POST", &start, &[], Bytes::new()).await;
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.error_code(), "UNAVAILABLE");
        assert!(!r.header("retry-after").is_empty(), "no Retry-After");
        let layer = data(10 + i as u64, 5000);
        let d_layer = digest(&layer);
        let monolithic = format!("{url}/v2/team/svc/blobs/uploads/?digest={d_layer}");
        let r = request("POST", &monolithic, &[], layer).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        for other in [&a, &b] {
            let blob = format!("{other}/v2/team/svc/blobs/{d_layer}");
            assert_eq!(status("HEAD", &blob).await, 200, "the layer is not there");
        }
        // Tagging an image whose blobs are there needs no session: it goes on, as do pulls.
        let tag = format!("down{i}");
        let r = request(
            "PUT",
            &format!("{url}/v2/team/svc/manifests/{tag}"),
            &[("Content-Type", OCI)],
            manifest.clone(),
        )
        .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        for other in [&a, &b] {
            let got = pull(other, "team/svc", &tag)
                .await
                .expect("pull with Redis down");
            assert_eq!(digest(&got), d);
            pull(other, "team/svc", &d).await.expect("pull by digest");
        }
    }
    // The announcements that could not be published were counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric_at(&a, "ecr_proxy_redis_errors_total", "op=\"publish\"").await < 1.0 {
        assert!(Instant::now() < deadline, "no publish error counted on A");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    redis.restart().await;
    redis.wait_subscribers(CHANNEL, 2).await;
    let manifest = format!("{b}/v2/team/svc/manifests/{d}");
    assert_eq!(status("GET", &manifest).await, 200);
    let took = delete_seen_by(&a, &b, "team/svc", &d, Duration::from_secs(1)).await;
    assert!(took.is_some(), "no invalidation after Redis came back");
}

#[tokio::test]
async fn pulls_through_a_round_robin_balancer_in_front_of_two_replicas() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let r = Replicas::start(&redis.url(), &["", ""]).await;
    let addrs: Vec<_> = r.proxies.iter().map(RunningProxy::addr).collect();
    let Some(lb) = Balancer::start(&addrs).await else {
        return;
    };
    // Pushes go to one replica: an upload's requests must stay on it until sessions are shared.
    let layers = [data(20, 300_000), data(21, 70_000)];
    let d = push_image(&r.url(0), "lb/app", "v1", &layers).await;
    for reference in ["v1", d.as_str(), "v1", d.as_str()] {
        let got = pull(&lb.url(), "lb/app", reference)
            .await
            .expect("pull through haproxy");
        assert_eq!(digest(&got), d);
    }
    for i in 0..2 {
        let served = metric_at(&r.url(i), "ecr_proxy_http_requests_total", "method=\"GET\"").await;
        assert!(served > 0.0, "replica {i} served no GET: not round-robin");
    }
}
