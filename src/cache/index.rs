//! What the cache holds and when each entry was last used: the least recently used entries are
//! the ones evicted when the total passes the size limit. Kept in memory, rebuilt at start from
//! the files (a file's modification time is its last use, refreshed at most once a minute while
//! it is used, so the order survives restarts). Bookkeeping only: no files are touched here.

use std::collections::{BTreeSet, HashMap};

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Blob,
    Manifest,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    size: u64,
    /// Last use, in nanoseconds since the epoch.
    used: u128,
    /// When the file's modification time was last set to a use (same clock).
    persisted: u128,
}

/// Entries by kind and hex digest, ordered by last use.
#[derive(Debug, Default)]
pub struct Index {
    entries: HashMap<(Kind, String), Entry>,
    by_use: BTreeSet<(u128, Kind, String)>,
    total: u64,
    /// Bytes announced by fills under way: counted against the limit before they land, so
    /// what is being filled does not push the folder past it.
    reserved: u64,
}

/// How long a use may go unrecorded in the file's modification time.
const PERSIST_EVERY_NANOS: u128 = 60 * 1_000_000_000;

pub fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

impl Index {
    /// Add (or replace) an entry last used at `used`.
    pub fn insert(&mut self, kind: Kind, hex: &str, size: u64, used: u128) {
        self.remove(kind, hex);
        self.entries.insert(
            (kind, hex.to_string()),
            Entry {
                size,
                used,
                persisted: used,
            },
        );
        self.by_use.insert((used, kind, hex.to_string()));
        self.total += size;
    }

    /// Note a use now; true when the file's modification time should be refreshed.
    pub fn touch(&mut self, kind: Kind, hex: &str) -> bool {
        let now = now_nanos();
        let Some(e) = self.entries.get_mut(&(kind, hex.to_string())) else {
            return false;
        };
        self.by_use.remove(&(e.used, kind, hex.to_string()));
        e.used = now.max(e.used + 1);
        self.by_use.insert((e.used, kind, hex.to_string()));
        if now.saturating_sub(e.persisted) >= PERSIST_EVERY_NANOS {
            e.persisted = now;
            true
        } else {
            false
        }
    }

    pub fn remove(&mut self, kind: Kind, hex: &str) -> Option<u64> {
        let e = self.entries.remove(&(kind, hex.to_string()))?;
        self.by_use.remove(&(e.used, kind, hex.to_string()));
        self.total -= e.size;
        Some(e.size)
    }

    pub fn contains(&self, kind: Kind, hex: &str) -> bool {
        self.entries.contains_key(&(kind, hex.to_string()))
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// A fill announced `n` bytes.
    pub fn reserve(&mut self, n: u64) {
        self.reserved += n;
    }

    /// A fill ended (landed, and inserted, or failed).
    pub fn release(&mut self, n: u64) {
        self.reserved = self.reserved.saturating_sub(n);
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.entries.keys().filter(|(k, _)| *k == kind).count()
    }

    /// Take out the least recently used entries until the total (with what fills under way
    /// announced) is at most `limit`; they are the caller's to delete.
    pub fn evict_to(&mut self, limit: u64) -> Vec<(Kind, String, u64)> {
        let mut out = Vec::new();
        while self.total + self.reserved > limit {
            let Some((_, kind, hex)) = self.by_use.iter().next().cloned() else {
                break;
            };
            let size = self.remove(kind, &hex).unwrap_or(0);
            out.push((kind, hex, size));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_first() {
        let mut i = Index::default();
        i.insert(Kind::Blob, "a", 10, 1);
        i.insert(Kind::Blob, "b", 10, 2);
        i.insert(Kind::Manifest, "c", 5, 3);
        assert_eq!(i.total(), 25);
        i.touch(Kind::Blob, "a");
        let gone = i.evict_to(12);
        assert_eq!(
            gone,
            vec![
                (Kind::Blob, "b".into(), 10),
                (Kind::Manifest, "c".into(), 5)
            ]
        );
        assert_eq!(i.total(), 10);
        assert!(i.contains(Kind::Blob, "a"));
        i.insert(Kind::Blob, "a", 7, 5);
        assert_eq!(i.total(), 7, "re-inserting replaces");
        assert_eq!(i.count(Kind::Blob), 1);
        // What a fill announced counts too.
        i.reserve(5);
        assert_eq!(i.evict_to(10), vec![(Kind::Blob, "a".into(), 7)]);
        i.release(5);
        assert_eq!(i.total(), 0);
    }
}
