//! PutImage, BatchGetImage and BatchDeleteImage: manifests stored byte for byte, tags with ECR's
//! mutability rules, and per-item failures for the batch reads and deletes.

use super::{now, Call, Ctx};
use crate::digest::Digest;
use crate::emulator::error::{EcrError, EcrResult};
use crate::emulator::input::{check_digest, check_len, check_tag, not_null, Input};
use crate::emulator::manifest;
use crate::emulator::store::model::{ImageRecord, RepoState, RepositoryRecord};
use serde_json::{json, Map, Value};

const MAX_TAGS_PER_IMAGE: usize = 1000;

pub fn put(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    let registry = ctx.registry(input)?;
    let name = input.repository_name()?;
    let text = input.req_str("imageManifest")?;
    check_len("imageManifest", text.chars().count(), 1, 4_194_304)?;
    let tag = input.opt_str("imageTag")?;
    if let Some(t) = tag {
        check_tag("imageTag", t)?;
    }
    let given_digest = input.opt_str("imageDigest")?;
    if let Some(d) = given_digest {
        check_digest("imageDigest", d)?;
    }
    let declared = input.opt_str("imageManifestMediaType")?;
    let bad_json = || EcrError::invalid("ImageManifest", "Invalid JSON syntax");
    let parsed = manifest::parse(text, declared).ok_or_else(bad_json)?;
    let media_type = match (declared, parsed.media_type.as_deref()) {
        (Some(d), Some(m)) if d != m => {
            return Err(EcrError::invalid(
                "imageManifestMediaType",
                format!(
                    "Manifest media type '{m}' does not match the imageManifestMediaType '{d}'"
                ),
            ))
        }
        (Some(d), _) => d.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => return Err(bad_json()),
    };
    let digest = Digest::of(text.as_bytes()).to_string();
    if let Some(d) = given_digest {
        if d != digest {
            return Err(EcrError::ImageDigestDoesNotMatch(format!(
                "Provided digest {d} does not match the digest of the manifest: {digest}"
            )));
        }
    }

    let mut index = ctx.store.lock();
    let repo = ctx.repo_mut(&mut index, name)?;
    let missing: Vec<&str> = parsed
        .blobs
        .iter()
        .map(|b| b.digest.as_str())
        .filter(|d| !repo.layers.contains_key(*d))
        .collect();
    if !missing.is_empty() {
        return Err(EcrError::LayersNotFound(format!(
            "Layers with digests ['{}'] required for pushing image into repository with name '{name}' in the registry with id '{registry}' do not exist",
            missing.join("', '")
        )));
    }
    let missing: Vec<&str> = parsed
        .children
        .iter()
        .map(String::as_str)
        .filter(|d| !repo.images.contains_key(*d))
        .collect();
    if !missing.is_empty() {
        return Err(EcrError::ReferencedImagesNotFound(format!(
            "Manifests with digests ['{}'] required for pushing image into repository with name '{name}' in the registry with id '{registry}' do not exist",
            missing.join("', '")
        )));
    }
    let exists = repo.images.contains_key(&digest);
    let current = tag.and_then(|t| repo.tags.get(t));
    match (tag, current) {
        (Some(t), Some(cur)) if *cur == digest => return Err(already_exists(&digest, Some(t), name, &registry)),
        (None, _) if exists => return Err(already_exists(&digest, None, name, &registry)),
        (Some(t), Some(_)) if is_immutable(&repo.record, t) => {
            return Err(EcrError::ImageTagAlreadyExists(format!(
                "The image tag '{t}' already exists in the '{name}' repository and cannot be overwritten because the repository is immutable."
            )))
        }
        _ => {}
    }
    if exists && repo.tags_of(&digest).len() >= MAX_TAGS_PER_IMAGE {
        return Err(EcrError::LimitExceeded(format!(
            "An image can have at most {MAX_TAGS_PER_IMAGE} tags"
        )));
    }
    if !exists {
        let record = ImageRecord {
            digest: digest.clone(),
            manifest: text.to_string(),
            media_type: media_type.clone(),
            pushed_at: now(),
            blobs: parsed.blobs,
            children: parsed.children,
            subject: parsed.subject,
            artifact_type: parsed.artifact_type,
            config_media_type: parsed.config_media_type,
            annotations: parsed.annotations,
        };
        ctx.store.save_image(name, &record)?;
        repo.images.insert(digest.clone(), record);
    }
    if let Some(t) = tag {
        ctx.store.save_tag(name, t, &digest)?;
        repo.tags.insert(t.to_string(), digest.clone());
    }
    let stored = &repo.images[&digest];
    let mut image_id = json!({ "imageDigest": digest });
    if let Some(t) = tag {
        image_id["imageTag"] = json!(t);
    }
    Ok(json!({ "image": {
        "registryId": registry, "repositoryName": name, "imageId": image_id,
        "imageManifest": stored.manifest, "imageManifestMediaType": stored.media_type,
    }}))
}

fn already_exists(digest: &str, tag: Option<&str>, repo: &str, registry: &str) -> EcrError {
    EcrError::ImageAlreadyExists(format!(
        "Image with digest '{digest}' and tag '{}' already exists in the repository with name '{repo}' in registry with id '{registry}'",
        tag.unwrap_or("")
    ))
}

/// Whether `tag` may not be moved in this repository.
fn is_immutable(repo: &RepositoryRecord, tag: &str) -> bool {
    let matches = || repo.exclusion_filters.iter().any(|f| wildcard(f, tag));
    match repo.image_tag_mutability.as_str() {
        "IMMUTABLE" => true,
        "IMMUTABLE_WITH_EXCLUSION" => !matches(),
        "MUTABLE_WITH_EXCLUSION" => matches(),
        _ => false,
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn wildcard(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            s.starts_with(head)
                && (0..=s.len() - head.len()).any(|i| {
                    s.is_char_boundary(head.len() + i) && wildcard(rest, &s[head.len() + i..])
                })
        }
    }
}

/// An image identifier resolved against a repository: the digest, or the failure for that item.
fn resolve(
    repo: &RepoState,
    id: &Value,
) -> Result<(String, Option<String>), (&'static str, String)> {
    let digest = id.get("imageDigest").and_then(Value::as_str);
    let tag = id.get("imageTag").and_then(Value::as_str);
    if let Some(d) = digest {
        if !crate::names::is_ecr_digest(d) {
            return Err(("InvalidImageDigest", "Invalid image digest".into()));
        }
    }
    if let Some(t) = tag {
        if check_tag("imageTag", t).is_err() {
            return Err(("InvalidImageTag", "Invalid image tag".into()));
        }
    }
    let not_found = || ("ImageNotFound", "Requested image not found".to_string());
    match (digest, tag) {
        (None, None) => Err(("MissingDigestAndTag", "Missing image digest and tag".into())),
        (Some(d), None) => repo
            .images
            .contains_key(d)
            .then(|| (d.to_string(), None))
            .ok_or_else(not_found),
        (None, Some(t)) => repo
            .tags
            .get(t)
            .map(|d| (d.clone(), Some(t.to_string())))
            .ok_or_else(not_found),
        (Some(d), Some(t)) => match repo.tags.get(t) {
            Some(cur) if cur == d => Ok((d.to_string(), Some(t.to_string()))),
            Some(_) => Err((
                "ImageTagDoesNotMatchDigest",
                "Requested image tag does not match digest".into(),
            )),
            None => Err(not_found()),
        },
    }
}

fn failure(id: &Value, code: &str, reason: String) -> Value {
    json!({ "imageId": id, "failureCode": code, "failureReason": reason })
}

/// `imageIds`: 1–100 identifiers. A tag outside the model's 1–300 characters fails the whole
/// call (InvalidParameterException); other bad ids become per-item failures (see `resolve`).
fn image_ids(input: &Input) -> EcrResult<Vec<Value>> {
    let ids = input
        .list_sized("imageIds", 1, 100)?
        .ok_or_else(|| not_null("imageIds"))?;
    for id in ids {
        if let Some(t) = id.get("imageTag").and_then(Value::as_str) {
            check_len("imageIds.imageTag", t.chars().count(), 1, 300)?;
        }
    }
    Ok(ids.clone())
}

pub fn batch_get(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    let registry = ctx.registry(input)?;
    let name = input.repository_name()?;
    let ids = image_ids(input)?;
    let accepted = input.str_list("acceptedMediaTypes", 1, 100)?;
    let index = ctx.store.lock();
    let repo = ctx.repo(&index, name)?;
    let (mut images, mut failures) = (Vec::new(), Vec::new());
    for id in &ids {
        match resolve(repo, id) {
            Err((code, reason)) => failures.push(failure(id, code, reason)),
            Ok((digest, tag)) => {
                let image = &repo.images[&digest];
                if accepted
                    .as_ref()
                    .is_some_and(|a| !a.contains(&image.media_type.as_str()))
                {
                    let reason = format!(
                        "Requested image not found in an accepted media type (stored as {})",
                        image.media_type
                    );
                    failures.push(failure(id, "ImageNotFound", reason));
                    continue;
                }
                let mut image_id = Map::new();
                image_id.insert("imageDigest".into(), json!(digest));
                if let Some(t) = tag {
                    image_id.insert("imageTag".into(), json!(t));
                }
                images.push(json!({
                    "registryId": registry, "repositoryName": name, "imageId": image_id,
                    "imageManifest": image.manifest, "imageManifestMediaType": image.media_type,
                }));
            }
        }
    }
    Ok(json!({ "images": images, "failures": failures }))
}

pub fn batch_delete(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    ctx.registry(input)?;
    let name = input.repository_name()?;
    let ids = image_ids(input)?;
    let mut index = ctx.store.lock();
    let repo = ctx.repo_mut(&mut index, name)?;
    let (mut deleted, mut failures) = (Vec::new(), Vec::new());
    for id in &ids {
        let (digest, tag) = match resolve(repo, id) {
            Err((code, reason)) => {
                failures.push(failure(id, code, reason));
                continue;
            }
            Ok(r) => r,
        };
        let by_tag_only = id.get("imageDigest").is_none();
        if by_tag_only {
            let t = tag.expect("resolved by tag");
            ctx.store.remove_tag(name, &t)?;
            repo.tags.remove(&t);
            deleted.push(json!({ "imageDigest": digest, "imageTag": t }));
            if repo.tags_of(&digest).is_empty() && !repo.image_referenced_by_list(&digest) {
                ctx.store.remove_image(name, &digest)?;
                repo.images.remove(&digest);
            }
            continue;
        }
        if repo.image_referenced_by_list(&digest) {
            failures.push(failure(
                id,
                "ImageReferencedByManifestList",
                format!("Requested image {digest} is referenced by a manifest list"),
            ));
            continue;
        }
        let tags = repo.tags_of(&digest);
        for t in &tags {
            ctx.store.remove_tag(name, t)?;
            repo.tags.remove(t);
            deleted.push(json!({ "imageDigest": digest, "imageTag": t }));
        }
        if tags.is_empty() {
            deleted.push(json!({ "imageDigest": digest }));
        }
        ctx.store.remove_image(name, &digest)?;
        repo.images.remove(&digest);
    }
    Ok(json!({ "imageIds": deleted, "failures": failures }))
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards() {
        assert!(wildcard("release-*", "release-1.0"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("a*b", "ac"));
        assert!(!wildcard("latest", "latest2"));
    }
}
