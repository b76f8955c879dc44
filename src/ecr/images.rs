//! Image operations: manifests in and out, deletes, tag listing and OCI referrers.

use super::{Ecr, EcrError, ErrorKind, Image, Referrer, Result};
use aws_sdk_ecr::operation::RequestId;
use aws_sdk_ecr::types::{ImageIdentifier, ListImagesFilter, TagStatus};

impl Ecr {
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
            self,
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
            self,
            "BatchGetImage",
            self.client
                .batch_get_image()
                .set_registry_id(self.registry_id.clone())
                .repository_name(repo)
                .image_ids(id)
                .set_accepted_media_types((!accepted.is_empty()).then(|| accepted.to_vec()))
        )?;
        if out.images().is_empty() {
            if let Some(f) = out.failures().first() {
                let code = f.failure_code().map(|c| c.as_str()).unwrap_or_default();
                // Not there (or not in a type the client accepts): `None`, the handler's 404.
                // Anything else (KMS, an archived image, an upstream failure) says why.
                if !matches!(
                    code,
                    "ImageNotFound" | "ImageTagDoesNotMatchDigest" | "UnsupportedImageType" | ""
                ) {
                    return Err(EcrError::item_failure(
                        "BatchGetImage",
                        code,
                        f.failure_reason().unwrap_or_default(),
                        out.request_id(),
                    ));
                }
            }
        }
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

    /// Delete by tag (the tag only; in ECR the image goes with its last tag) or by digest (the
    /// image). The digests of the images ECR removed or untagged; empty when there was nothing.
    pub async fn delete_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Vec<String>> {
        let id = ImageIdentifier::builder()
            .set_image_tag(tag.map(str::to_string))
            .set_image_digest(digest.map(str::to_string))
            .build();
        let out = sdk!(
            self,
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
                return Err(EcrError::item_failure(
                    "BatchDeleteImage",
                    &code,
                    f.failure_reason().unwrap_or_default(),
                    out.request_id(),
                ));
            }
        }
        Ok(out
            .image_ids()
            .iter()
            .filter_map(|i| i.image_digest().map(str::to_string))
            .collect())
    }

    /// Every tag in a repository (all pages).
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut token = None;
        loop {
            let out = sdk!(
                self,
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
                self,
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
