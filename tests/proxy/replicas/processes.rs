//! Replicas as real `ecr-proxy serve` processes (so one can be killed with SIGKILL), sharing
//! one `redis-server` and one emulator in this process (through the standard AWS variables),
//! behind haproxy in round-robin with health checks. Each replica's log is kept in a file and
//! shown when a test fails.

use super::balancer::Balancer;
use super::redis::{free_port, Redis};
use crate::support::*;
use ecr_proxy::emulator::{self, EmulatorConfig, RunningEmulator};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One `ecr-proxy serve` process; killed (SIGKILL) when dropped.
pub struct Replica {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    log: PathBuf,
}

impl Replica {
    /// Start one in front of the emulator at `endpoint` with `redis_url`, its log in `dir`;
    /// returns once `/readyz` answers 200.
    pub async fn start(dir: &Path, endpoint: &str, redis_url: &str) -> Replica {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.join(format!("replica-{}.log", addr.port()));
        let binary = env!("CARGO_BIN_EXE_ecr-proxy");
        let child = serve_command(binary, endpoint, &addr.to_string())
            .env("ECR_PROXY_REDIS_URL", redis_url)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("ecr-proxy starts");
        let mut replica = Replica { child, addr, log };
        let ready = format!("{}/readyz", replica.url());
        for _ in 0..800 {
            if let Ok(r) = super::client::send("GET", &ready, &[], bytes::Bytes::new()).await {
                if r.status == 200 {
                    return replica;
                }
            }
            let ended = replica.child.try_wait().expect("try_wait");
            assert!(
                ended.is_none(),
                "ecr-proxy ended at start:\n{}",
                replica.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("ecr-proxy was not ready on {addr}:\n{}", replica.log());
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `kill -9`, and wait until it is gone.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        assert_eq!(status.signal(), Some(9), "{status}");
    }

    /// The last 60 lines of its log.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Redis, an emulator, replica processes and haproxy in front of them.
pub struct ProcessCluster {
    pub lb: Balancer,
    pub replicas: Vec<Replica>,
    pub emu: RunningEmulator,
    pub ecr: aws_sdk_ecr::Client,
    _redis: Redis,
    dir: tempfile::TempDir,
}

impl ProcessCluster {
    /// `n` replicas in front of an emulator injecting `faults`; `None` (SKIPPED, a failure
    /// under CI=true) when `redis-server` or `haproxy` is missing.
    pub async fn start(n: usize, faults: &str) -> Option<ProcessCluster> {
        let redis = Redis::start().await?;
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir_all(dir.path().join("ecr")).unwrap();
        let mut config = EmulatorConfig::new(dir.path().join("ecr"));
        config.faults = faults.to_string();
        let emu = emulator::start(config).await.expect("emulator starts");
        let mut replicas = Vec::new();
        for _ in 0..n {
            replicas.push(Replica::start(dir.path(), &emu.endpoint(), &redis.url()).await);
        }
        let addrs: Vec<_> = replicas.iter().map(|r| r.addr).collect();
        let lb = Balancer::start_checked(&addrs).await?;
        let ecr = sdk_client(&emu.endpoint());
        Some(ProcessCluster {
            lb,
            replicas,
            emu,
            ecr,
            _redis: redis,
            dir,
        })
    }

    /// The balancer's `127.0.0.1:PORT`, as a registry name for clients.
    pub fn lb_host(&self) -> String {
        format!("127.0.0.1:{}", self.lb.port)
    }

    /// A folder that lives as long as the cluster.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every replica's log, for failure messages.
    pub fn logs(&self) -> String {
        let logs: Vec<String> = (self.replicas.iter().enumerate())
            .map(|(i, r)| format!("--- replica {i} ({}) ---\n{}", r.addr, r.log()))
            .collect();
        logs.join("\n")
    }
}
