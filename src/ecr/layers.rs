//! Layer operations: the three-step upload, availability checks and download URLs.

use super::part_body::{self, EncodedPart, PartBody};
use super::{Ecr, EcrError, ErrorKind, Result};
use aws_sdk_ecr::error::SdkError;
use aws_sdk_ecr::operation::upload_layer_part::{UploadLayerPartError, UploadLayerPartOutput};
use aws_sdk_ecr::operation::RequestId;
use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::LayerAvailability;
use bytes::BytesMut;

impl Ecr {
    /// Start a layer upload: ECR's upload id and the part size it wants.
    pub async fn initiate_upload(&self, repo: &str) -> Result<(String, u64)> {
        let out = sdk!(
            self,
            "InitiateLayerUpload",
            self.client
                .initiate_layer_upload()
                .set_registry_id(self.registry_id.clone())
                .repository_name(repo)
        )?;
        let id = out.upload_id().unwrap_or_default().to_string();
        Ok((id, out.part_size().unwrap_or(0).max(0) as u64))
    }

    /// Upload one part (see `part_body`). A part that already landed (the answer was lost and the
    /// SDK retried) is reported by ECR as out of order with `lastValidByteReceived` at its end:
    /// that is success. Gives back the part's buffer when nothing else holds it, to reuse.
    pub async fn upload_part(
        &self,
        repo: &str,
        upload_id: &str,
        part: EncodedPart,
    ) -> (Result<()>, Option<BytesMut>) {
        let EncodedPart {
            body,
            sha256_hex,
            first,
            last,
        } = part;
        let call = self
            .client
            .upload_layer_part()
            .set_registry_id(self.registry_id.clone())
            .repository_name(repo)
            .upload_id(upload_id)
            .part_first_byte(first as i64)
            .part_last_byte(last as i64)
            .layer_part_blob(Blob::new(Vec::new()))
            .customize()
            .interceptor(part_body::ReplaceBody {
                body: body.clone(),
                sha256_hex,
            });
        let started = std::time::Instant::now();
        let sent = call.send().await;
        let request_id = sent.request_id().map(str::to_string);
        let result = part_outcome(upload_id, first, last, sent);
        self.record("UploadLayerPart", started, &result, request_id.as_deref());
        (result, EncodedPart::reclaim(body))
    }

    /// Close a part body into the request body for `repo`'s upload `upload_id`.
    pub fn finish_part(
        &self,
        body: PartBody,
        repo: &str,
        upload_id: &str,
        first: u64,
    ) -> EncodedPart {
        body.finish(self.registry_id.as_deref(), repo, upload_id, first)
    }

    /// Upload a small part held whole in memory.
    pub async fn upload_small_part(&self, repo: &str, upload_id: &str, data: &[u8]) -> Result<()> {
        let part = PartBody::of(self.registry_id.as_deref(), repo, upload_id, data);
        self.upload_part(repo, upload_id, part).await.0
    }

    /// Finish an upload. ECR computes the layer's digest here and answers InvalidLayerException
    /// when it is not `digest` (the proxy does not hash uploads: this is the digest check).
    /// A layer the repository already has is success. So is an upload that
    /// is gone (or whose every answer was lost) when the layer is there: an earlier attempt
    /// completed it and its answer was lost, and the SDK's retry found nothing left to complete.
    pub async fn complete_upload(&self, repo: &str, upload_id: &str, digest: &str) -> Result<()> {
        let call = self
            .client
            .complete_layer_upload()
            .set_registry_id(self.registry_id.clone())
            .repository_name(repo)
            .upload_id(upload_id)
            .layer_digests(digest);
        match sdk!(self, "CompleteLayerUpload", call) {
            Err(e) if e.kind == ErrorKind::LayerAlreadyExists => Ok(()),
            Err(e) if matches!(e.kind, ErrorKind::UploadNotFound | ErrorKind::Unavailable) => {
                match self.check_layers(repo, &[digest.to_string()]).await {
                    Ok(sizes) if sizes[0].is_some() => {
                        tracing::info!(upload_id, digest, error = %e, "layer was completed by an attempt whose answer was lost");
                        Ok(())
                    }
                    _ => Err(e),
                }
            }
            other => other.map(|_| ()),
        }
    }

    /// The size of each layer the repository has, `None` for the ones it does not (ECR reports
    /// those either as UNAVAILABLE or as a MissingLayerDigest failure: both mean absent).
    pub async fn check_layers(&self, repo: &str, digests: &[String]) -> Result<Vec<Option<u64>>> {
        let out = sdk!(
            self,
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

    /// A short-lived URL the layer's bytes can be fetched from.
    pub async fn download_url(&self, repo: &str, digest: &str) -> Result<String> {
        let out = sdk!(
            self,
            "GetDownloadUrlForLayer",
            self.client
                .get_download_url_for_layer()
                .set_registry_id(self.registry_id.clone())
                .repository_name(repo)
                .layer_digest(digest)
        )?;
        Ok(out.download_url().unwrap_or_default().to_string())
    }
}

/// An UploadLayerPart answer: success, or a retry that found its part already landed.
fn part_outcome(
    upload_id: &str,
    first: u64,
    last: u64,
    sent: std::result::Result<UploadLayerPartOutput, SdkError<UploadLayerPartError>>,
) -> Result<()> {
    match sent {
        Ok(_) => Ok(()),
        Err(e) => {
            let landed = e
                .as_service_error()
                .and_then(|se| match se {
                    UploadLayerPartError::InvalidLayerPartException(p) => {
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
