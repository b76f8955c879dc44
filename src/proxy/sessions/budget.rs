//! The global budget for buffered upload bytes. A part's whole cost (its buffer while it fills,
//! plus the SDK's base64 copy while it is sent) is reserved at once before the first byte is
//! read into it, and returned when the part is sent or dropped. A holder therefore never waits
//! for more memory, so reservations cannot deadlock; when the budget is spent, uploads stop
//! reading their clients' bodies until a part frees (backpressure). Owns no buffers itself.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits are KiB so a budget of many GiB fits.
const UNIT: u64 = 1024;

#[derive(Clone, Debug)]
pub struct Budget {
    sem: Arc<Semaphore>,
    total_units: u64,
}

/// Memory promised to one part; returned on drop.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl Budget {
    pub fn new(bytes: u64) -> Budget {
        let units = (bytes / UNIT).max(1);
        Budget {
            sem: Arc::new(Semaphore::new(units as usize)),
            total_units: units,
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

    /// Bytes promised right now.
    pub fn in_use(&self) -> u64 {
        (self.total_units - self.sem.available_permits() as u64) * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_block_until_memory_frees() {
        let b = Budget::new(10 * 1024);
        let r1 = b.reserve(6 * 1024).await;
        assert_eq!(b.in_use(), 6 * 1024);
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.reserve(6 * 1024).await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(r1);
        let r2 = waiter.await.unwrap();
        assert_eq!(b.in_use(), 6 * 1024);
        drop(r2);
        assert_eq!(b.in_use(), 0);
    }
}
