//! The size limit (pulling three times `max_size` leaves the folder within it, the least
//! recently used images gone) and `kill -9` during a fill (a real `ecr-proxy serve` process:
//! after the restart nothing partial is served and the next pull completes).

use super::*;
use std::io::BufRead;
use std::time::Duration;

#[tokio::test]
async fn pulling_three_times_the_limit_keeps_the_folder_within_it() {
    let limit = 16 * MIB as u64;
    let s = cache_stack("max_size = \"16MiB\"").await;
    let mut images = Vec::new();
    for i in 0..10u64 {
        let layer = data(200 + i, 5 * MIB);
        let m = push_image(
            &s,
            &format!("mirror/lru{i}"),
            "v1",
            std::slice::from_ref(&layer),
        )
        .await;
        images.push((format!("mirror/lru{i}"), m, digest(&layer)));
    }
    let cache = s.conf().join("cache");
    for (i, (repo, m, _)) in images.iter().enumerate() {
        assert_eq!(pull(&s.url(""), repo, "v1").await.unwrap(), m.as_bytes());
        if i >= 2 {
            // Keep image 0 in use: it stays while the ones pulled after it go.
            assert_eq!(
                pull(&s.url(""), &images[0].0, "v1").await.unwrap(),
                images[0].1.as_bytes()
            );
        }
        let used = disk_use(&cache);
        assert!(
            used <= limit,
            "after {} pulls the cache holds {used} bytes, over {limit}",
            i + 1
        );
    }
    let blob = |d: &str| {
        let hex = d.strip_prefix("sha256:").unwrap().to_string();
        cache.join("blobs/sha256").join(&hex[..2]).join(hex)
    };
    assert!(
        blob(&images[0].2).exists(),
        "the image used all along is kept"
    );
    assert!(blob(&images[9].2).exists(), "the newest is kept");
    for (repo, _, d) in &images[1..7] {
        assert!(!blob(d).exists(), "{repo}, least recently used, is gone");
    }
    assert!(metric(&s, "ecr_proxy_cache_evictions_total", "").await >= 6.0);
}

/// An `ecr-proxy serve --config FILE` process against `emu`; its registry address.
struct Child {
    child: std::process::Child,
    addr: String,
}

impl Child {
    fn start(config: &std::path::Path, endpoint: &str) -> Child {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ecr-proxy"))
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .env("AWS_ENDPOINT_URL_ECR", endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ecr-proxy starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["fields"]["message"] == "registry listening" {
                        let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or("").to_string());
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the registry listening line");
        Child { child, addr }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn kill_9_during_a_fill_leaves_nothing_partial_to_serve() {
    let s = cache_stack("max_size = \"1GiB\"").await;
    let layer = data(300, 32 * MIB);
    let d = digest(&layer);
    let m = push_image(&s, "mirror/killed", "v1", &[layer]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(&config, "[cache]\ndir = \"cache\"\nmax_size = \"1GiB\"\n").unwrap();
    // 256 KiB per 20 ms: the 32 MiB fill takes over two seconds.
    s.emu.set_download_pace(Duration::from_millis(20));
    let mut first = Child::start(&config, &s.emu.endpoint());
    let url = format!("http://{}/v2/mirror/killed/blobs/{d}", first.addr);
    let reader = tokio::spawn(async move { request("GET", &url, &[], Bytes::new()).await });
    let partial = dir.path().join("cache/partial");
    let mut filling = false;
    for _ in 0..200 {
        if std::fs::read_dir(&partial)
            .is_ok_and(|mut r| r.any(|e| e.is_ok_and(|e| e.metadata().is_ok_and(|m| m.len() > 0))))
        {
            filling = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(filling, "the fill began");
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    let _ = reader.await;
    let hex = d.strip_prefix("sha256:").unwrap();
    assert!(
        !dir.path()
            .join("cache/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .exists(),
        "no complete blob from a fill that was cut"
    );
    s.emu.set_download_pace(Duration::ZERO);
    let second = Child::start(&config, &s.emu.endpoint());
    assert_eq!(
        std::fs::read_dir(&partial).unwrap().count(),
        0,
        "the partial fill was removed at start"
    );
    let url = format!("http://{}", second.addr);
    assert_eq!(
        pull(&url, "mirror/killed", "v1").await.unwrap(),
        m.as_bytes()
    );
    assert_eq!(
        pull(&url, "mirror/killed", "v1").await.unwrap(),
        m.as_bytes()
    );
}
