//! BatchCheckLayerAvailability and GetDownloadUrlForLayer.

use super::{Call, Ctx, MissingLayers};
use crate::emulator::download;
use crate::emulator::error::{EcrError, EcrResult};
use crate::emulator::input::{check_digest, check_len, not_null};
use serde_json::{json, Value};

pub fn batch_check(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    let registry = ctx.registry(input)?;
    let name = input.repository_name()?;
    let digests = input
        .str_list("layerDigests", 1, 100)?
        .ok_or_else(|| not_null("layerDigests"))?;
    for d in &digests {
        check_len("layerDigests", d.chars().count(), 0, 1000)?;
    }
    let index = ctx.store.lock();
    let repo = ctx.repo(&index, name)?;
    let (mut layers, mut failures) = (Vec::new(), Vec::new());
    for d in digests {
        if !crate::names::is_ecr_digest(d) {
            failures.push(json!({ "layerDigest": d, "failureCode": "InvalidLayerDigest", "failureReason": "Invalid layer digest" }));
            continue;
        }
        match repo.layers.get(d) {
            Some(layer) => {
                let mut l = json!({ "layerDigest": d, "layerAvailability": "AVAILABLE", "layerSize": layer.size });
                if let Some(mt) = repo.blob_referenced(d).and_then(|b| b.media_type.clone()) {
                    l["mediaType"] = json!(mt);
                }
                layers.push(l);
            }
            None if ctx.missing_layers == MissingLayers::Unavailable => {
                layers.push(json!({ "layerDigest": d, "layerAvailability": "UNAVAILABLE" }));
            }
            None => failures.push(json!({ "layerDigest": d, "failureCode": "MissingLayerDigest", "failureReason": "Could not find layer" })),
        }
    }
    let _ = registry;
    Ok(json!({ "layers": layers, "failures": failures }))
}

pub fn download_url(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    ctx.registry(input)?;
    let name = input.repository_name()?;
    let digest = input.req_str("layerDigest")?;
    check_digest("layerDigest", digest)?;
    let index = ctx.store.lock();
    let repo = ctx.repo(&index, name)?;
    if !repo.layers.contains_key(digest) {
        return Err(EcrError::LayersNotFound(format!(
            "The layer with digest {digest} does not exist within the repository with name '{name}' in the registry with id '{}'",
            ctx.account
        )));
    }
    if repo.blob_referenced(digest).is_none() {
        return Err(EcrError::LayerInaccessible(format!(
            "The layer with digest {digest} in the repository with name '{name}' in the registry with id '{}' is not associated with any image",
            ctx.account
        )));
    }
    let url = download::sign(
        ctx.store.url_key(),
        &call.base_url,
        name,
        digest,
        download::unix_now(),
    );
    Ok(json!({ "downloadUrl": url, "layerDigest": digest }))
}
