//! Shared helpers for proxy tests: an emulator and a proxy in front of it on loopback, plain HTTP
//! requests (whole bodies or streamed without a length), deterministic data, and tool checks.

use bytes::Bytes;
use ecr_proxy::config::{self, Flags, ProxyConfig};
use ecr_proxy::ecr::Upstream;
use ecr_proxy::emulator::{self, EmulatorConfig, RunningEmulator};
use ecr_proxy::proxy::{self as registry, RunningProxy};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;

pub const MIB: usize = 1024 * 1024;

/// An emulator, a proxy in front of it, and an SDK client for checking what landed in "ECR".
pub struct Stack {
    pub proxy: RunningProxy,
    pub emu: RunningEmulator,
    pub ecr: aws_sdk_ecr::Client,
    /// Kept so the data directory lives as long as the stack.
    pub _dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(&[]).await
    }

    /// Start with `ECR_PROXY_*` settings given as environment pairs.
    pub async fn start_with(env: &[(&str, &str)]) -> Stack {
        let dir = tempfile::tempdir().expect("temporary directory");
        let emu = emulator::start(EmulatorConfig::new(dir.path()))
            .await
            .expect("emulator starts");
        let mut vars: HashMap<String, String> = [
            ("ECR_PROXY_CREATE_REPOSITORIES", "true"),
            ("ECR_PROXY_LISTEN", "127.0.0.1:0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut config: ProxyConfig =
            config::load(None, &vars, &Flags::default()).expect("valid test config");
        config.upstream = upstream(&emu);
        let proxy = registry::start(config).await.expect("proxy starts");
        let ecr = sdk_client(&emu.endpoint());
        Stack {
            proxy,
            emu,
            ecr,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy.addr())
    }

    /// `127.0.0.1:PORT`, as a registry name for clients.
    pub fn host(&self) -> String {
        self.proxy.addr().to_string()
    }
}

pub fn upstream(emu: &RunningEmulator) -> Upstream {
    Upstream {
        region: Some("us-east-1".into()),
        endpoint_url: Some(emu.endpoint()),
        static_credentials: Some(("test".into(), "test".into())),
        registry_id: None,
    }
}

pub fn sdk_client(endpoint: &str) -> aws_sdk_ecr::Client {
    use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};
    let cfg = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_ecr::Client::from_conf(cfg)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The first error code of an OCI error body.
    pub fn error_code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        v["errors"][0]["code"].as_str().unwrap_or("").to_string()
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Body) -> Resp {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Body>();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(body).unwrap())
        .await
        .expect("request sent");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// A request with a whole body (sent with `Content-Length`).
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Resp {
    let body = Full::new(body.into())
        .map_err(|never| match never {})
        .boxed();
    send(method, url, headers, body).await
}

/// A request whose body is streamed in `chunk`-byte frames with no length (chunked encoding).
pub async fn request_streamed(method: &str, url: &str, data: Bytes, chunk: usize) -> Resp {
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = (0..data.len())
        .step_by(chunk)
        .map(|i| Ok(Frame::data(data.slice(i..(i + chunk).min(data.len())))))
        .collect();
    let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
    send(method, url, &[], body).await
}

/// Deterministic pseudo-random bytes.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Whether `tool` runs. Under `CI=true` a missing tool fails the test; elsewhere it is skipped
/// with a note.
pub fn tool_available(tool: &str, version_arg: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg(version_arg)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("`{tool}` is required under CI=true (tests/run installs it)");
        }
        eprintln!("note: `{tool}` is not available; skipping this test outside CI");
    }
    ok
}

/// The layer's bytes as the emulator serves them (after a manifest references it).
pub async fn layer_from_emulator(stack: &Stack, repo: &str, digest: &str) -> Bytes {
    let url = stack
        .ecr
        .get_download_url_for_layer()
        .repository_name(repo)
        .layer_digest(digest)
        .send()
        .await
        .expect("download URL")
        .download_url()
        .unwrap()
        .to_string();
    let r = request("GET", &url, &[], Bytes::new()).await;
    assert_eq!(r.status, 200, "download of {digest}");
    r.body
}
