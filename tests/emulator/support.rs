//! Shared helpers: an emulator on a temporary directory with an aws-sdk-ecr client (restartable),
//! deterministic test data, layer uploads and image pushes through the SDK, and SDK error
//! accessors. Plain HTTP lives in `wire`.

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::operation::complete_layer_upload::{
    CompleteLayerUploadError, CompleteLayerUploadOutput,
};
use aws_sdk_ecr::operation::upload_layer_part::{UploadLayerPartError, UploadLayerPartOutput};
use aws_sdk_ecr::primitives::Blob;
pub use aws_sdk_ecr::Client;
use ecr_proxy::emulator::{start_tuned, EmulatorConfig, EmulatorTuning, RunningEmulator};
use sha2::{Digest as _, Sha256};

pub const MIB: usize = 1024 * 1024;
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A running emulator on its own data directory, and a client for it.
pub struct Env {
    // Field order is drop order: the emulator stops before its directory goes.
    pub emu: RunningEmulator,
    pub client: Client,
    pub config: EmulatorConfig,
    pub tuning: EmulatorTuning,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(|_| {}).await
    }

    /// Start with the default configuration changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut EmulatorConfig)) -> Env {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = EmulatorConfig::new(dir.path());
        adjust(&mut config);
        Env::boot(config, EmulatorTuning::default(), dir).await
    }

    /// Start with these tuning settings.
    pub async fn start_tuned(tuning: EmulatorTuning) -> Env {
        let dir = tempfile::tempdir().expect("temporary directory");
        Env::boot(EmulatorConfig::new(dir.path()), tuning, dir).await
    }

    async fn boot(config: EmulatorConfig, tuning: EmulatorTuning, dir: tempfile::TempDir) -> Env {
        let emu = start_tuned(config.clone(), tuning.clone())
            .await
            .expect("emulator starts");
        let client = client(&emu.endpoint(), "test", "test");
        Env {
            emu,
            client,
            config,
            tuning,
            dir,
        }
    }

    /// Stop the emulator (closing its connections), start a new one on the same directory with
    /// the configuration changed by `adjust`, and make a new client.
    pub async fn restart_with(self, adjust: impl FnOnce(&mut EmulatorConfig)) -> Env {
        let tuning = self.tuning.clone();
        self.restart_tuned(adjust, tuning).await
    }

    /// `restart_with`, with these tuning settings from now on.
    pub async fn restart_tuned(
        self,
        adjust: impl FnOnce(&mut EmulatorConfig),
        tuning: EmulatorTuning,
    ) -> Env {
        let Env {
            emu,
            client,
            mut config,
            dir,
            ..
        } = self;
        drop(client);
        drop(emu);
        tokio::task::yield_now().await;
        adjust(&mut config);
        Env::boot(config, tuning, dir).await
    }

    pub async fn restart(self) -> Env {
        self.restart_with(|_| {}).await
    }

    pub fn endpoint(&self) -> String {
        self.emu.endpoint()
    }

    /// Create a repository (MUTABLE).
    pub async fn repo(&self, name: &str) {
        self.client
            .create_repository()
            .repository_name(name)
            .send()
            .await
            .expect("CreateRepository");
    }
}

/// An aws-sdk-ecr client for `endpoint` with these credentials and no retries.
pub fn client(endpoint: &str, access_key: &str, secret: &str) -> Client {
    use aws_sdk_ecr::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region};
    let cfg = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key, secret, None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(cfg)
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

/// `len` deterministic pseudo-random bytes (xorshift64*), different for each seed.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `sha256:<hex>` of `bytes`, computed here independently of the emulator.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The error code of an SDK error (None for dispatch failures).
pub fn code<E: ProvideErrorMetadata>(e: &SdkError<E>) -> Option<String> {
    e.code().map(str::to_string)
}

/// The HTTP status of an SDK error that came with a response.
pub fn status<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

pub async fn initiate(c: &Client, repo: &str) -> String {
    let out = c
        .initiate_layer_upload()
        .repository_name(repo)
        .send()
        .await
        .expect("InitiateLayerUpload");
    out.upload_id.expect("an upload id")
}

/// UploadLayerPart of `bytes` starting at `first`.
pub async fn part(
    c: &Client,
    repo: &str,
    id: &str,
    first: usize,
    bytes: &[u8],
) -> Result<UploadLayerPartOutput, SdkError<UploadLayerPartError>> {
    c.upload_layer_part()
        .repository_name(repo)
        .upload_id(id)
        .part_first_byte(first as i64)
        .part_last_byte((first + bytes.len()) as i64 - 1)
        .layer_part_blob(Blob::new(bytes.to_vec()))
        .send()
        .await
}

/// Upload `data[start..]` in parts of `sizes` (which must add up), checking each answer.
pub async fn parts(c: &Client, repo: &str, id: &str, data: &[u8], start: usize, sizes: &[usize]) {
    let mut at = start;
    for &n in sizes {
        let out = part(c, repo, id, at, &data[at..at + n])
            .await
            .expect("UploadLayerPart");
        assert_eq!(out.last_byte_received, Some((at + n) as i64 - 1));
        at += n;
    }
    assert_eq!(at, data.len(), "part sizes must cover the data");
}

pub async fn complete(
    c: &Client,
    repo: &str,
    id: &str,
    digest: &str,
) -> Result<CompleteLayerUploadOutput, SdkError<CompleteLayerUploadError>> {
    c.complete_layer_upload()
        .repository_name(repo)
        .upload_id(id)
        .layer_digests(digest)
        .send()
        .await
}

/// Upload `data` as a layer in parts of `sizes`; the digest ECR confirmed.
pub async fn push_layer(c: &Client, repo: &str, data: &[u8], sizes: &[usize]) -> String {
    let id = initiate(c, repo).await;
    parts(c, repo, &id, data, 0, sizes).await;
    let digest = sha256(data);
    let out = complete(c, repo, &id, &digest)
        .await
        .expect("CompleteLayerUpload");
    assert_eq!(out.layer_digest.as_deref(), Some(digest.as_str()));
    digest
}

/// Upload a small one-part blob made from `seed`; its bytes and digest.
pub async fn push_blob(c: &Client, repo: &str, seed: u64, len: usize) -> (Vec<u8>, String) {
    let bytes = data(seed, len);
    let digest = push_layer(c, repo, &bytes, &[len]).await;
    (bytes, digest)
}

/// An OCI image manifest, laid out with uneven whitespace so that re-serialising it would change
/// its digest. `extra` is spliced in before the closing brace (e.g. `,"subject":{...}`).
pub fn oci_manifest(config: (&str, usize), layers: &[(&str, usize)], extra: &str) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, n)| {
            format!("{{ \"mediaType\": \"{OCI_LAYER}\", \"digest\": \"{d}\", \"size\": {n} }}")
        })
        .collect();
    format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{OCI_MANIFEST}\",\n  \"config\": {{\"mediaType\":\"{OCI_CONFIG}\",\"digest\":\"{}\",\"size\":{}}},\n  \"layers\": [\n    {}\n  ]{extra}\n}}\n",
        config.0,
        config.1,
        layers.join(",\n    ")
    )
}

/// An image pushed by `push_image`: what a puller would check.
pub struct Pushed {
    pub manifest: String,
    pub digest: String,
    pub config: (Vec<u8>, String),
    pub layer: (Vec<u8>, String),
}

/// Push a config blob, a layer and an OCI manifest referencing both (tagged if `tag`).
pub async fn push_image(c: &Client, repo: &str, seed: u64, tag: Option<&str>) -> Pushed {
    let config = push_blob(c, repo, seed, 300 + seed as usize % 50).await;
    let layer = push_blob(c, repo, seed + 1000, 4096 + seed as usize).await;
    let manifest = oci_manifest(
        (&config.1, config.0.len()),
        &[(&layer.1, layer.0.len())],
        "",
    );
    let digest = put_manifest(c, repo, &manifest, OCI_MANIFEST, tag).await;
    Pushed {
        manifest,
        digest,
        config,
        layer,
    }
}

/// PutImage; the digest ECR returned, checked against the manifest's bytes.
pub async fn put_manifest(
    c: &Client,
    repo: &str,
    manifest: &str,
    media_type: &str,
    tag: Option<&str>,
) -> String {
    let out = c
        .put_image()
        .repository_name(repo)
        .image_manifest(manifest)
        .image_manifest_media_type(media_type)
        .set_image_tag(tag.map(str::to_string))
        .send()
        .await
        .expect("PutImage");
    let id = out.image.and_then(|i| i.image_id).expect("an image id");
    let digest = id.image_digest.expect("a digest");
    assert_eq!(digest, sha256(manifest.as_bytes()));
    digest
}
