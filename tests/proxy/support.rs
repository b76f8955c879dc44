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
        Stack::start_faulty(env, "", 0).await
    }

    /// Start with an emulator that injects `faults` (see `emulator::faults`) from `seed`.
    pub async fn start_faulty(env: &[(&str, &str)], faults: &str, seed: u64) -> Stack {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut emu_config = EmulatorConfig::new(dir.path());
        emu_config.faults = faults.to_string();
        emu_config.fault_seed = seed;
        let emu = emulator::start(emu_config).await.expect("emulator starts");
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

    /// Start from a config file: `files` (name, bytes) are written to `conf/` under the stack's
    /// folder (`Stack::conf`), then `toml` as `conf/config.toml`, whose relative paths name
    /// those files. The listen address is 127.0.0.1 on a free port unless `toml` says
    /// otherwise; `env` overrides as `ECR_PROXY_*` variables do.
    pub async fn start_config(toml: &str, files: &[(&str, &[u8])], env: &[(&str, &str)]) -> Stack {
        Stack::start_config_faulty(toml, files, env, "").await
    }

    /// `start_config` with an emulator that injects `faults` (see `emulator::faults`).
    pub async fn start_config_faulty(
        toml: &str,
        files: &[(&str, &[u8])],
        env: &[(&str, &str)],
        faults: &str,
    ) -> Stack {
        let dir = tempfile::tempdir().expect("temporary directory");
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        for (name, bytes) in files {
            std::fs::write(conf.join(name), bytes).unwrap();
        }
        let path = conf.join("config.toml");
        std::fs::write(&path, toml).unwrap();
        let mut emu_config = EmulatorConfig::new(dir.path());
        emu_config.faults = faults.to_string();
        let emu = emulator::start(emu_config).await.expect("emulator starts");
        let mut vars: HashMap<String, String> = [("ECR_PROXY_CREATE_REPOSITORIES", "true")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !toml.lines().any(|l| l.trim_start().starts_with("listen")) {
            vars.insert("ECR_PROXY_LISTEN".into(), "127.0.0.1:0".into());
        }
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut config =
            config::load(Some(&path), &vars, &Flags::default()).expect("valid test config");
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

    /// The folder `start_config` wrote its files to.
    pub fn conf(&self) -> std::path::PathBuf {
        self._dir.path().join("conf")
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

/// Send one request with any body; the whole answer.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Body) -> Resp {
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

/// Whether `tool` runs. Under `CI=true` a missing tool fails the test; elsewhere the test says
/// `SKIPPED <test>: <tool> not installed` where it is seen, and passes.
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
        skipped(&format!(
            "{tool} not installed (or not answering `{tool} {version_arg}`)"
        ));
    }
    ok
}

/// Whether `tool` is on the PATH (for tools without a version flag that exits 0, such as
/// `htpasswd`); under `CI=true` a missing tool fails the test, as with `tool_available`.
pub fn tool_on_path(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()));
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("`{tool}` is required under CI=true (tests/run installs it)");
        }
        skipped(&format!("{tool} not installed"));
    }
    found
}

/// Say that the running test is skipped, and why, on the process's stderr: libtest captures
/// `eprintln!` (shown only for failures), not a direct write.
pub fn skipped(why: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
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

/// An OCI image layout being written in a directory: blobs under `blobs/sha256`, the top index
/// in `index.json`.
pub struct OciLayout {
    pub dir: std::path::PathBuf,
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An OCI image manifest for `config` and `layers` (uncompressed tar layers, in order, each
/// given as its digest and size).
pub fn oci_manifest(config: &[u8], layers: &[(String, usize)]) -> String {
    let descs: Vec<String> = layers
        .iter()
        .map(|(d, len)| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{len}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        digest(config),
        config.len(),
        descs.join(",")
    )
}

/// The manifest ECR stores as `repo:tag` (OCI or Docker v2), and the digest ECR gives it.
pub async fn stored_manifest(ecr: &aws_sdk_ecr::Client, repo: &str, tag: &str) -> (String, String) {
    let got = ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .accepted_media_types(OCI_MANIFEST)
        .accepted_media_types("application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .await
        .expect("BatchGetImage");
    assert!(
        got.failures().is_empty(),
        "{repo}:{tag}: {:?}",
        got.failures()
    );
    let image = got.images().first().expect("the image is in ECR");
    let manifest = image.image_manifest().unwrap_or_default().to_string();
    let d = image.image_id().and_then(|id| id.image_digest());
    (manifest, d.unwrap_or_default().to_string())
}

/// A docker build context for an image FROM scratch with one layer per file of `sizes` bytes
/// (contents seeded from `seed`), each file starting with `name` so that no layer is shared with
/// another image in the engine.
pub fn scratch_build_context(name: &str, sizes: &[usize], seed: u64) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().expect("temporary directory");
    let mut dockerfile = String::from("FROM scratch\n");
    for (i, &len) in sizes.iter().enumerate() {
        let mut bytes = format!("{name} f{i}\n").into_bytes();
        bytes.extend(data(seed + i as u64, len));
        std::fs::write(ctx.path().join(format!("f{i}")), bytes).unwrap();
        dockerfile.push_str(&format!("COPY f{i} /f{i}\n"));
    }
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// `ecr-proxy serve --listen <listen>` against the ECR at `endpoint` (the emulator), with test
/// credentials and repositories created on first push; the caller adds its own settings.
pub fn serve_command(binary: &str, endpoint: &str, listen: &str) -> std::process::Command {
    let mut c = std::process::Command::new(binary);
    c.args(["serve", "--listen", listen])
        .env("AWS_ENDPOINT_URL_ECR", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("ECR_PROXY_CREATE_REPOSITORIES", "true");
    c
}

impl OciLayout {
    /// An empty layout at `dir` (created).
    pub fn create(dir: &std::path::Path) -> OciLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create layout");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        OciLayout {
            dir: dir.to_path_buf(),
        }
    }

    /// Write `bytes` as a blob; returns its digest.
    pub fn blob(&self, bytes: &[u8]) -> String {
        let d = digest(bytes);
        let hex = d.strip_prefix("sha256:").unwrap();
        std::fs::write(self.dir.join("blobs/sha256").join(hex), bytes).expect("write blob");
        d
    }

    /// Write an image for `linux/<arch>` (config, the layers as uncompressed tar layers, then
    /// the manifest) as blobs; returns the manifest bytes.
    pub fn image(&self, arch: &str, layers: &[Vec<u8>]) -> Vec<u8> {
        let digests: Vec<String> = layers.iter().map(|l| self.blob(l)).collect();
        let diff_ids: Vec<String> = digests.iter().map(|d| format!("\"{d}\"")).collect();
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            diff_ids.join(",")
        );
        self.blob(config.as_bytes());
        let descs: Vec<(String, usize)> = digests
            .into_iter()
            .zip(layers.iter().map(Vec::len))
            .collect();
        let manifest = oci_manifest(config.as_bytes(), &descs);
        self.blob(manifest.as_bytes());
        manifest.into_bytes()
    }

    /// Write an image index over `linux/<arch>` image manifests as a blob; returns its bytes.
    pub fn index(&self, manifests: &[(&str, &[u8])]) -> Vec<u8> {
        let descs: Vec<String> = manifests
            .iter()
            .map(|(arch, m)| {
                format!(
                    r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
                    digest(m),
                    m.len()
                )
            })
            .collect();
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            descs.join(",")
        );
        self.blob(index.as_bytes());
        index.into_bytes()
    }

    /// Write `index.json` naming the blob `bytes` (of `media_type`) as `tag`.
    pub fn tag(&self, tag: &str, media_type: &str, bytes: &[u8]) {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{media_type}","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#,
            digest(bytes),
            bytes.len()
        );
        std::fs::write(self.dir.join("index.json"), index).expect("write index.json");
    }

    /// Every blob of the layout by digest, checking each file's name is its digest.
    pub fn blobs(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(self.dir.join("blobs/sha256")).expect("read blobs") {
            let path = entry.expect("blob entry").path();
            let bytes = std::fs::read(&path).expect("read blob");
            let name = format!("sha256:{}", path.file_name().unwrap().to_string_lossy());
            assert_eq!(
                digest(&bytes),
                name,
                "blob file {} has other bytes",
                path.display()
            );
            out.insert(name, bytes);
        }
        out
    }

    /// The descriptor `index.json` gives for `tag`.
    pub fn tagged(&self, tag: &str) -> Option<serde_json::Value> {
        let text = std::fs::read(self.dir.join("index.json")).ok()?;
        let index: serde_json::Value = serde_json::from_slice(&text).ok()?;
        index["manifests"]
            .as_array()?
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .cloned()
    }
}

/// Run `skopeo --insecure-policy ARGS` with its state (auth files, blob-info cache, temporary
/// files) kept in `home`, whatever its outcome.
pub async fn skopeo_output(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .env("TMPDIR", home)
        .kill_on_drop(true)
        .output()
        .await
        .expect("skopeo runs")
}

/// `skopeo_output`, panicking with skopeo's output unless it succeeds.
pub async fn skopeo(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = skopeo_output(home, args).await;
    assert!(
        out.status.success(),
        "skopeo {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A tar archive (ustar) holding one regular file `name` with `content`: a layer containerd
/// and docker can unpack.
pub fn tar_layer(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0"); // mode
    h[108..116].copy_from_slice(b"0000000\0"); // uid
    h[116..124].copy_from_slice(b"0000000\0"); // gid
    h[124..136].copy_from_slice(format!("{:011o}\0", content.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0"); // mtime
    h[148..156].copy_from_slice(b"        "); // the checksum counts itself as spaces
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// The sum of the samples of metric `name` in the proxy's `/metrics` whose line contains
/// `filter` (`""`: all of them).
pub async fn metric(s: &Stack, name: &str, filter: &str) -> f64 {
    let r = request("GET", &s.url("/metrics"), &[], Bytes::new()).await;
    String::from_utf8_lossy(&r.body)
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
