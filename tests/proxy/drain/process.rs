//! Helpers for the drain tests: a real `ecr-proxy` process (its JSON log in a file, its spool
//! in the test's directory) signalled with `kill` and waited for, and a raw HTTP/1 client whose
//! every byte is the test's.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use sha2::{Digest as _, Sha256};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The raw HTTP/1 reader the connection tests use.
pub use crate::connections::raw::{closed_within, read_response as read_answer, Head as Answer};

/// An `ecr-proxy` process with its stderr (JSON logs) in a file.
pub struct Process {
    child: std::process::Child,
    pub addr: String,
    log: PathBuf,
}

impl Process {
    /// `ecr-proxy serve --local DIR/data` on a free loopback port, with its spool in DIR/spool.
    pub async fn serve(dir: &Path, env: &[(&str, &str)]) -> Process {
        let data = dir.join("data").display().to_string();
        let spool = dir.join("spool").display().to_string();
        let args = vec!["serve".into(), "--local".into(), data, "--listen".into()];
        let mut env = env.to_vec();
        env.extend([
            ("ECR_PROXY_CREATE_REPOSITORIES", "true"),
            ("ECR_PROXY_SPOOL_DIR", spool.as_str()),
        ]);
        Process::spawn(dir, args, &env).await
    }

    /// `ecr-proxy emulator --data DIR/data` on a free loopback port.
    pub async fn emulator(dir: &Path) -> Process {
        let data = dir.join("data").display().to_string();
        let args = vec!["emulator".into(), "--data".into(), data, "--listen".into()];
        Process::spawn(dir, args, &[]).await
    }

    /// Run the binary with `args` followed by a free address, and wait until it listens there.
    async fn spawn(dir: &Path, mut args: Vec<String>, env: &[(&str, &str)]) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        args.push(addr.clone());
        let log = dir.join(format!("{port}.log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_ecr-proxy"))
            .args(["--log-format", "json"])
            .args(&args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("ecr-proxy starts");
        let mut process = Process { child, addr, log };
        // Listening, and its signal handlers installed (they are before it logs that it is ready).
        for _ in 0..800 {
            if TcpStream::connect(&process.addr).await.is_ok()
                && !process.log_lines("ready").is_empty()
            {
                return process;
            }
            assert!(process.running(), "ecr-proxy {args:?} ended at start");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "ecr-proxy {args:?} did not get ready on {}; its log:\n{}",
            process.addr,
            process.log_text()
        );
    }

    pub async fn connect(&self) -> TcpStream {
        TcpStream::connect(&self.addr).await.expect("connect")
    }

    /// Send `signal` (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -{signal} {}", self.child.id());
    }

    /// Wait until connecting is refused (ECONNREFUSED), within 20 s.
    pub async fn refused(&self) {
        for _ in 0..1000 {
            match TcpStream::connect(&self.addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
                // Taken into the backlog just before the listening socket closed: try again.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                Err(e) => panic!("connecting failed otherwise than refused: {e}"),
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        panic!("new connections were still accepted 20 s after the signal");
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// The exit status, waiting at most `within` (then the test fails, with the log).
    pub async fn exit_status(&mut self, within: Duration) -> ExitStatus {
        let polls = within.as_millis() / 50;
        for _ in 0..polls {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the process was still running {within:?} after the signal; its log:\n{}",
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        std::fs::File::open(&self.log)
            .and_then(|mut f| f.read_to_string(&mut text))
            .expect("read the log");
        text
    }

    /// The log lines (JSON) whose message contains `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(needle)
            })
            .collect()
    }

    /// The one log line containing `needle` (the test fails, with the log, if there is none).
    pub fn log_line(&self, needle: &str) -> serde_json::Value {
        let mut lines = self.log_lines(needle);
        assert_eq!(
            lines.len(),
            1,
            "expected one log line with `{needle}`; the log:\n{}",
            self.log_text()
        );
        lines.remove(0)
    }

    /// The sha256 digest and length of what a GET of `path` answers (status 200 asserted).
    pub async fn get_digest(&self, path: &str) -> (String, usize) {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Empty<Bytes>>();
        let url = format!("http://{}{path}", self.addr);
        let resp = client
            .get(url.parse().expect("a URL"))
            .await
            .expect("GET sent");
        assert_eq!(resp.status(), 200, "GET {path}");
        let mut body = resp.into_body();
        let (mut hash, mut len) = (Sha256::new(), 0);
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame.expect("the body").data_ref() {
                hash.update(data);
                len += data.len();
            }
        }
        (format!("sha256:{}", hex::encode(hash.finalize())), len)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send `head` (lines without the final empty line) and an empty body; read the answer.
pub async fn request(s: &mut TcpStream, head: &str) -> Answer {
    s.write_all(format!("{head}\r\nContent-Length: 0\r\n\r\n").as_bytes())
        .await
        .expect("send a request");
    read_answer(s).await
}
