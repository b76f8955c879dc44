//! CreateRepository, DescribeRepositories, DeleteRepository and GetAuthorizationToken.

use super::{now, paging, Call, Ctx};
use crate::emulator::error::{EcrError, EcrResult};
use crate::emulator::input::{check_len, check_repository_name, not_null, Input};
use crate::emulator::store::model::{RepoState, RepositoryRecord};
use base64_simd::STANDARD;
use serde_json::{json, Value};

const MUTABILITIES: [&str; 4] = [
    "MUTABLE",
    "IMMUTABLE",
    "IMMUTABLE_WITH_EXCLUSION",
    "MUTABLE_WITH_EXCLUSION",
];

pub fn create(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    ctx.registry(input)?;
    let name = input.repository_name()?;
    let mutability = input.opt_str("imageTagMutability")?.unwrap_or("MUTABLE");
    if !MUTABILITIES.contains(&mutability) {
        return Err(EcrError::invalid(
            "imageTagMutability",
            format!(
                "Member must satisfy enum value set: [{}]",
                MUTABILITIES.join(", ")
            ),
        ));
    }
    let exclusion_filters = exclusion_filters(input)?;
    if mutability.ends_with("_WITH_EXCLUSION") && exclusion_filters.is_empty() {
        return Err(EcrError::invalid(
            "imageTagMutabilityExclusionFilters",
            "must be specified with a *_WITH_EXCLUSION mutability",
        ));
    }
    let scan_on_push = match input.opt_obj("imageScanningConfiguration")? {
        Some(c) => c.opt_bool("scanOnPush")?.unwrap_or(false),
        None => false,
    };
    let (encryption_type, kms_key) = match input.opt_obj("encryptionConfiguration")? {
        Some(c) => {
            let t = c.req_str("encryptionType")?;
            if !["AES256", "KMS", "KMS_DSSE"].contains(&t) {
                return Err(EcrError::invalid(
                    "encryptionConfiguration.encryptionType",
                    "Member must satisfy enum value set: [AES256, KMS, KMS_DSSE]",
                ));
            }
            let kms_key = c.opt_str("kmsKey")?;
            if let Some(k) = kms_key {
                check_len("encryptionConfiguration.kmsKey", k.chars().count(), 1, 2048)?;
            }
            (t.to_string(), kms_key.map(str::to_string))
        }
        None => ("AES256".to_string(), None),
    };
    let mut tags = Vec::new();
    if let Some(list) = input.opt_list("tags")? {
        if list.len() > 50 {
            return Err(EcrError::TooManyTags(format!(
                "Too many tags: {} (the limit is 50)",
                list.len()
            )));
        }
        for t in list {
            let (Some(k), Some(v)) = (
                t.get("Key").and_then(Value::as_str),
                t.get("Value").and_then(Value::as_str),
            ) else {
                // Both members are required by the model: a plain parameter error.
                let member = if t.get("Key").is_some_and(Value::is_string) {
                    "tags.Value"
                } else {
                    "tags.Key"
                };
                return Err(not_null(member));
            };
            if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
                return Err(EcrError::InvalidTagParameter(format!(
                    "Invalid tag '{k}': keys are 1-128 characters, values at most 256"
                )));
            }
            tags.push((k.to_string(), v.to_string()));
        }
    }
    let record = RepositoryRecord {
        name: name.to_string(),
        created_at: now(),
        image_tag_mutability: mutability.to_string(),
        exclusion_filters,
        scan_on_push,
        encryption_type,
        kms_key,
        tags,
    };
    let mut index = ctx.store.lock();
    if index.repos.contains_key(name) {
        return Err(EcrError::RepositoryAlreadyExists(format!(
            "The repository with name '{name}' already exists in the registry with id '{}'",
            ctx.account
        )));
    }
    ctx.store.save_repository(&record)?;
    let out = repository_json(ctx, &record);
    index.repos.insert(name.to_string(), RepoState::new(record));
    Ok(json!({ "repository": out }))
}

/// `imageTagMutabilityExclusionFilters`: 1–5 filters, each `{filterType: WILDCARD, filter}` with
/// both members required and `filter` matching `^[0-9a-zA-Z._*-]{1,128}$`.
fn exclusion_filters(input: &Input) -> EcrResult<Vec<String>> {
    const MEMBER: &str = "imageTagMutabilityExclusionFilters";
    let mut out = Vec::new();
    for f in input.list_sized(MEMBER, 1, 5)?.into_iter().flatten() {
        let field = |name: &str| match f.get(name) {
            None | Some(Value::Null) => Err(not_null(&format!("{MEMBER}.{name}"))),
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(EcrError::Serialization(format!(
                "Unexpected value type for member '{name}': expected string"
            ))),
        };
        if field("filterType")? != "WILDCARD" {
            return Err(EcrError::invalid(
                &format!("{MEMBER}.filterType"),
                "Member must satisfy enum value set: [WILDCARD]",
            ));
        }
        let filter = field("filter")?;
        check_len(&format!("{MEMBER}.filter"), filter.chars().count(), 1, 128)?;
        if !filter
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._*-".contains(&c))
        {
            return Err(EcrError::invalid(
                &format!("{MEMBER}.filter"),
                "must satisfy regular expression '^[0-9a-zA-Z._*-]{1,128}$'",
            ));
        }
        out.push(filter.to_string());
    }
    Ok(out)
}

pub fn describe(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    ctx.registry(input)?;
    let names = input.str_list("repositoryNames", 1, 100)?;
    let token = input.opt_str("nextToken")?;
    let max = input.max_results()?;
    let index = ctx.store.lock();
    if let Some(names) = names {
        if token.is_some() || max.is_some() {
            return Err(EcrError::invalid(
                "repositoryNames",
                "Cannot be specified with nextToken or maxResults",
            ));
        }
        let mut out = Vec::new();
        for n in names {
            check_repository_name("repositoryNames", n)?;
            out.push(repository_json(ctx, &ctx.repo(&index, n)?.record));
        }
        return Ok(json!({ "repositories": out }));
    }
    let all: Vec<&RepositoryRecord> = index.repos.values().map(|r| &r.record).collect();
    let (page, next) = paging::page(all, |r| r.name.clone(), token, max)?;
    let repos: Vec<Value> = page.into_iter().map(|r| repository_json(ctx, r)).collect();
    Ok(with_token(json!({ "repositories": repos }), next))
}

pub fn delete(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let input = &call.input;
    ctx.registry(input)?;
    let name = input.repository_name()?;
    let force = input.opt_bool("force")?.unwrap_or(false);
    let mut index = ctx.store.lock();
    let repo = ctx.repo(&index, name)?;
    if !force && !repo.images.is_empty() {
        return Err(EcrError::RepositoryNotEmpty(format!(
            "The repository with name '{name}' in registry with id '{}' cannot be deleted because it still contains images",
            ctx.account
        )));
    }
    let out = repository_json(ctx, &repo.record);
    ctx.store.remove_repository(name)?;
    index.repos.remove(name);
    // Its uploads end with it, on disk too: a restart must not bring them back.
    let ended: Vec<String> = index
        .uploads
        .iter()
        .filter(|(_, u)| u.record.repository == name)
        .map(|(id, _)| id.clone())
        .collect();
    for id in ended {
        index.uploads.remove(&id);
        ctx.store.remove_upload(&id)?;
    }
    Ok(json!({ "repository": out }))
}

pub fn authorization_token(ctx: &Ctx, call: &Call) -> EcrResult<Value> {
    let ids = call.input.str_list("registryIds", 1, 10)?;
    let ids: Vec<String> = match ids {
        Some(ids) => {
            for id in &ids {
                if !crate::names::is_registry_id(id) {
                    return Err(EcrError::invalid("registryIds", "Member must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]{12}]"));
                }
            }
            ids.into_iter().map(str::to_string).collect()
        }
        None => vec![ctx.account.clone()],
    };
    let data: Vec<Value> = ids
        .iter()
        .map(|id| {
            let password = uuid::Uuid::new_v4().simple().to_string();
            json!({
                "authorizationToken": STANDARD.encode_to_string(format!("AWS:{password}")),
                "expiresAt": now() + 12.0 * 3600.0,
                "proxyEndpoint": format!("https://{id}.dkr.ecr.{}.amazonaws.com", ctx.region),
            })
        })
        .collect();
    Ok(json!({ "authorizationData": data }))
}

/// A Repository structure as ECR returns it.
pub fn repository_json(ctx: &Ctx, r: &RepositoryRecord) -> Value {
    let mut v = json!({
        "repositoryArn": format!("arn:aws:ecr:{}:{}:repository/{}", ctx.region, ctx.account, r.name),
        "registryId": ctx.account,
        "repositoryName": r.name,
        "repositoryUri": format!("{}.dkr.ecr.{}.amazonaws.com/{}", ctx.account, ctx.region, r.name),
        "createdAt": r.created_at,
        "imageTagMutability": r.image_tag_mutability,
        "imageScanningConfiguration": { "scanOnPush": r.scan_on_push },
        "encryptionConfiguration": { "encryptionType": r.encryption_type },
    });
    if let Some(k) = &r.kms_key {
        v["encryptionConfiguration"]["kmsKey"] = json!(k);
    }
    if !r.exclusion_filters.is_empty() {
        v["imageTagMutabilityExclusionFilters"] = r
            .exclusion_filters
            .iter()
            .map(|f| json!({ "filterType": "WILDCARD", "filter": f }))
            .collect();
    }
    v
}

/// Add `nextToken` to an output when there is one.
pub fn with_token(mut out: Value, next: Option<String>) -> Value {
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    out
}
