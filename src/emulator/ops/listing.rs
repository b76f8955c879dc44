//! ListImages, DescribeImages and ListImageReferrers: the paginated views of a repository.

use super::repositories::with_token;
use super::{paging, Call, Ctx};
use crate::emulator::error::{EcrError, EcrResult};
use crate::emulator::input::{check_digest, check_enum, check_len, check_tag, Input};
use crate::emulator::store::model::{ImageRecord, RepoState};
use serde_json::{json, Value};

/// The `*Status` filter values of images and artifacts.
const STATUSES: [&str; 4] = ["ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"];

/// ListImages' and DescribeImages' `filter`: `tagStatus` (TAGGED, UNTAGGED or ANY, the default)
/// and whether `imageStatus` (default ACTIVE) lets ACTIVE images through. Every image here is
/// ACTIVE (the emulator archives nothing), so ARCHIVED and ACTIVATING match none.
fn image_filter(input: &Input) -> EcrResult<(String, bool)> {
    let Some(f) = input.opt_obj("filter")? else {
        return Ok(("ANY".into(), true));
    };
    let tag = check_enum(
        "filter.tagStatus",
        f.opt_str("tagStatus")?,
        &["TAGGED", "UNTAGGED", "ANY"],
    )?;
    let image = check_enum("filter.imageStatus", f.opt_str("imageStatus")?, &STATUSES)?;
    Ok((
        tag.unwrap_or("ANY").to_string(),
        matches!(image, None | Some("ACTIVE" | "ANY")),
    ))
}

pub fn list_images(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    ctx.registry(input)?;
    let name = input.repository_name()?;
    let (status, active) = image_filter(input)?;
    let (token, max) = (input.opt_str("nextToken")?, input.max_results()?);
    let index = ctx.store.lock();
    let repo = ctx.repo(&index, name)?;
    let status = if active { status.as_str() } else { "NONE" };
    // One entry per tag; an untagged image once. Keys sort tagged entries first.
    let mut entries: Vec<(String, Value)> = Vec::new();
    if status == "TAGGED" || status == "ANY" {
        for (tag, digest) in &repo.tags {
            entries.push((
                format!("t:{tag}"),
                json!({ "imageDigest": digest, "imageTag": tag }),
            ));
        }
    }
    if status == "UNTAGGED" || status == "ANY" {
        for digest in repo.images.keys().filter(|d| repo.tags_of(d).is_empty()) {
            entries.push((format!("u:{digest}"), json!({ "imageDigest": digest })));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let (page, next) = paging::page(entries, |e| e.0.clone(), token, max)?;
    let ids: Vec<Value> = page.into_iter().map(|e| e.1).collect();
    Ok(with_token(json!({ "imageIds": ids }), next))
}

pub fn describe_images(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    let registry = ctx.registry(input)?;
    let name = input.repository_name()?;
    let (status, active) = image_filter(input)?;
    let ids = input.list_sized("imageIds", 1, 100)?;
    let (token, max) = (input.opt_str("nextToken")?, input.max_results()?);
    for id in ids.into_iter().flatten() {
        if let Some(d) = id.get("imageDigest").and_then(Value::as_str) {
            check_digest("imageIds.imageDigest", d)?;
        }
        if let Some(t) = id.get("imageTag").and_then(Value::as_str) {
            check_tag("imageIds.imageTag", t)?;
        }
    }
    let index = ctx.store.lock();
    let repo = ctx.repo(&index, name)?;
    let detail = |i: &ImageRecord| image_detail(repo, i, &registry, name);
    if let Some(ids) = ids {
        if token.is_some() || max.is_some() {
            return Err(EcrError::invalid(
                "imageIds",
                "Cannot be specified with nextToken or maxResults",
            ));
        }
        let mut out = Vec::new();
        for id in ids {
            let digest = id.get("imageDigest").and_then(Value::as_str);
            let tag = id.get("imageTag").and_then(Value::as_str);
            let found = match (digest, tag) {
                (Some(d), Some(t)) => repo.tags.get(t).filter(|cur| *cur == d).cloned(),
                (Some(d), None) => repo.images.contains_key(d).then(|| d.to_string()),
                (None, Some(t)) => repo.tags.get(t).cloned(),
                (None, None) => None,
            };
            let Some(found) = found else {
                return Err(EcrError::ImageNotFound(format!(
                    "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{name}' in the registry with id '{registry}'",
                    digest.unwrap_or("null"),
                    tag.unwrap_or("null")
                )));
            };
            out.push(detail(&repo.images[&found]));
        }
        return Ok(json!({ "imageDetails": out }));
    }
    let mut images: Vec<&ImageRecord> = repo
        .images
        .values()
        .filter(|i| {
            let tagged = !repo.tags_of(&i.digest).is_empty();
            active && (status == "ANY" || (status == "TAGGED") == tagged)
        })
        .collect();
    images.sort_by(|a, b| a.digest.cmp(&b.digest));
    let (page, next) = paging::page(images, |i| i.digest.clone(), token, max)?;
    let details: Vec<Value> = page.into_iter().map(detail).collect();
    Ok(with_token(json!({ "imageDetails": details }), next))
}

/// The compressed size ECR reports: the sum of an image's blobs, or the largest child of a list.
fn image_size(repo: &RepoState, image: &ImageRecord) -> u64 {
    if image.children.is_empty() {
        image
            .blobs
            .iter()
            .map(|b| repo.layers.get(&b.digest).map_or(b.size, |l| l.size))
            .sum()
    } else {
        image
            .children
            .iter()
            .filter_map(|c| repo.images.get(c))
            .map(|c| image_size(repo, c))
            .max()
            .unwrap_or(0)
    }
}

fn image_detail(repo: &RepoState, i: &ImageRecord, registry: &str, name: &str) -> Value {
    let mut d = json!({
        "registryId": registry, "repositoryName": name, "imageDigest": i.digest,
        "imageSizeInBytes": image_size(repo, i), "imagePushedAt": i.pushed_at,
        "imageManifestMediaType": i.media_type, "imageStatus": "ACTIVE",
    });
    let tags = repo.tags_of(&i.digest);
    if !tags.is_empty() {
        d["imageTags"] = json!(tags);
    }
    if let Some(c) = &i.config_media_type {
        d["artifactMediaType"] = json!(c);
    }
    if let Some(s) = &i.subject {
        d["subjectManifestDigest"] = json!(s);
    }
    d
}

pub fn list_referrers(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    ctx.registry(input)?;
    let name = input.repository_name()?;
    let subject = input
        .opt_obj("subjectId")?
        .ok_or_else(|| crate::emulator::input::not_null("subjectId"))?;
    let subject = subject.req_str("imageDigest")?.to_string();
    check_digest("subjectId.imageDigest", &subject)?;
    let (artifact_types, active) = referrer_filter(input)?;
    let token = input.opt_str("nextToken")?;
    let max = input
        .max_results_up_to(50)?
        .unwrap_or(REFERRERS_DEFAULT_PAGE);
    let index = ctx.store.lock();
    let repo = ctx.repo(&index, name)?;
    let mut referrers: Vec<(String, Value)> = repo
        .images
        .values()
        .filter(|i| active && i.subject.as_deref() == Some(subject.as_str()))
        .filter_map(|i| {
            let artifact_type = i.artifact_type.clone().or_else(|| i.config_media_type.clone());
            if let Some(types) = &artifact_types {
                if !artifact_type.as_ref().is_some_and(|t| types.contains(t)) {
                    return None;
                }
            }
            let mut r = json!({ "digest": i.digest, "mediaType": i.media_type, "size": i.manifest.len(), "artifactStatus": "ACTIVE" });
            if let Some(t) = artifact_type {
                r["artifactType"] = json!(t);
            }
            if let Some(a) = &i.annotations {
                r["annotations"] = json!(a);
            }
            Some((i.digest.clone(), r))
        })
        .collect();
    referrers.sort_by(|a, b| a.0.cmp(&b.0));
    let (page, next) = paging::page(referrers, |r| r.0.clone(), token, Some(max))?;
    let out: Vec<Value> = page.into_iter().map(|r| r.1).collect();
    Ok(with_token(json!({ "referrers": out }), next))
}

/// ListImageReferrers answers at most this many referrers without `maxResults` (ECR: "up to 20
/// results and a nextToken value, if applicable").
const REFERRERS_DEFAULT_PAGE: usize = 20;

/// ListImageReferrers' `filter`: `artifactTypes` (0–5 types of 1–255 characters; an empty list
/// filters nothing) and whether `artifactStatus` (default ACTIVE) lets ACTIVE artifacts through.
fn referrer_filter(input: &Input) -> EcrResult<(Option<Vec<String>>, bool)> {
    let Some(f) = input.opt_obj("filter")? else {
        return Ok((None, true));
    };
    let types = f.str_list("artifactTypes", 0, 5)?.unwrap_or_default();
    for t in &types {
        check_len("filter.artifactTypes", t.chars().count(), 1, 255)?;
    }
    let status = check_enum(
        "filter.artifactStatus",
        f.opt_str("artifactStatus")?,
        &STATUSES,
    )?;
    let types = (!types.is_empty()).then(|| types.into_iter().map(str::to_string).collect());
    Ok((types, matches!(status, None | Some("ACTIVE" | "ANY"))))
}
