//! The `/v2/` grammar as a pure function: a path becomes a typed `Route` (repository names with
//! slashes, tags, digests, upload ids), or the error the registry spec prescribes. Nothing below
//! the handlers sees a raw path. Also the query-string reader. No I/O here.

use crate::digest::Digest;
use crate::names;

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// Every resource of the distribution API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Base,
    Catalog,
    Tags { name: String },
    Manifest { name: String, reference: Reference },
    Blob { name: String, digest: Digest },
    UploadStart { name: String },
    Upload { name: String, id: String },
    Referrers { name: String, digest: Digest },
}

/// Why a path is not a route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no such endpoint")]
    NotFound,
    /// A name ECR cannot hold (a valid OCI name may still be one: `a`), and why.
    #[error("invalid repository name `{0}`: {1}")]
    NameInvalid(String, &'static str),
    #[error("invalid digest `{0}`")]
    DigestInvalid(String),
    /// A blob named by a well-formed digest of an algorithm ECR does not store (`sha512:…`):
    /// no such blob can exist here.
    #[error("ECR stores only sha256 digests, not `{0}`")]
    UnstoredBlob(String),
    #[error("invalid tag `{0}`")]
    TagInvalid(String),
}

/// The repository name, if ECR can hold it: every route refuses other names before any ECR
/// call, so a client sees NAME_INVALID instead of whatever ECR's refusal would become.
fn name_of(segments: &[&str]) -> Result<String, RouteError> {
    let name = segments.join("/");
    match names::ecr_repository_name_problem(&name) {
        Some(why) => Err(RouteError::NameInvalid(name, why)),
        None => Ok(name),
    }
}

fn digest_of(s: &str) -> Result<Digest, RouteError> {
    Digest::parse(s).map_err(|_| RouteError::DigestInvalid(s.to_string()))
}

/// Parse a request path (without the query).
pub fn parse(path: &str) -> Result<Route, RouteError> {
    let rest = path.strip_prefix("/v2").ok_or(RouteError::NotFound)?;
    if rest.is_empty() || rest == "/" {
        return Ok(Route::Base);
    }
    let rest = rest.strip_prefix('/').ok_or(RouteError::NotFound)?;
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let seg: Vec<&str> = rest.split('/').collect();
    let n = seg.len();
    // Three-segment endings first: `blobs/uploads/<id>` (an empty id is the POST endpoint).
    if n >= 4 && seg[n - 3] == "blobs" && seg[n - 2] == "uploads" {
        let name = name_of(&seg[..n - 3])?;
        return Ok(if seg[n - 1].is_empty() {
            Route::UploadStart { name }
        } else {
            Route::Upload {
                name,
                id: seg[n - 1].to_string(),
            }
        });
    }
    if n < 3 {
        return Err(RouteError::NotFound);
    }
    let (kind, last) = (seg[n - 2], seg[n - 1]);
    let name = || name_of(&seg[..n - 2]);
    match (kind, last) {
        ("blobs", "uploads") => Ok(Route::UploadStart { name: name()? }),
        ("tags", "list") => Ok(Route::Tags { name: name()? }),
        ("blobs", d) => {
            let name = name()?;
            match Digest::parse(d) {
                Ok(digest) => Ok(Route::Blob { name, digest }),
                Err(crate::digest::DigestError::UnsupportedAlgorithm(_)) => {
                    Err(RouteError::UnstoredBlob(d.to_string()))
                }
                Err(_) => Err(RouteError::DigestInvalid(d.to_string())),
            }
        }
        ("referrers", d) => Ok(Route::Referrers {
            name: name()?,
            digest: digest_of(d)?,
        }),
        ("manifests", r) => {
            let name = name()?;
            let reference = if r.contains(':') {
                Reference::Digest(digest_of(r)?)
            } else if names::is_oci_tag(r) {
                Reference::Tag(r.to_string())
            } else {
                return Err(RouteError::TagInvalid(r.to_string()));
            };
            Ok(Route::Manifest { name, reference })
        }
        _ => Err(RouteError::NotFound),
    }
}

/// The decoded value of query parameter `key`, if present (the first, if repeated).
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query_params(query.unwrap_or(""), key).next()
}

/// Every decoded value of `key` in a query string or form body, in order (`+` is a space).
pub fn query_params<'a>(query: &'a str, key: &'a str) -> impl Iterator<Item = String> + 'a {
    query.split('&').filter_map(move |kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| {
            let v = v.replace('+', " ");
            percent_encoding::percent_decode_str(&v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const LENGTH: &str = "ECR repository names are 2 to 256 characters long";
    const PATTERN: &str = "ECR repository names are lowercase letters and digits, separated by `.`, `_`, `__`, runs of `-`, or `/`";

    #[test]
    fn routes() {
        let d = Digest::parse(D).unwrap();
        let cases: Vec<(String, Result<Route, RouteError>)> = vec![
            ("/v2/".into(), Ok(Route::Base)),
            ("/v2".into(), Ok(Route::Base)),
            ("/v2/_catalog".into(), Ok(Route::Catalog)),
            (
                "/v2/a/b/tags/list".into(),
                Ok(Route::Tags { name: "a/b".into() }),
            ),
            (
                "/v2/ab/manifests/latest".into(),
                Ok(Route::Manifest {
                    name: "ab".into(),
                    reference: Reference::Tag("latest".into()),
                }),
            ),
            (
                format!("/v2/ab/manifests/{D}"),
                Ok(Route::Manifest {
                    name: "ab".into(),
                    reference: Reference::Digest(d.clone()),
                }),
            ),
            (
                format!("/v2/x/blobs/y/blobs/{D}"),
                Ok(Route::Blob {
                    name: "x/blobs/y".into(),
                    digest: d.clone(),
                }),
            ),
            (
                "/v2/ab/blobs/uploads/".into(),
                Ok(Route::UploadStart { name: "ab".into() }),
            ),
            (
                "/v2/ab/blobs/uploads".into(),
                Ok(Route::UploadStart { name: "ab".into() }),
            ),
            (
                "/v2/a/b/blobs/uploads/abc-123".into(),
                Ok(Route::Upload {
                    name: "a/b".into(),
                    id: "abc-123".into(),
                }),
            ),
            (
                format!("/v2/ab/referrers/{D}"),
                Ok(Route::Referrers {
                    name: "ab".into(),
                    digest: d.clone(),
                }),
            ),
            (
                "/v2/ab/A/tags/list".into(),
                Err(RouteError::NameInvalid("ab/A".into(), PATTERN)),
            ),
            (
                "/v2/a//b/tags/list".into(),
                Err(RouteError::NameInvalid("a//b".into(), PATTERN)),
            ),
            (
                "/v2/a/tags/list".into(),
                Err(RouteError::NameInvalid("a".into(), LENGTH)),
            ),
            (
                "/v2/a/blobs/uploads/".into(),
                Err(RouteError::NameInvalid("a".into(), LENGTH)),
            ),
            (
                "/v2/a/manifests/latest".into(),
                Err(RouteError::NameInvalid("a".into(), LENGTH)),
            ),
            (
                "/v2/ab/blobs/sha256:xyz".into(),
                Err(RouteError::DigestInvalid("sha256:xyz".into())),
            ),
            (
                format!("/v2/ab/blobs/sha512:{}", "a".repeat(128)),
                Err(RouteError::UnstoredBlob(format!(
                    "sha512:{}",
                    "a".repeat(128)
                ))),
            ),
            (
                format!("/v2/ab/manifests/sha512:{}", "a".repeat(128)),
                Err(RouteError::DigestInvalid(format!(
                    "sha512:{}",
                    "a".repeat(128)
                ))),
            ),
            (
                "/v2/ab/manifests/bad%20tag".into(),
                Err(RouteError::TagInvalid("bad%20tag".into())),
            ),
            (
                "/v2/ab/manifests/.x".into(),
                Err(RouteError::TagInvalid(".x".into())),
            ),
            ("/v2/ab/other/thing".into(), Err(RouteError::NotFound)),
            ("/v3/".into(), Err(RouteError::NotFound)),
            ("/v2/tags/list".into(), Err(RouteError::NotFound)),
        ];
        for (path, want) in cases {
            assert_eq!(parse(&path), want, "{path}");
        }
    }

    #[test]
    fn query_params() {
        let q = Some("digest=sha256%3Aab&n=10&mount=x&empty");
        assert_eq!(query_param(q, "digest").as_deref(), Some("sha256:ab"));
        assert_eq!(query_param(q, "n").as_deref(), Some("10"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "last"), None);
        assert_eq!(query_param(None, "n"), None);
    }
}
