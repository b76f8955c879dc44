//! The ECR client: the only module that imports `aws_sdk_ecr`. It turns the proxy's needs into
//! ECR API calls (one method each) and ECR's answers into plain Rust values or an `EcrError`
//! sorted by `errors::classify`. It must not know about HTTP or the registry protocol.

pub mod errors;

use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::{ImageIdentifier, LayerAvailability, ListImagesFilter, TagStatus};
use aws_sdk_ecr::Client;
pub use errors::{EcrError, ErrorKind};

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
}

type Result<T> = std::result::Result<T, EcrError>;

macro_rules! sdk {
    ($op:literal, $call:expr) => {
        $call.send().await.map_err(|e| EcrError::from_sdk($op, &e))
    };
}

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
        }
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
        match sdk!("CreateRepository", call) {
            Err(e) if e.kind == ErrorKind::RepositoryAlreadyExists => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Start a layer upload: ECR's upload id and the part size it wants.
    pub async fn initiate_upload(&self, repo: &str) -> Result<(String, u64)> {
        let out = sdk!(
            "InitiateLayerUpload",
            self.client
                .initiate_layer_upload()
                .set_registry_id(self.registry_id.clone())
                .repository_name(repo)
        )?;
        let id = out.upload_id().unwrap_or_default().to_string();
        Ok((id, out.part_size().unwrap_or(0).max(0) as u64))
    }

    /// Upload bytes `first..first+data.len()`. A part that already landed (the answer was lost
    /// and the SDK retried) is reported by ECR as out of order with `lastValidByteReceived` at
    /// its end: that is success.
    pub async fn upload_part(
        &self,
        repo: &str,
        upload_id: &str,
        first: u64,
        data: Vec<u8>,
    ) -> Result<()> {
        let last = first + data.len() as u64 - 1;
        let call = self
            .client
            .upload_layer_part()
            .set_registry_id(self.registry_id.clone())
            .repository_name(repo)
            .upload_id(upload_id)
            .part_first_byte(first as i64)
            .part_last_byte(last as i64)
            .layer_part_blob(Blob::new(data));
        match call.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let landed = e
                    .as_service_error()
                    .and_then(|se| match se {
                        aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError::InvalidLayerPartException(p) => {
                            p.last_valid_byte_received()
                        }
                        _ => None,
                    })
                    .is_some_and(|lv| lv == last as i64);
                if landed {
                    tracing::info!(
                        upload_id,
                        first,
                        last,
                        "part had already landed (retried after a lost answer)"
                    );
                    Ok(())
                } else {
                    Err(EcrError::from_sdk("UploadLayerPart", &e))
                }
            }
        }
    }

    /// Finish an upload. A layer the repository already has is success.
    pub async fn complete_upload(&self, repo: &str, upload_id: &str, digest: &str) -> Result<()> {
        let call = self
            .client
            .complete_layer_upload()
            .set_registry_id(self.registry_id.clone())
            .repository_name(repo)
            .upload_id(upload_id)
            .layer_digests(digest);
        match sdk!("CompleteLayerUpload", call) {
            Err(e) if e.kind == ErrorKind::LayerAlreadyExists => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The size of each layer the repository has, `None` for the ones it does not (ECR reports
    /// those either as UNAVAILABLE or as a MissingLayerDigest failure: both mean absent).
    pub async fn check_layers(&self, repo: &str, digests: &[String]) -> Result<Vec<Option<u64>>> {
        let out = sdk!(
            "BatchCheckLayerAvailability",
            self.client
                .batch_check_layer_availability()
                .set_registry_id(self.registry_id.clone())
                .repository_name(repo)
                .set_layer_digests(Some(digests.to_vec()))
        )?;
        Ok(digests
            .iter()
            .map(|d| {
                out.layers()
                    .iter()
                    .find(|l| {
                        l.layer_digest() == Some(d.as_str())
                            && l.layer_availability() == Some(&LayerAvailability::Available)
                    })
                    .map(|l| l.layer_size().unwrap_or(0).max(0) as u64)
            })
            .collect())
    }

    /// Store a manifest; returns the digest ECR computed.
    pub async fn put_image(
        &self,
        repo: &str,
        manifest: &str,
        media_type: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<String> {
        let out = sdk!(
            "PutImage",
            self.client
                .put_image()
                .set_registry_id(self.registry_id.clone())
                .repository_name(repo)
                .image_manifest(manifest)
                .image_manifest_media_type(media_type)
                .set_image_tag(tag.map(str::to_string))
                .set_image_digest(digest.map(str::to_string))
        )?;
        Ok(out
            .image()
            .and_then(|i| i.image_id())
            .and_then(|i| i.image_digest())
            .unwrap_or_default()
            .to_string())
    }

    /// Fetch one manifest by tag or digest; `None` when ECR has no such image (in an accepted type).
    pub async fn get_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        digest: Option<&str>,
        accepted: &[String],
    ) -> Result<Option<Image>> {
        let id = ImageIdentifier::builder()
            .set_image_tag(tag.map(str::to_string))
            .set_image_digest(digest.map(str::to_string))
            .build();
        let out = sdk!(
            "BatchGetImage",
            self.client
                .batch_get_image()
                .set_registry_id(self.registry_id.clone())
                .repository_name(repo)
                .image_ids(id)
                .set_accepted_media_types((!accepted.is_empty()).then(|| accepted.to_vec()))
        )?;
        Ok(out.images().first().map(|i| Image {
            digest: i
                .image_id()
                .and_then(|id| id.image_digest())
                .unwrap_or_default()
                .to_string(),
            manifest: i.image_manifest().unwrap_or_default().to_string(),
            media_type: i
                .image_manifest_media_type()
                .unwrap_or_default()
                .to_string(),
        }))
    }

    /// Delete by tag (the tag only) or by digest (the image). `false` when there was nothing to delete.
    pub async fn delete_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<bool> {
        let id = ImageIdentifier::builder()
            .set_image_tag(tag.map(str::to_string))
            .set_image_digest(digest.map(str::to_string))
            .build();
        let out = sdk!(
            "BatchDeleteImage",
            self.client
                .batch_delete_image()
                .set_registry_id(self.registry_id.clone())
                .repository_name(repo)
                .image_ids(id)
        )?;
        if let Some(f) = out.failures().first() {
            let code = f
                .failure_code()
                .map(|c| c.as_str().to_string())
                .unwrap_or_default();
            if code != "ImageNotFound" {
                let msg = f.failure_reason().unwrap_or_default().to_string();
                return Err(EcrError::new(
                    ErrorKind::Other,
                    "BatchDeleteImage",
                    &code,
                    msg,
                ));
            }
        }
        Ok(!out.image_ids().is_empty())
    }

    /// Every tag in a repository (all pages).
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut token = None;
        loop {
            let out = sdk!(
                "ListImages",
                self.client
                    .list_images()
                    .set_registry_id(self.registry_id.clone())
                    .repository_name(repo)
                    .filter(
                        ListImagesFilter::builder()
                            .tag_status(TagStatus::Tagged)
                            .build()
                    )
                    .max_results(1000)
                    .set_next_token(token)
            )?;
            tags.extend(
                out.image_ids()
                    .iter()
                    .filter_map(|i| i.image_tag().map(str::to_string)),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(tags),
            }
        }
    }

    /// Every repository name in the registry (all pages).
    pub async fn list_repositories(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let out = sdk!(
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

    /// A short-lived URL the layer's bytes can be fetched from.
    pub async fn download_url(&self, repo: &str, digest: &str) -> Result<String> {
        let out = sdk!(
            "GetDownloadUrlForLayer",
            self.client
                .get_download_url_for_layer()
                .set_registry_id(self.registry_id.clone())
                .repository_name(repo)
                .layer_digest(digest)
        )?;
        Ok(out.download_url().unwrap_or_default().to_string())
    }

    /// The manifests whose `subject` is `digest` (all pages), optionally of one artifact type.
    pub async fn list_referrers(
        &self,
        repo: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        use aws_sdk_ecr::types::{ListImageReferrersFilter, SubjectIdentifier};
        let subject = SubjectIdentifier::builder()
            .image_digest(digest)
            .build()
            .map_err(|e| {
                EcrError::new(
                    ErrorKind::InvalidParameter,
                    "ListImageReferrers",
                    "BuildError",
                    e.to_string(),
                )
            })?;
        let filter = artifact_type.map(|t| {
            ListImageReferrersFilter::builder()
                .artifact_types(t)
                .build()
        });
        let mut out_list = Vec::new();
        let mut token = None;
        loop {
            let out = sdk!(
                "ListImageReferrers",
                self.client
                    .list_image_referrers()
                    .set_registry_id(self.registry_id.clone())
                    .repository_name(repo)
                    .subject_id(subject.clone())
                    .set_filter(filter.clone())
                    .set_next_token(token)
            )?;
            out_list.extend(out.referrers().iter().map(|r| {
                Referrer {
                    digest: r.digest().to_string(),
                    media_type: r.media_type().to_string(),
                    artifact_type: r.artifact_type().map(str::to_string),
                    size: r.size(),
                    annotations: r
                        .annotations()
                        .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                }
            }));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out_list),
            }
        }
    }
}
