//! The ECR client: the only module that imports `aws_sdk_ecr`. It turns the proxy's needs into
//! ECR API calls (one method each) and ECR's answers into plain Rust values or an `EcrError`
//! sorted by `errors::classify`. It must not know about HTTP or the registry protocol.

pub mod errors;
mod instrument;
pub mod startup;

use crate::metrics::Metrics;
use aws_sdk_ecr::Client;
pub use errors::{EcrError, ErrorKind, Meaning};

/// How the proxy reaches ECR.
#[derive(Clone, Debug, Default)]
pub struct Upstream {
    /// Region; `None` takes it from the standard AWS sources.
    pub region: Option<String>,
    /// Endpoint override (the emulator, a VPC endpoint); `None` honours `AWS_ENDPOINT_URL_ECR`.
    pub endpoint_url: Option<String>,
    /// Static credentials (for the embedded emulator); `None` uses the standard AWS chain.
    pub static_credentials: Option<(String, String)>,
    /// The registry (account) to address; `None` is the caller's own.
    pub registry_id: Option<String>,
}

/// Settings for repositories the proxy creates on first push.
#[derive(Clone, Debug)]
pub struct NewRepository {
    pub image_tag_mutability: String,
    pub scan_on_push: bool,
    pub encryption_type: String,
    pub kms_key: Option<String>,
}

/// A manifest as ECR stores it.
#[derive(Clone, Debug)]
pub struct Image {
    pub digest: String,
    pub manifest: String,
    pub media_type: String,
}

/// One OCI referrer as ECR lists it.
#[derive(Clone, Debug)]
pub struct Referrer {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub size: i64,
    pub annotations: Vec<(String, String)>,
}

/// A handle on ECR (cheap to clone).
#[derive(Clone, Debug)]
pub struct Ecr {
    client: Client,
    registry_id: Option<String>,
    /// Where calls are counted and timed (see `instrument`).
    metrics: Metrics,
    /// What the start-up report reads: the endpoint and the credential provider.
    setup: startup::Setup,
}

pub(crate) type Result<T> = std::result::Result<T, EcrError>;

/// Send a fluent call on `$ecr`'s client, measure it (`instrument`) and sort its error.
macro_rules! sdk {
    ($ecr:expr, $op:literal, $call:expr) => {{
        let started = std::time::Instant::now();
        let sent = $call.send().await;
        $ecr.observe($op, started, sent)
    }};
}

// After the macro, which they use.
mod images;
mod layers;
mod part_body;

pub use part_body::{EncodedPart, Midstate, ParkedBody, PartBody};

impl Ecr {
    /// Build a client from the standard AWS configuration plus the overrides in `upstream`.
    pub async fn connect(upstream: &Upstream) -> Ecr {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = &upstream.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some((id, secret)) = &upstream.static_credentials {
            loader = loader.credentials_provider(aws_sdk_ecr::config::Credentials::new(
                id,
                secret,
                None,
                None,
                "ecr-proxy-static",
            ));
        }
        let shared = loader.load().await;
        let mut conf = aws_sdk_ecr::config::Builder::from(&shared);
        if let Some(url) = &upstream.endpoint_url {
            conf = conf.endpoint_url(url);
        }
        Ecr {
            client: Client::from_conf(conf.build()),
            registry_id: upstream.registry_id.clone(),
            metrics: Metrics::default(),
            setup: startup::Setup::new(&shared, upstream).await,
        }
    }

    /// One cheap call that needs working credentials and a reachable endpoint.
    pub async fn probe(&self) -> Result<()> {
        sdk!(
            self,
            "DescribeRepositories",
            self.client
                .describe_repositories()
                .set_registry_id(self.registry_id.clone())
                .max_results(1)
        )
        .map(|_| ())
    }

    /// Whether a region is configured (the SDK cannot sign without one).
    pub fn has_region(&self) -> bool {
        self.client.config().region().is_some()
    }

    pub async fn create_repository(&self, name: &str, s: &NewRepository) -> Result<()> {
        use aws_sdk_ecr::types::{
            EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
        };
        let enc = EncryptionConfiguration::builder()
            .encryption_type(EncryptionType::from(s.encryption_type.as_str()))
            .set_kms_key(s.kms_key.clone())
            .build()
            .map_err(|e| {
                EcrError::new(
                    ErrorKind::InvalidParameter,
                    "CreateRepository",
                    "BuildError",
                    e.to_string(),
                )
            })?;
        let call = self
            .client
            .create_repository()
            .set_registry_id(self.registry_id.clone())
            .repository_name(name)
            .image_tag_mutability(ImageTagMutability::from(s.image_tag_mutability.as_str()))
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(s.scan_on_push)
                    .build(),
            )
            .encryption_configuration(enc);
        match sdk!(self, "CreateRepository", call) {
            Err(e) if e.kind == ErrorKind::RepositoryAlreadyExists => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Every repository name in the registry (all pages).
    pub async fn list_repositories(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let out = sdk!(
                self,
                "DescribeRepositories",
                self.client
                    .describe_repositories()
                    .set_registry_id(self.registry_id.clone())
                    .max_results(1000)
                    .set_next_token(token)
            )?;
            names.extend(
                out.repositories()
                    .iter()
                    .filter_map(|r| r.repository_name().map(str::to_string)),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(names),
            }
        }
    }
}
