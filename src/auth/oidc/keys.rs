//! An issuer's signing keys (a JWKS, RFC 7517) parsed for verification, and the choice of the
//! key a token names. Keys this registry cannot verify with (symmetric `oct` keys, keys marked
//! `use: enc`, unknown types or curves) are left out when the set is read, so a symmetric
//! secret in a published set can never verify anything. Pure: no I/O, no clocks.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// One usable public key.
struct Key {
    kid: Option<String>,
    /// The `alg` the set pins the key to, if any.
    alg: Option<Algorithm>,
    family: AlgorithmFamily,
    /// For EC and OKP keys.
    curve: Option<EllipticCurve>,
    key: DecodingKey,
}

impl Key {
    /// Whether this key can verify a signature made with `alg`.
    fn fits(&self, alg: Algorithm) -> bool {
        let curve_ok = match alg {
            Algorithm::ES256 => self.curve == Some(EllipticCurve::P256),
            Algorithm::ES384 => self.curve == Some(EllipticCurve::P384),
            Algorithm::EdDSA => self.curve == Some(EllipticCurve::Ed25519),
            _ => true,
        };
        self.family == alg.family() && curve_ok && self.alg.is_none_or(|a| a == alg)
    }

    fn describe(&self) -> String {
        match (self.alg, &self.curve) {
            (Some(a), _) => format!("a {a:?} key"),
            (None, Some(c)) => format!("an {c:?} key"),
            (None, None) => format!("an {:?} key", self.family),
        }
    }
}

/// The usable keys of one JWKS.
pub struct KeySet {
    keys: Vec<Key>,
}

/// Why no key was found for a token.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// The token's `kid` is not in the set (a rotation we have not seen yet, or a stranger).
    UnknownKid(String),
    /// The token's `kid` names a key of another type than its `alg` needs.
    WrongType { kid: String, have: String },
    /// No `kid`, and not exactly one key fits the token's `alg`.
    NoKid { fitting: usize },
}

impl Miss {
    /// Whether fetching the set again might help.
    pub fn worth_refetching(&self) -> bool {
        matches!(self, Miss::UnknownKid(_) | Miss::NoKid { fitting: 0 })
    }

    /// What was wrong, for the client, naming the issuer.
    pub fn explain(&self, issuer: &str, alg: Algorithm) -> String {
        match self {
            Miss::UnknownKid(kid) => {
                format!("the token is signed with key `{kid}`, which issuer `{issuer}` does not publish")
            }
            Miss::WrongType { kid, have } => format!(
                "the token's algorithm is {alg:?} but key `{kid}` of issuer `{issuer}` is {have}"
            ),
            Miss::NoKid { fitting } => format!(
                "the token names no key (`kid`) and issuer `{issuer}` has {fitting} {alg:?} \
                 keys; one is needed to pick it without a `kid`"
            ),
        }
    }
}

impl KeySet {
    /// Parse a JWKS document; an error when it is not one or holds no usable key.
    pub fn parse(bytes: &[u8]) -> Result<KeySet, String> {
        #[derive(serde::Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a JWKS document (a JSON object with `keys`): {e}"))?;
        let total = raw.keys.len();
        let keys: Vec<Key> = raw.keys.into_iter().filter_map(usable).collect();
        if keys.is_empty() {
            return Err(format!(
                "no usable signing key among its {total} keys (RSA, EC P-256/P-384 or Ed25519 \
                 public keys are used)"
            ));
        }
        Ok(KeySet { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key that verifies a token with header `kid` and `alg`.
    pub fn pick(&self, kid: Option<&str>, alg: Algorithm) -> Result<&DecodingKey, Miss> {
        match kid {
            Some(kid) => {
                let named: Vec<&Key> = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .collect();
                if let Some(k) = named.iter().find(|k| k.fits(alg)) {
                    return Ok(&k.key);
                }
                match named.first() {
                    Some(k) => Err(Miss::WrongType {
                        kid: kid.to_string(),
                        have: k.describe(),
                    }),
                    None => Err(Miss::UnknownKid(kid.to_string())),
                }
            }
            None => {
                let fitting: Vec<&Key> = self.keys.iter().filter(|k| k.fits(alg)).collect();
                match fitting.as_slice() {
                    [one] => Ok(&one.key),
                    _ => Err(Miss::NoKid {
                        fitting: fitting.len(),
                    }),
                }
            }
        }
    }
}

/// A JWKS entry as a verification key, or `None` (logged at DEBUG) when it cannot be one.
fn usable(v: serde_json::Value) -> Option<Key> {
    let kid = v.get("kid").and_then(|k| k.as_str()).map(str::to_string);
    let skip = |why: &str| {
        tracing::debug!(
            kid = kid.as_deref().unwrap_or(""),
            "JWKS key skipped: {why}"
        );
        None
    };
    let jwk: Jwk = match serde_json::from_value(v.clone()) {
        Ok(j) => j,
        Err(e) => return skip(&format!("not a key this registry can use: {e}")),
    };
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return skip("an encryption key (`use: enc`)");
    }
    let alg = match jwk.common.key_algorithm.map(Algorithm::try_from) {
        None => None,
        Some(Ok(a)) if a.family() != AlgorithmFamily::Hmac => Some(a),
        Some(_) => return skip("its `alg` is not a signature algorithm this registry accepts"),
    };
    let (family, curve) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None),
        AlgorithmParameters::EllipticCurve(p) => (AlgorithmFamily::Ec, Some(p.curve.clone())),
        AlgorithmParameters::OctetKeyPair(p) => (AlgorithmFamily::Ed, Some(p.curve.clone())),
        AlgorithmParameters::OctetKey(_) => return skip("a symmetric key (`kty: oct`)"),
        _ => return skip("an unknown key type"),
    };
    if curve == Some(EllipticCurve::P521) {
        return skip("a P-521 key (ES512 is not supported)");
    }
    let key = match DecodingKey::from_jwk(&jwk) {
        Ok(k) => k,
        Err(e) => return skip(&format!("its parameters cannot be read: {e}")),
    };
    Some(Key {
        kid,
        alg,
        family,
        curve,
        key,
    })
}
