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
        if !crate::support::tool_available("haproxy", "-v") {
            return None;
        }
        let port = free_port();
        let dir = tempfile::tempdir().expect("temporary directory");
        let lines: Vec<String> = servers
            .iter()
            .enumerate()
            .map(|(i, a)| format!("  server proxy{i} {a}\n"))
            .collect();
        let config = format!(
            "global\n  maxconn 512\n\
             defaults\n  mode http\n  option http-server-close\n  timeout connect 2s\n  \
             timeout client 60s\n  timeout server 60s\n\
             frontend registry\n  bind 127.0.0.1:{port}\n  default_backend proxies\n\
             backend proxies\n  balance roundrobin\n{}",
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
