//! Blob upload sessions: a table keyed by unguessable ids, each bound to its repository and its
//! ECR upload, holding the bytes received and acknowledged, the running SHA-256, the buffered
//! tail, and when it was last touched. Idle sessions expire (their memory returns to the budget).
//! This module keeps state; `writer` moves bytes; handlers speak HTTP.

pub mod budget;
pub mod writer;

use budget::Budget;
use dashmap::DashMap;
use sha2::Sha256;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use writer::{InFlight, Tail};

/// One upload in progress.
pub struct Session {
    pub id: String,
    pub repo: String,
    pub ecr_upload_id: String,
    pub part_size: u64,
    /// Bytes accepted from the client.
    pub received: u64,
    /// Bytes ECR has acknowledged.
    pub committed: u64,
    pub hasher: Sha256,
    pub tail: Option<Tail>,
    pub in_flight: InFlight,
    pub budget: Budget,
    pub last_touched: Instant,
}

impl Session {
    /// The `Range` header value for what has been received (distribution's convention: `0-0` when empty).
    pub fn range(&self) -> String {
        format!("0-{}", self.received.saturating_sub(1))
    }

    pub fn location(&self) -> String {
        format!("/v2/{}/blobs/uploads/{}", self.repo, self.id)
    }
}

pub type SessionRef = Arc<Mutex<Session>>;

/// All sessions, and the budget their buffers draw on.
pub struct Sessions {
    table: DashMap<String, SessionRef>,
    pub budget: Budget,
    idle: Duration,
}

impl Sessions {
    pub fn new(budget_bytes: u64, idle: Duration) -> Sessions {
        Sessions {
            table: DashMap::new(),
            budget: Budget::new(budget_bytes),
            idle,
        }
    }

    /// Register a new session for `repo` and ECR upload `ecr_upload_id`.
    pub fn create(&self, repo: &str, ecr_upload_id: String, part_size: u64) -> SessionRef {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let s = Arc::new(Mutex::new(Session {
            id: id.clone(),
            repo: repo.to_string(),
            ecr_upload_id,
            part_size,
            received: 0,
            committed: 0,
            hasher: <Sha256 as sha2::Digest>::new(),
            tail: None,
            in_flight: None,
            budget: self.budget.clone(),
            last_touched: Instant::now(),
        }));
        self.table.insert(id, s.clone());
        s
    }

    /// The session `id` if it exists and belongs to `repo`.
    pub async fn get(&self, repo: &str, id: &str) -> Option<SessionRef> {
        let s = self.table.get(id).map(|e| e.value().clone())?;
        let ok = s.lock().await.repo == repo;
        ok.then_some(s)
    }

    pub fn remove(&self, id: &str) {
        self.table.remove(id);
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Drop sessions idle for longer than the configured time (busy ones are skipped).
    pub fn expire(&self) -> usize {
        let now = Instant::now();
        let before = self.table.len();
        self.table.retain(|_, s| match s.try_lock() {
            Ok(s) => now.duration_since(s.last_touched) < self.idle,
            Err(_) => true,
        });
        before - self.table.len()
    }

    /// Run `expire` every `every`, and free part buffers nobody has taken (`Budget::trim_stale`)
    /// every second, until the table is dropped.
    pub fn spawn_reaper(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last_expiry = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(1).min(every)).await;
                let Some(s) = weak.upgrade() else { return };
                s.budget.trim_stale();
                if last_expiry.elapsed() >= every {
                    last_expiry = tokio::time::Instant::now();
                    let n = s.expire();
                    if n > 0 {
                        tracing::info!(expired = n, "expired idle upload sessions");
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_sessions_expire_and_busy_ones_stay() {
        let s = Sessions::new(64 << 20, Duration::from_millis(20));
        let idle = s.create("a/b", "u1".into(), 5 << 20);
        let busy = s.create("a/b", "u2".into(), 5 << 20);
        let (idle_id, busy_id) = (idle.lock().await.id.clone(), busy.lock().await.id.clone());
        assert_ne!(idle_id, busy_id);
        assert_eq!(idle_id.len(), 64, "ids carry 2 x 122 random bits");
        let _guard = busy.lock().await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(s.expire(), 1);
        assert!(s.get("a/b", &idle_id).await.is_none());
        assert!(s.table.contains_key(&busy_id));
    }

    #[tokio::test]
    async fn a_session_is_found_only_under_its_repository() {
        let s = Sessions::new(64 << 20, Duration::from_secs(60));
        let id = s.create("a/b", "u".into(), 5 << 20).lock().await.id.clone();
        assert!(s.get("a/b", &id).await.is_some());
        assert!(s.get("a/c", &id).await.is_none());
        assert!(s.get("a/b", "guess").await.is_none());
    }
}
