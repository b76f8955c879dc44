//! What `cache warm` is asked to warm: `REPO:TAG` or `REPO@sha256:…` (repository names as the
//! proxy sees them, i.e. ECR names), from the command line or a list file (one a line, `#`
//! comments). Reading and checking them only: nothing here talks to the proxy.

use super::CacheError;
use crate::digest::Digest;
use crate::names;
use std::fmt;
use std::path::Path;

/// A tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

/// One image to warm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub reference: Reference,
}

impl ImageRef {
    /// Parse `REPO:TAG` or `REPO@sha256:HEX`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        let (repository, reference) = if let Some((repo, digest)) = s.split_once('@') {
            let d = Digest::parse(digest).map_err(|e| e.to_string())?;
            (repo, Reference::Digest(d))
        } else {
            // The tag follows the last `:` after the last `/` (a port in a host name is not a tag).
            let slash = s.rfind('/').map_or(0, |i| i + 1);
            match s[slash..].rfind(':') {
                Some(i) => {
                    let tag = &s[slash + i + 1..];
                    if !names::is_oci_tag(tag) {
                        return Err(format!("`{tag}` is not a valid tag"));
                    }
                    (&s[..slash + i], Reference::Tag(tag.to_string()))
                }
                None => {
                    return Err(
                        "give a tag or a digest (REPO:TAG or REPO@sha256:…); there is no \
                         default tag"
                            .into(),
                    )
                }
            }
        };
        if let Some(problem) = names::ecr_repository_name_problem(repository) {
            return Err(format!("repository `{repository}`: {problem}"));
        }
        Ok(ImageRef {
            repository: repository.to_string(),
            reference,
        })
    }

    /// The path segment after `/manifests/`.
    pub fn reference_str(&self) -> &str {
        match &self.reference {
            Reference::Tag(t) => t,
            Reference::Digest(d) => d.as_str(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Reference::Tag(t) => write!(f, "{}:{t}", self.repository),
            Reference::Digest(d) => write!(f, "{}@{d}", self.repository),
        }
    }
}

/// The images of a list file: one a line; blank lines and `#` comments (whole-line or after
/// the image) are skipped. Errors name the line.
pub fn parse_list(text: &str) -> Result<Vec<ImageRef>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        out.push(ImageRef::parse(line).map_err(|e| format!("line {}: `{line}`: {e}", n + 1))?);
    }
    Ok(out)
}

/// The images of the command line and `--file`, checked.
pub fn from_args(images: &[String], file: Option<&Path>) -> Result<Vec<ImageRef>, CacheError> {
    let mut out = Vec::new();
    for s in images {
        out.push(ImageRef::parse(s).map_err(|e| CacheError::Images(format!("`{s}`: {e}")))?);
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| CacheError::List {
            path: path.to_path_buf(),
            source,
        })?;
        out.extend(
            parse_list(&text)
                .map_err(|e| CacheError::Images(format!("{}: {e}", path.display())))?,
        );
    }
    if out.is_empty() {
        return Err(CacheError::Images(
            "name at least one image (REPO:TAG or REPO@sha256:…), or --file LIST".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|i| seen.insert(i.to_string()));
    Ok(out)
}

/// An `os/arch` or `os/arch/variant` given to `--platform`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::str::FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts
                    .get(2)
                    .filter(|v| !v.is_empty())
                    .map(|v| v.to_string()),
            }),
            _ => Err(format!(
                "`{s}`: a platform is OS/ARCH or OS/ARCH/VARIANT, like linux/amd64"
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_digests() {
        let i = ImageRef::parse("docker-hub/library/nginx:1.27").unwrap();
        assert_eq!(i.repository, "docker-hub/library/nginx");
        assert_eq!(i.reference, Reference::Tag("1.27".into()));
        assert_eq!(i.to_string(), "docker-hub/library/nginx:1.27");
        let d = format!("sha256:{}", "a".repeat(64));
        let i = ImageRef::parse(&format!("app/web@{d}")).unwrap();
        assert_eq!(i.reference_str(), d);
        assert_eq!(i.to_string(), format!("app/web@{d}"));
    }

    #[test]
    fn refused_with_a_reason() {
        for bad in [
            "app/web",
            "app/web:",
            "App/web:v1",
            "app/web@sha256:abc",
            "app/web@md5:abc",
            "a:v1",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(ImageRef::parse("app/web")
            .unwrap_err()
            .contains("no default tag"));
    }

    #[test]
    fn list_files_skip_comments() {
        let list = "# base images\n\napp/web:v1  # the front\n  app/api:v2\n";
        let images = parse_list(list).unwrap();
        assert_eq!(
            images.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            ["app/web:v1", "app/api:v2"]
        );
        let e = parse_list("app/web:v1\nnope\n").unwrap_err();
        assert!(e.starts_with("line 2: `nope`"), "{e}");
    }

    #[test]
    fn platforms() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//".parse::<Platform>().is_err());
    }
}
