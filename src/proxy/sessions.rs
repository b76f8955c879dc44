//! Blob upload sessions: a table keyed by unguessable ids, each bound to its repository, its
//! ECR upload and the client that opened it. This module admits sessions (a cap per client
//! address), finds, cancels and expires them, and runs the reaper that parks idle uploads' tails
//! in the spool (after a short grace, or at once when someone waits for memory) so that an idle
//! upload holds no memory. `session` holds one upload's state, `writer` moves its bytes, `budget`
//! accounts for part memory, `spool` keeps parked tails; handlers speak HTTP.

pub mod budget;
pub mod handover;
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
/// An upload idle this long whose tail the full spool refuses is ended when others wait for
/// memory (chunked clients come back within milliseconds; this one has walked away).
const EVICT_IDLE: Duration = Duration::from_secs(5);

/// Who an upload counts against: the authenticated subject when there is one (many clients
/// behind one NAT or balancer address are then not one client), else the client's address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    Address(IpAddr),
    Subject(Arc<str>),
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Client {
        Client::Address(ip)
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Client::Address(ip) => write!(f, "{ip}"),
            Client::Subject(s) => write!(f, "`{s}`"),
        }
    }
}

/// One of a client's upload slots; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    per_client: Arc<DashMap<Client, usize>>,
    pub(crate) client: Option<Client>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(c) = self.client.take() else { return };
        if let dashmap::Entry::Occupied(mut e) = self.per_client.entry(c) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

/// What a client is counted as: its address, or for IPv6 its /64 (one host may hold a whole
/// /64, so counting single addresses would let it open uploads without limit).
fn client_key(client: Client) -> Client {
    let Client::Address(ip) = client else {
        return client;
    };
    Client::Address(match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    })
}

/// All sessions, and the budget and spool their tails draw on.
pub struct Sessions {
    table: DashMap<String, Arc<Session>>,
    per_client: Arc<DashMap<Client, usize>>,
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
    pub client: Client,
    pub open: usize,
}

impl Sessions {
    pub fn new(budget_bytes: u64, idle: Duration, max_per_client: usize, spool: Spool) -> Sessions {
        Sessions {
            table: DashMap::new(),
            per_client: Arc::default(),
            budget: Budget::new(budget_bytes),
            spool: Arc::new(spool),
            idle,
            max_per_client,
        }
    }

    /// Take one of `client`'s upload slots, if it has one left. Checked and counted in one step
    /// (so simultaneous POSTs cannot all pass the check); the slot is given back when the
    /// `Slot` is dropped: by the session it is given to, or at once if the upload never starts.
    pub fn admit(&self, client: Option<Client>) -> Result<Slot, TooManyUploads> {
        let Some(client) = client.map(client_key) else {
            return Ok(Slot {
                per_client: self.per_client.clone(),
                client: None,
            });
        };
        let mut open = self.per_client.entry(client.clone()).or_insert(0);
        if *open >= self.max_per_client {
            return Err(TooManyUploads {
                client,
                open: *open,
            });
        }
        *open += 1;
        Ok(Slot {
            per_client: self.per_client.clone(),
            client: Some(client),
        })
    }

    /// A slot for an upload another replica admitted: counted, never refused (the cap was
    /// checked where the upload began).
    pub fn adopt_slot(&self, client: Option<Client>) -> Slot {
        let client = client.map(client_key);
        if let Some(c) = &client {
            *self.per_client.entry(c.clone()).or_insert(0) += 1;
        }
        Slot {
            per_client: self.per_client.clone(),
            client,
        }
    }

    /// Register a new session for `repo` and ECR upload `ecr_upload_id`, holding `slot`.
    pub fn create(
        &self,
        repo: &str,
        ecr_upload_id: String,
        part_size: u64,
        slot: Slot,
    ) -> Arc<Session> {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        self.insert(id, repo, ecr_upload_id, part_size, slot, 0)
    }

    /// Register session `id` (a new one, or one taken over from the shared store at stored
    /// version `version`), replacing any copy of it this process had.
    pub fn insert(
        &self,
        id: String,
        repo: &str,
        ecr_upload_id: String,
        part_size: u64,
        slot: Slot,
        version: u64,
    ) -> Arc<Session> {
        let s = Arc::new(Session::new(
            id.clone(),
            repo,
            ecr_upload_id,
            part_size,
            slot,
        ));
        s.set_version(version);
        s.touch();
        if let Some(old) = self.table.insert(id, s.clone()) {
            old.cancellation().cancel();
        }
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
            self.discard(&s);
        }
    }

    /// Stop requests using a session that left the table, and give its tail's part buffer back
    /// to the budget's free list when no request holds it (a dropped copy of a shared upload
    /// must not cost the next one a fresh 13 MiB allocation).
    fn discard(&self, s: &Session) {
        s.cancellation().cancel();
        if let Ok(mut state) = s.state.try_lock() {
            if let writer::Tail::Filling(body, reservation) =
                std::mem::replace(&mut state.tail, writer::Tail::Empty)
            {
                self.budget.give(body.park().0, reservation);
            }
        }
    }

    /// Forget `session` if the table still holds this very copy (not a newer one of the same
    /// id), and tell a request still using it to stop.
    pub fn remove_exact(&self, session: &Arc<Session>) {
        self.table
            .remove_if(session.id(), |_, s| Arc::ptr_eq(s, session));
        self.discard(session);
    }

    /// Forget session `id` if it belongs to `repo` (another replica ended it).
    pub fn remove_in(&self, repo: &str, id: &str) {
        if let Some((_, s)) = self.table.remove_if(id, |_, s| s.repo() == repo) {
            self.discard(&s);
        }
    }

    /// Forget this process's copy of session `id` of `repo` if it is of version `version` or
    /// older and no request holds it (the upload moved to another replica, which took that
    /// version over: a request running here holds the newer copy).
    pub fn remove_stale(&self, repo: &str, id: &str, version: u64) {
        let stale = |_: &String, s: &Arc<Session>| {
            s.repo() == repo && s.version() <= version && s.state.try_lock().is_ok()
        };
        if let Some((_, s)) = self.table.remove_if(id, stale) {
            self.discard(&s);
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

    /// Park the in-memory tails of sessions no request holds and idle for at least `idle`,
    /// longest idle first. Returns how many were parked, and the sessions whose tails the spool
    /// refused (they still hold memory).
    pub async fn park_idle(&self, idle: Duration) -> (usize, Vec<Arc<Session>>) {
        // Each session's idle time is read once: it grows while the list is sorted.
        let mut candidates: Vec<(Duration, Arc<Session>)> = self
            .table
            .iter()
            .map(|e| (e.value().idle_for(), e.value().clone()))
            .filter(|(idle_for, _)| *idle_for >= idle)
            .collect();
        candidates.sort_by_key(|(idle_for, _)| std::cmp::Reverse(*idle_for));
        let (mut parked, mut refused) = (0, Vec::new());
        for (_, s) in candidates {
            let Ok(mut state) = s.state.clone().try_lock_owned() else {
                continue; // a request holds it: it parks its own tail when bytes stop
            };
            writer::settle(&mut state, &s, &self.budget).await;
            if !state.has_memory() {
                continue;
            }
            let (budget, spool) = (self.budget.clone(), self.spool.clone());
            // Writing a tail (up to 1.34 x part size) blocks: do it off the runtime's threads.
            let done = tokio::task::spawn_blocking(move || {
                let r = writer::park(&mut state, &s, &budget, &spool);
                (r, s)
            })
            .await;
            match done {
                Ok((Ok(()), _)) => parked += 1,
                Ok((Err(e), s)) => {
                    tracing::debug!(session = %s.id(), "cannot park an idle upload: {e}");
                    refused.push(s);
                }
                Err(e) => tracing::warn!("parking an idle upload failed: {e}"),
            }
        }
        (parked, refused)
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
                let contended = pressed || s.budget.is_contended();
                let grace = if contended {
                    Duration::ZERO
                } else {
                    PARK_GRACE
                };
                let (n, refused) = s.park_idle(grace).await;
                if n > 0 {
                    tracing::debug!(parked = n, contended, "parked idle uploads' tails");
                }
                if !refused.is_empty() {
                    tracing::warn!(
                        refused = refused.len(),
                        spool_bytes = s.spool.used(),
                        "the spool is full: idle uploads' tails stay in memory"
                    );
                }
                // Memory is needed and an idle upload can neither park nor go on by itself: the
                // one idle longest ends, rather than stop every other push until it expires.
                let stuck = refused
                    .iter()
                    .filter(|r| r.idle_for() >= EVICT_IDLE)
                    .max_by_key(|r| r.idle_for());
                if let (true, Some(victim)) = (contended, stuck) {
                    tracing::warn!(session = %victim.id(), repository = victim.repo(), idle_secs = victim.idle_for().as_secs(), "ended an idle upload whose tail the full spool refused, to free memory others wait for");
                    s.remove(victim.id());
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
