//! What a real `ecr-proxy serve` process says at start, in a clean environment (no AWS variables,
//! an empty HOME): one line naming the registry address it bound, the ECR endpoint it calls,
//! the region, the registry and where its credentials came from; "ready" only with credentials,
//! else one WARN that says what to set while it keeps serving; none of the SDK's own warnings;
//! a missing region stops it with the fix. Its logs are read from its stderr.

use crate::support::*;
use ecr_proxy::emulator::{self, EmulatorConfig};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A `serve` process whose stderr lines are collected as they come.
struct Serve {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    _home: tempfile::TempDir,
}

impl Serve {
    /// `ecr-proxy serve ARGS` with only `env` (plus an empty HOME and no colours) set.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Serve {
        let home = tempfile::tempdir().expect("temporary HOME");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecr-proxy"))
            .arg("serve")
            .args(args)
            .env_clear()
            .env("HOME", home.path())
            .env("NO_COLOR", "1")
            // Instance metadata on a loopback port nothing listens on: the SDK's last credential
            // source fails at once, and no test sends traffic off loopback.
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ecr-proxy starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Serve {
            child,
            lines,
            _home: home,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The first line containing `needle`, waiting up to a minute for it.
    async fn line(&self, needle: &str) -> String {
        for _ in 0..600 {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no line with {needle:?} within a minute; stderr so far:\n{}",
            self.lines().join("\n")
        );
    }

    /// The exit status, waiting up to a minute.
    async fn exit_code(&mut self) -> Option<i32> {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("ecr-proxy did not exit within a minute");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `key=` in a text log line (quoted or not).
fn field(line: &str, key: &str) -> String {
    let start = line
        .find(&format!(" {key}="))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
        + key.len()
        + 2;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        quoted[..quoted.find('"').expect("closing quote")].to_string()
    } else {
        rest.split_whitespace().next().unwrap_or("").to_string()
    }
}

/// No line comes from the SDK's own targets (its credential-chain and IMDS warnings).
fn no_sdk_lines(lines: &[String]) {
    let sdk: Vec<&String> = lines
        .iter()
        .filter(|l| {
            // `TIME LEVEL [span:]... target: message`: look at the target, not the message
            // (the proxy's own lines may quote the SDK's errors).
            l.split_whitespace()
                .skip(2)
                .take_while(|t| t.ends_with(':'))
                .any(|t| t.starts_with("aws_"))
        })
        .collect();
    assert!(sdk.is_empty(), "the SDK logged on its own: {sdk:#?}");
}

#[tokio::test]
async fn local_names_its_emulator_and_the_address_it_bound_for_a_host_name() {
    let data = tempfile::tempdir().expect("data dir");
    let serve = Serve::start(
        &[
            "--listen",
            "localhost:0",
            "--local",
            &data.path().to_string_lossy(),
        ],
        &[],
    );
    let line = serve.line("ecr-proxy ready").await;
    assert!(line.contains(" INFO "), "{line}");
    assert_eq!(field(&line, "listen"), "localhost:0");
    let registry = field(&line, "registry");
    assert!(registry.starts_with("http://127.0.0.1:") || registry.starts_with("http://[::1]:"));
    assert!(
        field(&line, "endpoint").starts_with("http://127.0.0.1:"),
        "{line}"
    );
    assert_eq!(field(&line, "region"), "us-east-1");
    assert_eq!(field(&line, "registry_id"), "the credentials' account");
    assert_eq!(field(&line, "credentials"), "static (configured)");
    // The line tells the truth: the registry answers there, and ECR (the emulator) is ready.
    assert_eq!(
        request("GET", &format!("{registry}/v2/"), &[], "")
            .await
            .status,
        200
    );
    assert_eq!(
        request("GET", &format!("{registry}/readyz"), &[], "")
            .await
            .status,
        200
    );
    no_sdk_lines(&serve.lines());
}

#[tokio::test]
async fn aws_settings_from_the_environment_are_reported() {
    let dir = tempfile::tempdir().expect("data dir");
    let emu = emulator::start(EmulatorConfig::new(dir.path()))
        .await
        .expect("emulator starts");
    let endpoint = emu.endpoint();
    let serve = Serve::start(
        &["--listen", "127.0.0.1:0"],
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL_ECR", &endpoint),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("ECR_PROXY_REGISTRY_ID", "123456789012"),
        ],
    );
    let line = serve.line("ecr-proxy ready").await;
    assert_eq!(field(&line, "endpoint"), endpoint);
    assert_eq!(field(&line, "region"), "eu-west-1");
    assert_eq!(field(&line, "registry_id"), "123456789012");
    assert_eq!(
        field(&line, "credentials"),
        "environment (AWS_ACCESS_KEY_ID)"
    );
    assert!(!line.contains("test"), "a key reached the log: {line}");
    let registry = field(&line, "registry");
    assert_eq!(
        request("GET", &format!("{registry}/readyz"), &[], "")
            .await
            .status,
        200
    );
    no_sdk_lines(&serve.lines());
}

#[tokio::test]
async fn without_credentials_one_warning_says_what_to_set_and_it_still_serves() {
    let serve = Serve::start(&["--listen", "127.0.0.1:0"], &[("AWS_REGION", "eu-west-1")]);
    let line = serve.line("found no AWS credentials").await;
    assert!(line.contains(" WARN "), "{line}");
    assert!(!line.contains("ecr-proxy ready"), "{line}");
    for what in [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "IRSA",
        "Pod Identity",
        "/readyz",
    ] {
        assert!(
            line.contains(what),
            "the warning does not mention {what}: {line}"
        );
    }
    assert_eq!(
        field(&line, "endpoint"),
        "https://api.ecr.eu-west-1.amazonaws.com"
    );
    assert_eq!(field(&line, "region"), "eu-west-1");
    assert_eq!(field(&line, "credentials"), "none");
    let registry = field(&line, "registry");
    assert_eq!(
        request("GET", &format!("{registry}/v2/"), &[], "")
            .await
            .status,
        200
    );
    let ready = request("GET", &format!("{registry}/readyz"), &[], "").await;
    assert_eq!(ready.status, 503);
    // The failed call reaches the log through the proxy's own error path, once, not the SDK's.
    let failure = serve
        .line("ECR cannot be called with the proxy's AWS credentials")
        .await;
    assert!(failure.contains("DescribeRepositories"), "{failure}");
    no_sdk_lines(&serve.lines());
}

#[tokio::test]
async fn a_missing_region_stops_it_with_the_fix() {
    let mut serve = Serve::start(&["--listen", "127.0.0.1:0"], &[]);
    assert_eq!(serve.exit_code().await, Some(1));
    let line = serve.line("no AWS region is configured").await;
    assert!(line.contains("set AWS_REGION"), "{line}");
    no_sdk_lines(&serve.lines());
}

/// A signal while the start-up line still waits for credentials (here: instance metadata that
/// accepts and never answers) starts the drain at once: it is not held up behind that wait.
#[tokio::test]
async fn a_signal_during_the_credential_wait_drains_at_once() {
    let imds = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let imds_url = format!("http://{}", imds.local_addr().unwrap());
    // Accept and hold every connection, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in imds.incoming().take(64) {
            held.push(c);
        }
    });
    let mut serve = Serve::start(
        &["--listen", "127.0.0.1:0"],
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds_url),
        ],
    );
    serve.line("registry listening").await;
    let pid = serve.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    serve.line("SIGTERM received: draining").await;
    assert_eq!(serve.exit_code().await, Some(0));
    let lines = serve.lines();
    let drained = lines
        .iter()
        .position(|l| l.contains("SIGTERM received"))
        .unwrap();
    assert!(
        !lines[..drained]
            .iter()
            .any(|l| l.contains("found no AWS credentials") || l.contains("ecr-proxy ready")),
        "the start-up line came before the drain:\n{}",
        lines.join("\n")
    );
}
