//! Helpers for the connection tests: a real `ecr-proxy serve --local` process with its JSON log
//! in a file, a raw HTTP/1 client (bytes as written, responses parsed by hand), and the test
//! process's own fd limit.

use std::io::Read as _;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `serve --local` process with its stderr (JSON logs) in a file.
pub struct Served {
    child: std::process::Child,
    pub addr: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Start it with `env`; `nofile` runs it under `prlimit --nofile=N:N`.
    pub async fn start(env: &[(&str, &str)], nofile: Option<u32>) -> Served {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = dir.path().join("stderr.log");
        let bin = env!("CARGO_BIN_EXE_ecr-proxy");
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = std::process::Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(bin);
                c
            }
            None => std::process::Command::new(bin),
        };
        let data = dir.path().join("data");
        cmd.args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            &addr,
            "--local",
        ])
        .arg(&data)
        .env("ECR_PROXY_CREATE_REPOSITORIES", "true")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = cmd
            .spawn()
            .expect("ecr-proxy starts (prlimit is util-linux)");
        for _ in 0..400 {
            if TcpStream::connect(&addr).await.is_ok() {
                return Served {
                    child,
                    addr,
                    log,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("ecr-proxy did not listen on {addr}");
    }

    pub async fn connect(&self) -> TcpStream {
        TcpStream::connect(&self.addr).await.expect("connect")
    }

    /// The log lines (JSON) whose message contains `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<serde_json::Value> {
        let mut text = String::new();
        std::fs::File::open(&self.log)
            .and_then(|mut f| f.read_to_string(&mut text))
            .expect("read the log");
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(needle)
            })
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response head: status and lower-cased headers.
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Read one response (head and a `Content-Length` body) from `s`, within 60 s.
pub async fn read_response(s: &mut (impl tokio::io::AsyncRead + Unpin)) -> Head {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.expect("read a response");
            assert!(n > 0, "connection closed before a whole response head");
            buf.extend_from_slice(&chunk[..n]);
        };
        let text = String::from_utf8_lossy(&buf[..end]).to_string();
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = buf[end..].to_vec();
        while body.len() < len {
            let mut chunk = vec![0u8; len - body.len()];
            let n = s.read(&mut chunk).await.expect("read a body");
            assert!(n > 0, "connection closed inside a body");
            body.extend_from_slice(&chunk[..n]);
        }
        Head {
            status,
            headers,
            body,
        }
    })
    .await
    .expect("a response within 60 s")
}

pub async fn get_v2(s: &mut TcpStream) -> Head {
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
        .await
        .expect("send GET /v2/");
    read_response(s).await
}

/// Whether the server closes `s` (EOF or reset) within `within`.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let wait = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(within, wait).await.is_ok()
}

/// The soft fd limit of this test process, raised towards its hard limit to `want` if lower
/// (with util-linux's prlimit on our own pid: no unsafe code).
pub fn ensure_nofile(want: u64) {
    let soft = || -> (u64, u64) {
        let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        let v: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        (v[0], v[1])
    };
    let (have, hard) = soft();
    if have >= want {
        return;
    }
    assert!(
        hard >= want,
        "this test needs {want} open files; the hard limit is {hard}"
    );
    let ok = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={want}:"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok && soft().0 >= want,
        "could not raise this test's fd limit to {want}"
    );
}
