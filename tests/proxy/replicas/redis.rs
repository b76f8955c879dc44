//! A `redis-server` of a test's own: a free loopback port, no persistence (`--save ""
//! --appendonly no`), its working folder in a temporary directory, killed on drop. `stop` and
//! `restart` (on the same port) stand for an outage.

use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Wait (at most 10 s) until something accepts connections on `port`.
pub async fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Redis {
    /// Start one, or `None` (SKIPPED; a failure under CI=true) when `redis-server` is missing.
    pub async fn start() -> Option<Redis> {
        if !crate::support::tool_available("redis-server", "--version") {
            return None;
        }
        let mut r = Redis {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        r.restart().await;
        Some(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill it (an outage: clients see their connections break).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Start it (again) on the same port, empty, and wait until it listens.
    pub async fn restart(&mut self) {
        self.stop().await;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        wait_listening(self.port, "redis-server").await;
    }

    /// How many clients are subscribed to `channel` (PUBSUB NUMSUB).
    pub async fn subscribers(&self, channel: &str) -> u64 {
        let client = redis::Client::open(self.url()).expect("Redis URL");
        let Ok(mut c) = client.get_multiplexed_async_connection().await else {
            return 0;
        };
        let answer: redis::RedisResult<(String, u64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut c)
            .await;
        answer.map_or(0, |(_, n)| n)
    }

    /// Wait (at most 10 s) until `n` clients are subscribed to `channel`.
    pub async fn wait_subscribers(&self, channel: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.subscribers(channel).await;
            if now >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{now} of {n} replicas subscribed to {channel} after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
