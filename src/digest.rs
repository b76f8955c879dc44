//! Content digests: parsing `algorithm:hex` strictly (OCI grammar, sha256 only) and hashing.
//! This module must not know about ECR or HTTP.

use sha2::{Digest as _, Sha256};
use std::fmt;

/// The digest of the empty blob, which ECR cannot store (it has no parts) and which we answer for.
pub const EMPTY_SHA256: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest `{0}` is not of the form algorithm:hex")]
    Malformed(String),
    #[error("digest algorithm `{0}` is not supported (only sha256)")]
    UnsupportedAlgorithm(String),
}

impl Digest {
    /// Parse `sha256:<64 lowercase hex>`; anything else is an error.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(s.to_string()))?;
        let algo_ok = !algo.is_empty()
            && algo
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+._-".contains(&c));
        let hex_ok = !hex.is_empty()
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if !algo_ok || !hex_ok {
            return Err(DigestError::Malformed(s.to_string()));
        }
        if algo != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm(algo.to_string()));
        }
        if hex.len() != 64 {
            return Err(DigestError::Malformed(s.to_string()));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(bytes).into())
    }

    /// The digest whose sha256 output is `hash`.
    pub fn from_sha256(hash: [u8; 32]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the empty blob's digest.
    pub fn is_empty_blob(&self) -> bool {
        self.0 == EMPTY_SHA256
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let d = Digest::parse(EMPTY_SHA256).unwrap();
        assert!(d.is_empty_blob());
        assert_eq!(Digest::of(b""), d);
        assert_eq!(d.hex().len(), 64);
        assert!(matches!(
            Digest::parse("sha256:ABC"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            Digest::parse("sha256:abc"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            Digest::parse("nocolon"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            Digest::parse(&format!("sha512:{}", "a".repeat(128))),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
    }
}
