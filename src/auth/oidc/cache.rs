//! Tokens already verified, so a client sending the same JWT with every request of a pull pays
//! for one signature check: keyed by the token's SHA-256 (the token itself is not kept),
//! holding the subject and the token's `exp`. An entry is dropped at `exp` (a later request
//! verifies the token again, which then refuses it); the map is bounded, and when full, expired
//! entries go first and then everything. Knows nothing of keys or issuers.

use super::Subject;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// Entries kept at most.
pub const MAX_ENTRIES: usize = 10_000;

pub type Hash = [u8; 32];

pub fn hash(jwt: &str) -> Hash {
    Sha256::digest(jwt.as_bytes()).into()
}

#[derive(Default)]
pub struct Verified {
    entries: Mutex<HashMap<Hash, (Subject, u64)>>,
}

impl Verified {
    /// The subject of a token verified before and not expired at `now` (Unix seconds).
    pub fn get(&self, key: &Hash, now: u64) -> Option<Subject> {
        let mut map = self.entries.lock().expect("verified token cache");
        match map.get(key) {
            Some((subject, exp)) if now < *exp => Some(subject.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remember a verified token until `exp`.
    pub fn put(&self, key: Hash, subject: Subject, exp: u64, now: u64) {
        if exp <= now {
            return;
        }
        let mut map = self.entries.lock().expect("verified token cache");
        if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
            map.retain(|_, (_, e)| now < *e);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (subject, exp));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Kind;

    #[test]
    fn entries_end_at_exp_and_the_map_stays_bounded() {
        let c = Verified::default();
        let s = Subject::new("a", Kind::Oidc);
        c.put(hash("t1"), s.clone(), 100, 50);
        assert_eq!(c.get(&hash("t1"), 99), Some(s.clone()));
        assert_eq!(c.get(&hash("t1"), 100), None, "dropped at exp");
        assert_eq!(c.len(), 0);
        c.put(hash("old"), s.clone(), 10, 50);
        assert_eq!(c.len(), 0, "an expired token is not remembered");
        for i in 0..MAX_ENTRIES + 5 {
            c.put(hash(&i.to_string()), s.clone(), 1000, 50);
        }
        assert!(c.len() <= MAX_ENTRIES);
    }
}
