//! The global budget for buffered upload bytes, and the part buffers drawn on it. A part's whole
//! buffer (the request body it becomes, see `ecr::PartBody`) is promised at once before the
//! first byte is read into it, and the promise travels with the buffer. Sent parts hand their
//! buffer back: up to `MAX_FREE` are kept, promise included, for the next parts, which saves a
//! fresh 13 MiB allocation (and its page faults) per part; stale ones are freed when the next
//! buffer comes back, and by the sessions' reaper every second. A holder never waits for more
//! memory, so promises cannot deadlock; when the budget is spent, uploads stop reading their
//! clients' bodies until a part is sent (backpressure). Waiters are served oldest first (a
//! handed-back buffer goes straight to the oldest, and newcomers queue behind them), wait at
//! most a bounded time (`take_within`), and their waiting tells idle uploads to park their
//! tails (`pressured`), so memory never sits with someone who is not using it.

use bytes::BytesMut;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Permits are KiB so a budget of many GiB fits.
const UNIT: u64 = 1024;
/// Free buffers kept for reuse (each keeps its promise): enough for 16 uploads at once; keeping
/// only 2 cost 4% more CPU on 16 concurrent pushes. Never more than were in use together.
const MAX_FREE: usize = 16;
/// A free buffer not taken for this long is not needed by the uploads running now (between two
/// parts of one upload a buffer waits for one part's round trip to ECR, well under this).
const STALE: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct Budget {
    sem: Arc<Semaphore>,
    total_units: u64,
    free: Arc<Mutex<Vec<(Instant, PartMemory)>>>,
    /// Waiters for a buffer, oldest first.
    handoff: Arc<Mutex<VecDeque<oneshot::Sender<PartMemory>>>>,
    /// Told when someone has to wait for memory, so idle uploads give theirs up (`Sessions`).
    pressure: Arc<Notify>,
    /// The same news for every request waiting for its client's next bytes: under pressure
    /// they give their part buffer up after a short pause (`contended`).
    pressure_all: Arc<Notify>,
    /// Requests waiting for memory: while there are any, newcomers queue behind them instead of
    /// taking a buffer handed back for the one that waited longest.
    waiting: Arc<AtomicUsize>,
}

/// Counts a waiter for as long as it lives.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The budget stayed spent for as long as the caller would wait.
#[derive(Debug, thiserror::Error)]
#[error("the upload buffer budget stayed spent for {0:?}")]
pub struct Exhausted(pub Duration);

/// Memory promised; returned on drop.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

/// A part buffer and the memory promised for it.
#[derive(Debug)]
pub struct PartMemory {
    pub buf: BytesMut,
    reservation: Reservation,
}

impl Budget {
    pub fn new(bytes: u64) -> Budget {
        let units = (bytes / UNIT).max(1);
        Budget {
            sem: Arc::new(Semaphore::new(units as usize)),
            total_units: units,
            free: Arc::default(),
            handoff: Arc::default(),
            pressure: Arc::default(),
            pressure_all: Arc::default(),
            waiting: Arc::default(),
        }
    }

    /// Wait until `bytes` can be promised (capped at the whole budget), then promise them.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let units = bytes.div_ceil(UNIT).clamp(1, self.total_units) as u32;
        let permit = self
            .sem
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("the budget semaphore is never closed");
        Reservation { _permit: permit }
    }

    /// `take`, waiting at most `wait`; when it cannot be served at once, idle uploads are told
    /// to give up their memory (`pressured`).
    pub async fn take_within(
        &self,
        capacity: usize,
        wait: Duration,
    ) -> Result<PartMemory, Exhausted> {
        if self.waiting.load(Ordering::Acquire) == 0 {
            if let Some(m) = self.take_now(capacity) {
                return Ok(m);
            }
        }
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(self.waiting.clone());
        self.pressure.notify_one();
        self.pressure_all.notify_waiters();
        tokio::time::timeout(wait, self.take(capacity))
            .await
            .map_err(|_| Exhausted(wait))
    }

    /// A free buffer or new memory, if either is there right now.
    fn take_now(&self, capacity: usize) -> Option<PartMemory> {
        if let Some(m) = self.pop_free(capacity) {
            return Some(m);
        }
        let units = (capacity as u64).div_ceil(UNIT).clamp(1, self.total_units) as u32;
        let permit = self.sem.clone().try_acquire_many_owned(units).ok()?;
        Some(PartMemory {
            buf: BytesMut::zeroed(capacity),
            reservation: Reservation { _permit: permit },
        })
    }

    /// Resolves when a `take_within` could not be served at once (one listener: the reaper).
    pub async fn pressured(&self) {
        self.pressure.notified().await
    }

    /// Resolves, for every caller waiting here, when someone starts waiting for memory.
    pub async fn contended(&self) {
        self.pressure_all.notified().await
    }

    /// Whether anyone is waiting for memory right now.
    pub fn is_contended(&self) -> bool {
        self.waiting.load(Ordering::Acquire) > 0
    }

    /// A buffer of at least `capacity` bytes: a free one if there is one, else new memory as
    /// soon as the budget allows, or a buffer handed back meanwhile, whichever comes first.
    /// Waiters are served in the order they came: a handed-back buffer goes to the oldest.
    pub async fn take(&self, capacity: usize) -> PartMemory {
        loop {
            if let Some(m) = self.pop_free(capacity) {
                return m;
            }
            let (tx, mut rx) = oneshot::channel();
            self.handoff.lock().expect("not poisoned").push_back(tx);
            // A buffer handed back between the look above and the queueing went to the pool.
            if let Some(m) = self.pop_free(capacity) {
                return m;
            }
            tokio::select! {
                biased;
                handed = &mut rx => match handed {
                    Ok(m) if m.buf.capacity() >= capacity => return m,
                    _ => continue, // too small for this part size: freed, promise and all
                },
                reservation = self.reserve(capacity as u64) => {
                    rx.close();
                    if let Ok(m) = rx.try_recv() {
                        self.give_memory(m); // handed over as the reservation came: pass it on
                    }
                    return PartMemory { buf: BytesMut::zeroed(capacity), reservation };
                }
            }
        }
    }

    fn pop_free(&self, capacity: usize) -> Option<PartMemory> {
        loop {
            let free = self.free.lock().expect("not poisoned").pop();
            match free {
                Some((_, m)) if m.buf.capacity() >= capacity => return Some(m),
                Some(_) => continue, // too small for this part size: freed, promise and all
                None => return None,
            }
        }
    }

    /// Hand back a part's buffer: to the oldest waiter if there is one, else kept for the next
    /// part while fewer than `MAX_FREE` are free; free buffers nobody took for `STALE` are let
    /// go first, so after a burst of uploads the pool shrinks to what the uploads still running
    /// use.
    pub fn give(&self, buf: BytesMut, reservation: Reservation) {
        self.give_memory(PartMemory { buf, reservation });
    }

    fn give_memory(&self, mut m: PartMemory) {
        loop {
            let next = self.handoff.lock().expect("not poisoned").pop_front();
            match next {
                Some(tx) => match tx.send(m) {
                    Ok(()) => return,
                    Err(back) => m = back, // that waiter gave up
                },
                None => break,
            }
        }
        let mut free = self.free.lock().expect("not poisoned");
        free.retain(|(since, _)| since.elapsed() < STALE);
        if free.len() < MAX_FREE {
            free.push((Instant::now(), m));
        }
    }

    /// Free the buffers nobody has taken for `STALE`; returns how many.
    pub fn trim_stale(&self) -> usize {
        self.trim(STALE)
    }

    /// Free the buffers nobody has taken for `idle`; returns how many.
    pub fn trim(&self, idle: Duration) -> usize {
        let mut free = self.free.lock().expect("not poisoned");
        let before = free.len();
        free.retain(|(since, _)| since.elapsed() < idle);
        before - free.len()
    }

    /// Bytes promised right now (free buffers included).
    pub fn in_use(&self) -> u64 {
        (self.total_units - self.sem.available_permits() as u64) * UNIT
    }
}

impl PartMemory {
    pub fn into_parts(self) -> (BytesMut, Reservation) {
        (self.buf, self.reservation)
    }
}

#[cfg(test)]
mod tests;
