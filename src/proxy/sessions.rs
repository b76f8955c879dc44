//! Blob upload sessions: a table keyed by unguessable ids, each bound to its repository, its
//! ECR upload and the client that opened it. This module admits sessions (a cap per client
//! address), finds, cancels and expires them, and runs the reaper that parks idle uploads' tails
//! in the spool (after a short grace, or at once when someone waits for memory) so that an idle
//! upload holds no memory. `session` holds one upload's state, `writer` moves its bytes, `budget`
//! accounts for part memory, `spool` keeps parked tails; handlers speak HTTP.

pub mod budget;
mod session;
pub mod spool;
pub mod writer;

pub use session::Session;

use budget::Budget;
use dashmap::DashMap;
use spool::Spool;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// A tail left in memory by a request that ended is parked once it has been idle this long
/// (a chunked client's next PATCH usually comes sooner, and then nothing is written).
const PARK_GRACE: Duration = Duration::from_secs(1);

/// All sessions, and the budget and spool their tails draw on.
pub struct Sessions {
    table: DashMap<String, Arc<Session>>,
    per_client: DashMap<IpAddr, usize>,
    pub budget: Budget,
    pub spool: Arc<Spool>,
    idle: Duration,
    max_per_client: usize,
}

/// The client already has as many uploads open as it may.
#[derive(Debug, thiserror::Error)]
#[error(
    "{open} uploads are open from {client}, the most one client may have; finish or cancel some"
)]
pub struct TooManyUploads {
    pub client: IpAddr,
    pub open: usize,
}

impl Sessions {
    pub fn new(budget_bytes: u64, idle: Duration, max_per_client: usize, spool: Spool) -> Sessions {
        Sessions {
            table: DashMap::new(),
            per_client: DashMap::new(),
            budget: Budget::new(budget_bytes),
            spool: Arc::new(spool),
            idle,
            max_per_client,
        }
    }

    /// Whether `client` may open another upload.
    pub fn admit(&self, client: Option<IpAddr>) -> Result<(), TooManyUploads> {
        let Some(client) = client else { return Ok(()) };
        let open = self.per_client.get(&client).map_or(0, |n| *n);
        if open >= self.max_per_client {
            return Err(TooManyUploads { client, open });
        }
        Ok(())
    }

    /// Register a new session for `repo` and ECR upload `ecr_upload_id`, opened by `client`.
    pub fn create(
        &self,
        repo: &str,
        ecr_upload_id: String,
        part_size: u64,
        client: Option<IpAddr>,
    ) -> Arc<Session> {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let s = Arc::new(Session::new(
            id.clone(),
            repo,
            ecr_upload_id,
            part_size,
            client,
        ));
        s.touch();
        if let Some(c) = client {
            *self.per_client.entry(c).or_insert(0) += 1;
        }
        self.table.insert(id, s.clone());
        s
    }

    /// The session `id` if it exists and belongs to `repo`.
    pub fn get(&self, repo: &str, id: &str) -> Option<Arc<Session>> {
        let s = self.table.get(id).map(|e| e.value().clone())?;
        (s.repo() == repo && !s.is_cancelled()).then_some(s)
    }

    /// Forget a session; a request still using it is told to stop.
    pub fn remove(&self, id: &str) {
        if let Some((_, s)) = self.table.remove(id) {
            s.cancellation().cancel();
            if let Some(c) = s.client() {
                if let dashmap::Entry::Occupied(mut e) = self.per_client.entry(c) {
                    *e.get_mut() -= 1;
                    if *e.get() == 0 {
                        e.remove();
                    }
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Drop sessions with no activity for longer than the configured time, busy or not (a
    /// request that still holds one is told to stop; a live body counts as activity).
    pub fn expire(&self) -> usize {
        let stale: Vec<String> = self
            .table
            .iter()
            .filter(|e| e.value().idle_for() >= self.idle)
            .map(|e| e.key().clone())
            .collect();
        for id in &stale {
            self.remove(id);
        }
        stale.len()
    }

    /// Park the in-memory tails of sessions no request holds and idle for at least `idle`.
    pub async fn park_idle(&self, idle: Duration) -> usize {
        let candidates: Vec<Arc<Session>> = self
            .table
            .iter()
            .filter(|e| e.value().idle_for() >= idle)
            .map(|e| e.value().clone())
            .collect();
        let mut parked = 0;
        for s in candidates {
            let Ok(mut state) = s.state.clone().try_lock_owned() else {
                continue; // a request holds it: it parks its own tail when bytes stop
            };
            writer::settle(&mut state, &s, &self.budget).await;
            if !state.has_memory() {
                continue;
            }
            match writer::park(&mut state, &s, &self.budget, &self.spool).await {
                Ok(()) => parked += 1,
                Err(e) => tracing::warn!(session = %s.id(), "cannot park an idle upload: {e}"),
            }
        }
        parked
    }

    /// Every second: park tails idle past the grace, free unused part buffers and, every
    /// `every`, expire idle sessions; at once, whenever someone waits for memory, park every
    /// tail no request holds. Runs until the table is dropped.
    pub fn spawn_reaper(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last_expiry = tokio::time::Instant::now();
            loop {
                let budget = match weak.upgrade() {
                    Some(s) => s.budget.clone(),
                    None => return,
                };
                let pressed = tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1).min(every)) => false,
                    () = budget.pressured() => true,
                };
                drop(budget);
                let Some(s) = weak.upgrade() else { return };
                let n = s
                    .park_idle(if pressed { Duration::ZERO } else { PARK_GRACE })
                    .await;
                if n > 0 {
                    tracing::debug!(parked = n, pressed, "parked idle uploads' tails");
                }
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
mod tests;
