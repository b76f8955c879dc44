//! Debian's `haproxy` in round-robin HTTP mode on a free loopback port in front of proxy
//! addresses, from a generated config file; killed on drop. Each request (not each connection)
//! goes to the next server.

use super::redis::{free_port, wait_listening};
use std::net::SocketAddr;
use std::process::Stdio;
use tokio::process::{Child, Command};

pub struct Balancer {
    pub port: u16,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Balancer {
    /// Start one in front of `servers`, or `None` (SKIPPED; a failure under CI=true) when
    /// `haproxy` is missing.
    pub async fn start(servers: &[SocketAddr]) -> Option<Balancer> {
        Balancer::start_with(servers, "", "").await
    }

    /// `start`, and a server is taken out once one health check of `/healthz` fails (every
    /// 200 ms), and a request whose connection is refused goes to another server (`retries 3`,
    /// `option redispatch`): for tests that kill a replica.
    pub async fn start_checked(servers: &[SocketAddr]) -> Option<Balancer> {
        let backend = "  option httpchk GET /healthz\n  option redispatch 1\n  retries 3\n";
        Balancer::start_with(servers, backend, " check inter 200ms fall 1 rise 2").await
    }

    /// `backend`: more lines for the backend section; `server`: what follows each server line.
    async fn start_with(servers: &[SocketAddr], backend: &str, server: &str) -> Option<Balancer> {
        if !crate::support::tool_available("haproxy", "-v") {
            return None;
        }
        let port = free_port();
        let dir = tempfile::tempdir().expect("temporary directory");
        let lines: Vec<String> = servers
            .iter()
            .enumerate()
            .map(|(i, a)| format!("  server proxy{i} {a}{server}\n"))
            .collect();
        let config = format!(
            "global\n  maxconn 512\n\
             defaults\n  mode http\n  option http-server-close\n  timeout connect 2s\n  \
             timeout client 60s\n  timeout server 60s\n\
             frontend registry\n  bind 127.0.0.1:{port}\n  default_backend proxies\n\
             backend proxies\n  balance roundrobin\n{backend}{}",
            lines.concat()
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy starts");
        wait_listening(port, "haproxy").await;
        Some(Balancer {
            port,
            _child: child,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
