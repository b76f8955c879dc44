//! A writer's state going to and coming from the shared session store (`sessions::handover`):
//! the raw bytes of the tail to save (a parked tail read from its spool file: a save never waits
//! for memory), and a tail (and a completion worth resending) restored from saved bytes. Part
//! memory for a restored tail is taken before its bytes are fetched, so they are counted against
//! the budget before they arrive. Knows nothing of Redis.

use super::super::budget::PartMemory;
use super::{Tail, WriteError, Writer};
use crate::ecr::PartBody;

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

    /// Memory for one part, to restore a tail into.
    pub(in crate::proxy::sessions) async fn part_memory(
        &mut self,
    ) -> Result<PartMemory, WriteError> {
        self.memory().await
    }

    /// Go on from a state saved elsewhere: ECR holds `committed` bytes and `tail` follows them
    /// (in `memory`, when there is a tail). Only for a session no bytes have reached yet.
    pub(in crate::proxy::sessions) fn restore(
        &mut self,
        committed: u64,
        completing: Option<u64>,
        tail: Option<(PartMemory, &[u8])>,
    ) {
        debug_assert!(self.state.received == 0 && matches!(self.state.tail, Tail::Empty));
        self.state.committed = committed;
        self.state.completing = completing;
        self.state.received = committed;
        if let Some((memory, bytes)) = tail {
            let (buf, reservation) = memory.into_parts();
            let mut body = PartBody::new(buf);
            body.push(bytes);
            self.state.received += bytes.len() as u64;
            self.state.tail = Tail::Filling(body, reservation);
        }
        self.start = self.state.received;
        self.session.set_received(self.state.received);
    }
}
