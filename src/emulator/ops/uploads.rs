//! InitiateLayerUpload, UploadLayerPart and CompleteLayerUpload: ECR's three-step layer upload,
//! with its rules (consecutive parts, 20 MiB per part, 5 MiB minimum for all but the last part,
//! 4,200 parts, digest check). Part bytes go straight to the upload's data file; the index lock
//! is never held while bytes are written or hashed.

mod data_file;
mod expiry;

pub use expiry::expire_idle;

use super::{now, Call, Ctx};
use crate::emulator::error::{EcrError, EcrResult};
use crate::emulator::input::{check_digest, check_len};
use crate::emulator::store::model::{LayerRecord, UploadRecord};
use crate::emulator::store::UploadState;
use data_file::{hash_file, not_base64, write_part};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::fs;

const MAX_PART: usize = crate::parts::MAX_PART_SIZE as usize;
const MIN_PART: u64 = crate::parts::MIN_PART_SIZE;
const MAX_PARTS: usize = 4200;

pub fn initiate(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let registry = ctx.registry(&call.input)?;
    let name = call.input.repository_name()?;
    let mut index = ctx.store.lock();
    ctx.repo(&index, name)?;
    let id = uuid::Uuid::new_v4().to_string();
    let record = UploadRecord {
        id: id.clone(),
        repository: name.to_string(),
        parts: Vec::new(),
        received: 0,
        created_at: now(),
        touched_at: None,
    };
    fs::create_dir_all(ctx.store.layout().upload_dir(&id))?;
    fs::File::create(ctx.store.layout().upload_data(&id))?;
    ctx.store.save_upload(&record)?;
    index.uploads.insert(
        id.clone(),
        UploadState {
            record,
            busy: false,
            hasher: Some(Sha256::new()),
        },
    );
    let _ = registry;
    Ok(json!({ "uploadId": id, "partSize": ctx.part_size }))
}

fn upload_not_found(ctx: &Ctx, id: &str, repo: &str) -> EcrError {
    EcrError::UploadNotFound(format!(
        "The upload with id '{id}' does not exist in the repository with name '{repo}' in the registry with id '{}'",
        ctx.account
    ))
}

/// Check out an upload for exclusive use: it must exist, belong to `repo` and be idle.
fn checkout<'a>(
    ctx: &Ctx,
    uploads: &'a mut std::collections::HashMap<String, UploadState>,
    id: &str,
    repo: &str,
) -> EcrResult<&'a mut UploadState> {
    match uploads.get_mut(id) {
        Some(u) if u.record.repository == repo => Ok(u),
        _ => Err(upload_not_found(ctx, id, repo)),
    }
}

pub fn upload_part(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    // Like ECR, a blob that does not deserialize is refused before any member is validated.
    if let Ok(b64) = input.req_str_bytes("layerPartBlob") {
        base64_simd::STANDARD.check(b64).map_err(|_| not_base64())?;
    }
    let registry = ctx.registry(input)?;
    let name = input.repository_name()?;
    let id = input.upload_id()?;
    let first = input.req_i64("partFirstByte")?;
    let last = input.req_i64("partLastByte")?;
    for (member, v) in [("partFirstByte", first), ("partLastByte", last)] {
        if v < 0 {
            return Err(EcrError::invalid(
                member,
                "Member must have value greater than or equal to 0",
            ));
        }
    }
    let b64 = input.req_str_bytes("layerPartBlob")?;
    let size = base64_simd::STANDARD
        .decoded_length(b64)
        .map_err(|_| not_base64())?;
    check_len("layerPartBlob", size, 0, MAX_PART)?;
    let part_error = |message: String, received: u64| EcrError::InvalidLayerPart {
        message,
        registry_id: registry.clone(),
        repository_name: name.to_string(),
        upload_id: id.to_string(),
        last_valid_byte_received: received.checked_sub(1),
    };

    let (first, last) = (first as u64, last as u64);
    let mut hasher = {
        let mut index = ctx.store.lock();
        ctx.repo(&index, name)?;
        let upload = checkout(ctx, &mut index.uploads, id, name)?;
        let received = upload.record.received;
        if upload.busy {
            return Err(part_error(
                "Another part of this upload is being written".into(),
                received,
            ));
        }
        if first != received {
            return Err(part_error(
                format!("The part's first byte {first} does not follow the last byte received"),
                received,
            ));
        }
        if size == 0 || last < first || last - first + 1 != size as u64 {
            return Err(part_error(
                format!("The part range {first}-{last} does not match the {size}-byte part"),
                received,
            ));
        }
        if upload.record.parts.len() >= MAX_PARTS {
            return Err(EcrError::LimitExceeded(format!(
                "An upload can have at most {MAX_PARTS} parts"
            )));
        }
        upload.busy = true;
        upload.hasher.take()
    };

    let written = write_part(
        &ctx.store.layout().upload_data(id),
        first,
        b64,
        hasher.as_mut(),
    );
    if written.is_err() {
        hasher = None; // it saw bytes that were then cut off; CompleteLayerUpload re-reads the file
    }

    let mut index = ctx.store.lock();
    let Some(upload) = index.uploads.get_mut(id) else {
        return Err(upload_not_found(ctx, id, name)); // the repository was deleted meanwhile
    };
    upload.busy = false;
    written?;
    upload.record.parts.push(size as u64);
    upload.record.received = last + 1;
    let touched = upload.record.touched_at.replace(now());
    upload.hasher = hasher;
    if let Err(e) = ctx.store.save_upload(&upload.record) {
        upload.record.parts.pop();
        upload.record.received = first;
        upload.record.touched_at = touched;
        upload.hasher = None;
        return Err(e.into());
    }
    Ok(
        json!({ "registryId": registry, "repositoryName": name, "uploadId": id, "lastByteReceived": last }),
    )
}

pub fn complete(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    let registry = ctx.registry(input)?;
    let name = input.repository_name()?;
    let id = input.upload_id()?;
    let digests = input
        .str_list("layerDigests", 1, 100)?
        .ok_or_else(|| crate::emulator::input::not_null("layerDigests"))?;
    for d in &digests {
        check_digest("layerDigests", d)?;
    }

    let (hasher, received) = {
        let mut index = ctx.store.lock();
        ctx.repo(&index, name)?;
        let upload = checkout(ctx, &mut index.uploads, id, name)?;
        if upload.busy {
            return Err(EcrError::InvalidLayerPart {
                message: "A part of this upload is still being written".into(),
                registry_id: registry.clone(),
                repository_name: name.to_string(),
                upload_id: id.to_string(),
                last_valid_byte_received: upload.record.received.checked_sub(1),
            });
        }
        let parts = &upload.record.parts;
        if parts.is_empty() {
            return Err(EcrError::EmptyUpload(format!(
                "The upload with id '{id}' contains no layer parts"
            )));
        }
        if parts[..parts.len() - 1].iter().any(|&p| p < MIN_PART) {
            return Err(EcrError::LayerPartTooSmall(
                "Layer parts must be at least 5 MiB in size".into(),
            ));
        }
        upload.busy = true;
        (upload.hasher.take(), upload.record.received)
    };

    let computed = match hasher {
        Some(h) => Ok(crate::digest::Digest::from_sha256(h.finalize().into())),
        None => hash_file(&ctx.store.layout().upload_data(id), received),
    };

    let mut index = ctx.store.lock();
    let Some(upload) = index.uploads.get_mut(id) else {
        return Err(upload_not_found(ctx, id, name));
    };
    upload.busy = false;
    let computed = computed?.to_string();
    if !digests.contains(&computed.as_str()) {
        return Err(EcrError::InvalidLayer(format!(
            "The layer digest calculated for upload id '{id}' ({computed}) does not match the provided digest {}",
            digests.join(", ")
        )));
    }
    let record = upload.record.clone();
    let repo = ctx.repo_mut(&mut index, name)?;
    if repo.layers.contains_key(&computed) {
        index.uploads.remove(id);
        ctx.store.remove_upload(id)?;
        return Err(EcrError::LayerAlreadyExists(format!(
            "The layer with digest '{computed}' already exists in the repository with name '{name}' in registry with id '{registry}'"
        )));
    }
    let blob = ctx.store.layout().blob(&computed);
    if blob.exists() {
        ctx.store.remove_upload(id)?;
    } else {
        fs::create_dir_all(blob.parent().expect("blob paths have a parent"))?;
        let data = ctx.store.layout().upload_data(id);
        // Exactly the accepted parts: a part refused mid-write may have left bytes past them.
        fs::OpenOptions::new()
            .write(true)
            .open(&data)?
            .set_len(record.received)?;
        fs::rename(data, &blob)?;
        ctx.store.remove_upload(id)?;
    }
    let layer = LayerRecord {
        size: record.received,
        parts: record.parts,
    };
    ctx.store.save_layer(name, &computed, &layer)?;
    repo.layers.insert(computed.clone(), layer);
    index.uploads.remove(id);
    Ok(
        json!({ "registryId": registry, "repositoryName": name, "uploadId": id, "layerDigest": computed }),
    )
}
