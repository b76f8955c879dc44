//! Manifests fetched by digest are immutable, so the proxy keeps them: a cache keyed by
//! (repository, digest), bounded by total bytes, evicting the oldest entries first.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Clone, Debug)]
pub struct Cached {
    pub bytes: Bytes,
    pub media_type: String,
}

type Key = (String, String);

pub struct ManifestCache {
    cap: usize,
    inner: Mutex<(HashMap<Key, Cached>, VecDeque<Key>, usize)>,
}

impl ManifestCache {
    pub fn new(cap_bytes: usize) -> ManifestCache {
        ManifestCache {
            cap: cap_bytes,
            inner: Mutex::new((HashMap::new(), VecDeque::new(), 0)),
        }
    }

    pub fn get(&self, repo: &str, digest: &str) -> Option<Cached> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .0
            .get(&(repo.to_string(), digest.to_string()))
            .cloned()
    }

    pub fn put(&self, repo: &str, digest: &str, entry: Cached) {
        if entry.bytes.len() > self.cap {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order, size) = &mut *inner;
        let key = (repo.to_string(), digest.to_string());
        if map.contains_key(&key) {
            return;
        }
        *size += entry.bytes.len();
        map.insert(key.clone(), entry);
        order.push_back(key);
        while *size > self.cap {
            let Some(old) = order.pop_front() else { break };
            if let Some(e) = map.remove(&old) {
                *size -= e.bytes.len();
            }
        }
    }

    pub fn remove(&self, repo: &str, digest: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order, size) = &mut *inner;
        let key = (repo.to_string(), digest.to_string());
        if let Some(e) = map.remove(&key) {
            *size -= e.bytes.len();
            order.retain(|k| *k != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_bytes_oldest_first() {
        let c = ManifestCache::new(10);
        let e = |n: usize| Cached {
            bytes: Bytes::from(vec![0u8; n]),
            media_type: "m".into(),
        };
        c.put("r", "a", e(4));
        c.put("r", "b", e(4));
        c.put("r", "c", e(4));
        assert!(c.get("r", "a").is_none());
        assert!(c.get("r", "b").is_some() && c.get("r", "c").is_some());
        assert!(c.get("other", "b").is_none());
        c.remove("r", "b");
        assert!(c.get("r", "b").is_none());
        c.put("r", "huge", e(11));
        assert!(c.get("r", "huge").is_none());
    }
}
