//! The acceptance set-up of issue 13 in this process: one emulator, one `redis-server`, and
//! proxy replicas sharing both (`ECR_PROXY_REDIS_URL`), optionally Debian's haproxy in
//! round-robin in front; and an SDK client for checking what landed in "ECR". Dropped in that
//! order: the balancer, the replicas, the emulator, Redis.

use super::balancer::Balancer;
use super::redis::Redis;
use crate::support::*;
use ecr_proxy::config::{self, Flags};
use ecr_proxy::emulator::{self, EmulatorConfig, RunningEmulator};
use ecr_proxy::proxy::{self as registry, RunningProxy};
use std::collections::HashMap;

pub struct Cluster {
    pub lb: Option<Balancer>,
    pub proxies: Vec<RunningProxy>,
    pub emu: RunningEmulator,
    pub ecr: aws_sdk_ecr::Client,
    pub redis: Redis,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `replicas` proxies, with haproxy in front when `balancer`; `None` (SKIPPED, a failure
    /// under CI=true) when `redis-server` or `haproxy` is missing.
    pub async fn start(replicas: usize, balancer: bool) -> Option<Cluster> {
        let redis = Redis::start().await?;
        let dir = tempfile::tempdir().expect("temporary directory");
        let emu = emulator::start(EmulatorConfig::new(dir.path()))
            .await
            .expect("emulator starts");
        let vars: HashMap<String, String> = [
            ("ECR_PROXY_CREATE_REPOSITORIES", "true"),
            ("ECR_PROXY_LISTEN", "127.0.0.1:0"),
            ("ECR_PROXY_BLOB_MODE", "stream"),
            ("ECR_PROXY_REDIS_URL", redis.url().as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut proxies = Vec::new();
        for _ in 0..replicas {
            let mut c = config::load(None, &vars, &Flags::default()).expect("config");
            c.upstream = upstream(&emu);
            proxies.push(registry::start(c).await.expect("proxy starts"));
        }
        let lb = if balancer {
            let addrs: Vec<_> = proxies.iter().map(RunningProxy::addr).collect();
            Some(Balancer::start(&addrs).await?)
        } else {
            None
        };
        let ecr = sdk_client(&emu.endpoint());
        Some(Cluster {
            lb,
            proxies,
            emu,
            ecr,
            redis,
            _dir: dir,
        })
    }

    /// Replica `i`'s base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self, i: usize) -> String {
        self.proxies[i].url()
    }

    /// Every replica's base URL.
    pub fn urls(&self) -> Vec<String> {
        (0..self.proxies.len()).map(|i| self.url(i)).collect()
    }

    /// The balancer's `127.0.0.1:PORT`, as a registry name for clients.
    pub fn lb_host(&self) -> String {
        let lb = self.lb.as_ref().expect("started with a balancer");
        format!("127.0.0.1:{}", lb.port)
    }
}
