//! A writer's state going to and coming from the shared session store (`sessions::handover`):
//! the raw bytes of the tail to save (a parked tail read from its spool file: a save never waits
//! for memory) with the SigV4 hash state of its part body, and a tail (and a completion worth
//! resending) restored from saved bytes, going on from that hash state rather than hashing the
//! bytes again. Part
//! memory for a restored tail is taken before its bytes are fetched, so they are counted against
//! the budget before they arrive. Knows nothing of Redis.

use super::super::budget::PartMemory;
use super::{Tail, WriteError, Writer};
use crate::ecr::{Midstate, PartBody};

/// A tail saved elsewhere, to restore: memory for it, its raw bytes (segments, in order) and
/// the hash state of its part body when it is known.
pub(in crate::proxy::sessions) struct SavedTail<'a> {
    pub memory: PartMemory,
    pub segments: &'a [Vec<u8>],
    pub hash_state: Option<Midstate>,
}

impl Writer {
    /// Whether a part is being sent (the tail then starts after it, not at `committed`).
    pub(in crate::proxy::sessions) fn part_in_flight(&self) -> bool {
        self.state.in_flight.is_some()
    }

    /// Bytes ECR has acknowledged.
    pub(in crate::proxy::sessions) fn committed(&self) -> u64 {
        self.state.committed
    }

    /// The tail's raw bytes from `from` (an offset into the tail) on; a parked tail is read
    /// from its spool file (no part memory needed: a save must not wait for the budget). No part
    /// may be in flight (`wait` first).
    pub(in crate::proxy::sessions) fn tail_from(&self, from: u64) -> Result<Vec<u8>, WriteError> {
        debug_assert!(self.state.in_flight.is_none());
        Ok(match &self.state.tail {
            Tail::Empty => Vec::new(),
            Tail::Filling(body, _) => body.raw_from(from),
            Tail::Parked(parked, file) => {
                let saved = file.read().map_err(WriteError::Spool)?;
                parked.raw_from(&saved, from)
            }
        })
    }

    /// The hash state of the tail's part body (none without a tail); goes with `tail_from(0)`.
    pub(in crate::proxy::sessions) fn tail_midstate(&self) -> Option<Midstate> {
        match &self.state.tail {
            Tail::Empty => None,
            Tail::Filling(body, _) => Some(body.midstate()),
            Tail::Parked(parked, _) => Some(parked.midstate()),
        }
    }

    /// Memory for one part, to restore a tail into.
    pub(in crate::proxy::sessions) async fn part_memory(
        &mut self,
    ) -> Result<PartMemory, WriteError> {
        self.memory().await
    }

    /// Go on from a state saved elsewhere: ECR holds `committed` bytes and `tail` follows them
    /// (its segments, in order, into `memory`, with the hash state saved with them when it is
    /// known). Only for a session no bytes have reached yet. Whether the tail's part body went
    /// on from the saved hash state (else it was hashed again).
    pub(in crate::proxy::sessions) fn restore(
        &mut self,
        committed: u64,
        completing: Option<u64>,
        tail: Option<SavedTail<'_>>,
    ) -> bool {
        debug_assert!(self.state.received == 0 && matches!(self.state.tail, Tail::Empty));
        self.state.committed = committed;
        self.state.completing = completing;
        self.state.received = committed;
        let mut resumed = false;
        if let Some(saved) = tail {
            let (buf, reservation) = saved.memory.into_parts();
            let (body, from_state) =
                PartBody::resume(buf, saved.segments, saved.hash_state.as_ref());
            resumed = from_state;
            self.state.received += body.raw_len();
            self.state.tail = Tail::Filling(body, reservation);
        }
        self.start = self.state.received;
        self.session.set_received(self.state.received);
        resumed
    }
}
