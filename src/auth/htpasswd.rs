//! Users from an htpasswd file with bcrypt entries (`htpasswd -B`), re-read when it changes
//! (`watch::Watched`). A bcrypt check costs milliseconds of CPU by design, so checks run on
//! blocking threads, at most `max_password_checks` at once (a flood of wrong passwords waits
//! its turn instead of taking every core), and a right password is remembered (by its SHA-256,
//! never in clear) until the file changes or five minutes pass, so a client that sends Basic
//! credentials with every request pays once. Entries of other schemes (MD5 `$apr1$`, SHA1,
//! crypt) are skipped with a WARN naming the line: they are too weak to accept.

use super::{Failure, Kind, Subject};
use crate::watch::{LoadError, Watched};
use dashmap::DashMap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a checked password is remembered.
const REMEMBER: Duration = Duration::from_secs(300);
const REMEMBER_MAX: usize = 10_000;
/// Checks waiting for a slot at most; past that a check is refused at once (503), so a flood of
/// guesses cannot queue without bound.
const MAX_WAITING: usize = 256;

/// Checked against when the user is unknown, so an unknown name costs as long as a wrong
/// password (names cannot be probed by timing): a hash of a random string at the file's
/// highest cost, made once per cost.
fn dummy(cost: u32) -> String {
    static DUMMIES: std::sync::LazyLock<DashMap<u32, String>> =
        std::sync::LazyLock::new(DashMap::new);
    DUMMIES
        .entry(cost)
        .or_insert_with(|| {
            bcrypt::hash(uuid::Uuid::new_v4().to_string(), cost).expect("bcrypt of a short string")
        })
        .clone()
}

/// The cost of a bcrypt hash (`$2y$NN$…`), htpasswd's default if it cannot be read.
fn cost_of(hash: &str) -> u32 {
    hash.get(4..6)
        .and_then(|c| c.parse().ok())
        .filter(|c| (4..=31).contains(c))
        .unwrap_or(5)
}

type Users = HashMap<String, String>;

fn parse(bytes: &[u8]) -> Result<Users, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let mut users = Users::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            tracing::warn!("htpasswd line {}: not `user:hash`; skipped", i + 1);
            continue;
        };
        if !["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
            tracing::warn!(
                "htpasswd line {}: user `{user}` is not a bcrypt entry (write it with \
                 `htpasswd -B`); skipped",
                i + 1
            );
            continue;
        }
        users.insert(user.to_string(), hash.to_string());
    }
    Ok(users)
}

/// The htpasswd file's users.
pub struct Htpasswd {
    file: Watched<Users>,
    /// One permit per bcrypt running: held by the blocking task itself, so a check whose client
    /// went away keeps its slot until its bcrypt really ends.
    checks: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// (user, SHA-256 of the password) → the file's generation and when it was checked.
    remembered: DashMap<(String, [u8; 32]), (u64, Instant)>,
}

impl Htpasswd {
    pub fn load(path: &Path, max_checks: usize) -> Result<Htpasswd, LoadError> {
        Ok(Htpasswd {
            file: Watched::load(path, "htpasswd file", parse)?,
            checks: Arc::new(Semaphore::new(max_checks.max(1))),
            waiting: AtomicUsize::new(0),
            remembered: DashMap::new(),
        })
    }

    /// Users in the file now.
    pub fn len(&self) -> usize {
        self.file.get().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The subject `user` is, if `password` is theirs.
    pub async fn check(&self, user: &str, password: &str) -> Result<Subject, Failure> {
        let (users, generation) = self.file.current();
        let key = (
            user.to_string(),
            <[u8; 32]>::from(Sha256::digest(password.as_bytes())),
        );
        if let Some(seen) = self.remembered.get(&key) {
            if seen.0 == generation && seen.1.elapsed() < REMEMBER {
                return Ok(Subject::new(user, Kind::Password));
            }
        }
        let hash = users.get(user).cloned();
        let known = hash.is_some();
        let hash =
            hash.unwrap_or_else(|| dummy(users.values().map(|h| cost_of(h)).max().unwrap_or(5)));
        let password = password.to_string();
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Failure::Unavailable(format!(
                "{MAX_WAITING} password checks are already waiting; try again shortly"
            )));
        }
        let permit = self.checks.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.expect("never closed");
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            bcrypt::verify(password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if ok && known {
            if self.remembered.len() >= REMEMBER_MAX {
                self.remembered.clear();
            }
            self.remembered.insert(key, (generation, Instant::now()));
            Ok(Subject::new(user, Kind::Password))
        } else {
            Err(Failure::BadCredentials(
                "wrong user name or password".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bcrypt_users_sign_in_and_edits_take_effect() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let alice = bcrypt::hash("wonderland", 4).unwrap();
        std::fs::write(
            &path,
            format!("# team\nalice:{alice}\nold:$apr1$abc$def\nbroken\n"),
        )
        .unwrap();
        let h = Htpasswd::load(&path, 2).unwrap();
        assert_eq!(h.len(), 1, "the MD5 and malformed lines are skipped");
        assert_eq!(
            h.check("alice", "wonderland").await.unwrap(),
            Subject::new("alice", Kind::Password)
        );
        // Remembered: the same again.
        assert!(h.check("alice", "wonderland").await.is_ok());
        assert!(h.check("alice", "wrong").await.is_err());
        assert!(h.check("nobody", "wonderland").await.is_err());
        assert!(h.check("old", "anything").await.is_err());
        // A new password: the old one stops working, remembered or not.
        let new = bcrypt::hash("looking-glass", 4).unwrap();
        std::fs::write(&path, format!("alice:{new}\n")).unwrap();
        std::thread::sleep(crate::watch::CHECK_EVERY + Duration::from_millis(50));
        assert!(h.check("alice", "wonderland").await.is_err());
        assert!(h.check("alice", "looking-glass").await.is_ok());
    }

    #[test]
    fn the_dummy_hash_is_a_bcrypt_hash_of_the_file_s_cost() {
        assert!(!bcrypt::verify("x", dummy(4).as_str()).unwrap());
        assert_eq!(cost_of(&dummy(6)), 6);
        assert_eq!(cost_of("$2y$12$abc"), 12);
        assert_eq!(cost_of("nonsense"), 5);
    }

    #[tokio::test]
    async fn a_dropped_check_keeps_its_slot_until_bcrypt_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u");
        std::fs::write(
            &path,
            format!("carol:{}\n", bcrypt::hash("pw", 12).unwrap()),
        )
        .unwrap();
        let h = Htpasswd::load(&path, 1).unwrap();
        // The client goes away (the request's future is dropped) while bcrypt runs.
        let _ = tokio::time::timeout(Duration::from_millis(20), h.check("carol", "guess")).await;
        assert_eq!(
            h.checks.available_permits(),
            0,
            "bcrypt still runs: its slot stays taken, so the cap holds"
        );
        // It comes back once that bcrypt ends.
        let _permit = h.checks.clone().acquire_owned().await.unwrap();
    }
}
