//! Keeping a just-pushed blob readable. ECR answers GetDownloadUrlForLayer with
//! LayerInaccessibleException until a manifest references the layer, yet registry clients (and
//! the OCI conformance tests) read blobs right after pushing them. On that exception the proxy
//! pushes a small untagged "holder" manifest into the same repository, an OCI artifact of type
//! `application/vnd.ecr-proxy.layer-holder.v1` whose only layer is that blob, and asks again.
//! The holder is deterministic per blob (pushing it twice is a no-op), needs no state in the
//! proxy (any replica can serve the read), and is removed by an "expire untagged images"
//! lifecycle rule like any untagged image.

use super::error::RegistryResult;
use super::App;
use crate::digest::Digest;
use crate::ecr::ErrorKind;

pub const HOLDER_ARTIFACT_TYPE: &str = "application/vnd.ecr-proxy.layer-holder.v1";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY_CONFIG: &[u8] = b"{}";

/// A download URL for the layer, making the layer referenced first if ECR insists.
pub async fn download_url(app: &App, repo: &str, digest: &Digest) -> RegistryResult<String> {
    match app.ecr.download_url(repo, digest.as_str()).await {
        Err(e) if e.kind == ErrorKind::LayerInaccessible => {
            tracing::info!(repository = repo, %digest, "layer not referenced by any image yet: pushing a holder manifest");
            hold(app, repo, digest).await?;
            Ok(app.ecr.download_url(repo, digest.as_str()).await?)
        }
        other => Ok(other?),
    }
}

async fn hold(app: &App, repo: &str, digest: &Digest) -> RegistryResult<()> {
    let config = Digest::of(EMPTY_CONFIG);
    let sizes = app
        .ecr
        .check_layers(repo, &[digest.to_string(), config.to_string()])
        .await?;
    let size = sizes[0].unwrap_or(0);
    if sizes[1].is_none() {
        let (upload, _) = app.ecr.initiate_upload(repo).await?;
        app.ecr
            .upload_small_part(repo, &upload, EMPTY_CONFIG)
            .await?;
        app.ecr
            .complete_upload(repo, &upload, config.as_str())
            .await?;
    }
    let manifest = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","artifactType":"{at}","#,
            r#""config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{cfg}","size":2}},"#,
            r#""layers":[{{"mediaType":"application/octet-stream","digest":"{d}","size":{size}}}],"#,
            r#""annotations":{{"org.opencontainers.image.description":"ecr-proxy: keeps a pushed blob readable until an image references it"}}}}"#
        ),
        mt = OCI_MANIFEST,
        at = HOLDER_ARTIFACT_TYPE,
        cfg = config,
        d = digest,
        size = size
    );
    let manifest_digest = Digest::of(manifest.as_bytes());
    match app
        .ecr
        .put_image(
            repo,
            &manifest,
            OCI_MANIFEST,
            None,
            Some(manifest_digest.as_str()),
        )
        .await
    {
        Err(e) if e.kind != ErrorKind::ImageAlreadyExists => Err(e.into()),
        _ => Ok(()),
    }
}
