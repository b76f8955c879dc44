//! The `Authorization` header, read: Basic (a user name and password) or Bearer (a token). Only
//! parsing; the checks are `Auth`'s.

use super::Failure;
use base64_simd::STANDARD;

/// Credentials a request carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

/// The longest `Authorization` value read (an OIDC JWT is a few KiB).
const MAX_LEN: usize = 16 * 1024;

impl Credentials {
    /// The header's credentials; `None` when there is no header.
    pub fn from_header(value: Option<&http::HeaderValue>) -> Result<Option<Credentials>, Failure> {
        let Some(value) = value else { return Ok(None) };
        let bad = |why: &str| Failure::BadCredentials(format!("the Authorization header {why}"));
        if value.len() > MAX_LEN {
            return Err(bad("is too long"));
        }
        let text = value.to_str().map_err(|_| bad("is not ASCII"))?;
        let (scheme, rest) = text
            .trim()
            .split_once(' ')
            .ok_or_else(|| bad("has no scheme"))?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD
                .decode_to_vec(rest)
                .map_err(|_| bad("is not valid base64"))?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad("is not UTF-8"))?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| bad("is not `user:password`"))?;
            Ok(Some(Credentials::Basic {
                user: user.into(),
                password: password.into(),
            }))
        } else if scheme.eq_ignore_ascii_case("bearer") {
            if rest.is_empty() {
                return Err(bad("carries an empty token"));
            }
            Ok(Some(Credentials::Bearer(rest.into())))
        } else {
            Err(bad(&format!(
                "uses the `{scheme}` scheme; this registry takes Basic and Bearer"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(v: &str) -> Result<Option<Credentials>, Failure> {
        Credentials::from_header(Some(&HeaderValue::from_str(v).unwrap()))
    }

    #[test]
    fn basic_and_bearer() {
        assert_eq!(
            parse("Basic YWxpY2U6cGE6c3M=").unwrap(),
            Some(Credentials::Basic {
                user: "alice".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            parse("bearer abc.def.ghi").unwrap(),
            Some(Credentials::Bearer("abc.def.ghi".into()))
        );
        assert_eq!(Credentials::from_header(None).unwrap(), None);
        assert!(parse("Basic !!!").is_err());
        assert!(parse("Basic YWxpY2U=").is_err(), "no colon");
        assert!(parse("Digest x").is_err());
        assert!(parse("Bearer").is_err());
    }
}
