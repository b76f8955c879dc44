//! Reading an operation's JSON input with ECR's server-side validation: required members,
//! lengths, ranges, list sizes and patterns, each failure an InvalidParameterException in ECR's
//! wording. This module must not touch the store: it only reads and checks the request body.

mod large;

use super::error::{EcrError, EcrResult};
use crate::names;
use bytes::Bytes;
use large::LARGE_MEMBER;
use serde_json::{Map, Value};

/// An operation's input object.
pub struct Input {
    obj: Map<String, Value>,
    /// The value of `LARGE_MEMBER` left in the body (see `large`), when found that way.
    large: Option<Bytes>,
}

fn type_error(member: &str, expected: &str) -> EcrError {
    EcrError::Serialization(format!(
        "Unexpected value type for member '{member}': expected {expected}"
    ))
}

impl Input {
    /// Parse the request body: an empty body is `{}`; anything but a JSON object is refused.
    pub fn parse(body: &[u8]) -> EcrResult<Input> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Input {
                obj: Map::new(),
                large: None,
            });
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => Ok(Input { obj, large: None }),
            Ok(_) => Err(EcrError::Serialization(
                "Start of structure or map found where not expected.".into(),
            )),
            Err(e) => Err(EcrError::Serialization(format!("Invalid JSON: {e}"))),
        }
    }

    /// `parse` for a whole request body, with the large member found in place when it can be.
    pub fn parse_body(body: Bytes) -> EcrResult<Input> {
        if let Some((range, rest)) = large::split_out(&body, LARGE_MEMBER) {
            if let Ok(mut input) = Input::parse(&rest) {
                if input.obj.get(LARGE_MEMBER).and_then(Value::as_str) == Some("") {
                    input.large = Some(body.slice(range));
                    return Ok(input);
                }
            }
        }
        Input::parse(&body)
    }

    /// A required string member's bytes, without copying the large one.
    pub fn req_str_bytes(&self, member: &str) -> EcrResult<&[u8]> {
        match &self.large {
            Some(v) if member == LARGE_MEMBER => Ok(v),
            _ => self.req_str(member).map(str::as_bytes),
        }
    }

    fn get(&self, member: &str) -> Option<&Value> {
        self.obj.get(member).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, member: &str) -> EcrResult<Option<&str>> {
        match self.get(member) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(type_error(member, "string")),
        }
    }

    pub fn req_str(&self, member: &str) -> EcrResult<&str> {
        self.opt_str(member)?.ok_or_else(|| not_null(member))
    }

    pub fn opt_i64(&self, member: &str) -> EcrResult<Option<i64>> {
        match self.get(member) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| type_error(member, "number")),
        }
    }

    pub fn req_i64(&self, member: &str) -> EcrResult<i64> {
        self.opt_i64(member)?.ok_or_else(|| not_null(member))
    }

    pub fn opt_bool(&self, member: &str) -> EcrResult<Option<bool>> {
        match self.get(member) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(type_error(member, "boolean")),
        }
    }

    pub fn opt_list(&self, member: &str) -> EcrResult<Option<&Vec<Value>>> {
        match self.get(member) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(type_error(member, "list")),
        }
    }

    /// A list whose size must be within `min..=max`.
    pub fn list_sized(
        &self,
        member: &str,
        min: usize,
        max: usize,
    ) -> EcrResult<Option<&Vec<Value>>> {
        let list = self.opt_list(member)?;
        if let Some(l) = list {
            check_len(member, l.len(), min, max)?;
        }
        Ok(list)
    }

    /// A list of strings whose size must be within `min..=max`.
    pub fn str_list(&self, member: &str, min: usize, max: usize) -> EcrResult<Option<Vec<&str>>> {
        match self.list_sized(member, min, max)? {
            None => Ok(None),
            Some(l) => l
                .iter()
                .map(|v| v.as_str().ok_or_else(|| type_error(member, "string")))
                .collect::<EcrResult<Vec<_>>>()
                .map(Some),
        }
    }

    pub fn opt_obj(&self, member: &str) -> EcrResult<Option<Input>> {
        match self.get(member) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(Input {
                obj: o.clone(),
                large: None,
            })),
            Some(_) => Err(type_error(member, "structure")),
        }
    }

    /// `repositoryName`: required, 2–256 characters, ECR's pattern.
    pub fn repository_name(&self) -> EcrResult<&str> {
        let name = self.req_str("repositoryName")?;
        check_repository_name("repositoryName", name)?;
        Ok(name)
    }

    /// `registryId`: optional, twelve digits.
    pub fn registry_id(&self) -> EcrResult<Option<&str>> {
        let id = self.opt_str("registryId")?;
        if let Some(id) = id {
            if !names::is_registry_id(id) {
                return Err(EcrError::invalid(
                    "registryId",
                    "must satisfy regular expression [0-9]{12}",
                ));
            }
        }
        Ok(id)
    }

    /// `maxResults`: optional, 1–1000.
    pub fn max_results(&self) -> EcrResult<Option<usize>> {
        self.max_results_up_to(1000)
    }

    /// `maxResults`: optional, 1–`max` (ListImageReferrers: 50).
    pub fn max_results_up_to(&self, max: i64) -> EcrResult<Option<usize>> {
        match self.opt_i64("maxResults")? {
            None => Ok(None),
            Some(n) if n < 1 => Err(EcrError::invalid(
                "maxResults",
                "Member must have value greater than or equal to 1",
            )),
            Some(n) if n > max => Err(EcrError::invalid(
                "maxResults",
                format!("Member must have value less than or equal to {max}"),
            )),
            Some(n) => Ok(Some(n as usize)),
        }
    }

    /// `uploadId`: required, the UUID shape.
    pub fn upload_id(&self) -> EcrResult<&str> {
        let id = self.req_str("uploadId")?;
        if !names::is_upload_id(id) {
            return Err(EcrError::invalid(
                "uploadId",
                "must satisfy regular expression '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'",
            ));
        }
        Ok(id)
    }
}

/// An optional string member that must be one of `values`.
pub fn check_enum<'a>(
    member: &str,
    value: Option<&'a str>,
    values: &[&str],
) -> EcrResult<Option<&'a str>> {
    match value {
        Some(v) if !values.contains(&v) => Err(EcrError::invalid(
            member,
            format!(
                "Member must satisfy enum value set: [{}]",
                values.join(", ")
            ),
        )),
        v => Ok(v),
    }
}

pub fn not_null(member: &str) -> EcrError {
    EcrError::invalid(member, "Member must not be null")
}

/// Length (or size) within `min..=max`, in ECR's words.
pub fn check_len(member: &str, len: usize, min: usize, max: usize) -> EcrResult<()> {
    if len < min {
        return Err(EcrError::invalid(
            member,
            format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if len > max {
        return Err(EcrError::invalid(
            member,
            format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

pub fn check_repository_name(member: &str, name: &str) -> EcrResult<()> {
    check_len(member, name.chars().count(), 2, 256)?;
    if !names::is_repository_name(name) {
        return Err(EcrError::invalid(
            member,
            format!(
                "must satisfy regular expression '{}'",
                names::REPOSITORY_NAME_PATTERN
            ),
        ));
    }
    Ok(())
}

pub fn check_tag(member: &str, tag: &str) -> EcrResult<()> {
    check_len(member, tag.chars().count(), 1, 300)?;
    if !names::is_ecr_tag(tag) {
        return Err(EcrError::invalid(
            member,
            "must satisfy regular expression '[a-zA-Z0-9-_.]+'",
        ));
    }
    Ok(())
}

pub fn check_digest(member: &str, digest: &str) -> EcrResult<()> {
    if !names::is_ecr_digest(digest) {
        return Err(EcrError::invalid(
            member,
            "must satisfy regular expression '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
