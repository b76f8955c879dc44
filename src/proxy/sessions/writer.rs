//! Feeding client bytes into an upload session: cut them into exactly `partSize` parts, and send each full part with UploadLayerPart while the next one fills (one part in
//! flight per upload: ECR takes parts strictly in order). The tail shorter than a part stays in
//! the session, in memory while bytes flow and parked in the spool when they stop. A part that
//! fails in a way worth retrying takes the upload back to where the request began (or where ECR
//! stands, if later), so the client's retry of the same request succeeds. Owns no HTTP: callers
//! give it byte chunks and turn its errors into responses. It does not hash the client's bytes:
//! ECR computes the layer's digest at CompleteLayerUpload, so a rewind is byte offsets only.

use super::budget::{Budget, Exhausted, Reservation};
use super::session::{Session, State};
use super::spool::{Spool, SpoolFile};
use crate::ecr::{Ecr, EcrError, ParkedBody, PartBody};
use crate::parts::part_cost;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinHandle;

mod rewind;
mod stored;

use rewind::settle_joined;
pub(super) use rewind::{join, settle};
pub(in crate::proxy::sessions) use stored::SavedTail;

/// The bytes after the last part shipped.
pub(super) enum Tail {
    Empty,
    /// Being filled, in a part buffer with the memory promised for it.
    Filling(PartBody, Reservation),
    /// Parked in the spool: holds no memory.
    Parked(ParkedBody, SpoolFile),
}

/// What a part's task hands back: how it went and, when it failed, its buffer with its promise
/// (to rebuild the tail from); a sent part's buffer goes back to the budget in the task.
type Sent = (Result<(), EcrError>, Option<BytesMut>, Option<Reservation>);

/// The part being sent. Kept in the session, not in one request, so a request that is dropped
/// mid-way (its connection closed) leaves it for the next to wait for.
pub(super) struct InFlight {
    len: u64,
    task: JoinHandle<Sent>,
}

/// What a writer needs besides the session.
#[derive(Clone)]
pub struct WriterCtx {
    pub ecr: Ecr,
    pub budget: Budget,
    pub spool: Arc<Spool>,
    /// How long to wait for part memory before giving up with `WriteError::Busy`.
    pub budget_wait: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Ecr(#[from] EcrError),
    #[error(transparent)]
    Busy(#[from] Exhausted),
    #[error("parking the upload's buffered bytes failed: {0}")]
    Spool(std::io::Error),
    #[error("the upload was cancelled or expired")]
    Cancelled,
}

/// One request's hold on a session: bytes in, parts out. Holding it is holding the session's lock.
pub struct Writer {
    session: Arc<Session>,
    state: OwnedMutexGuard<State>,
    ctx: WriterCtx,
    /// Where the request began: bytes received then.
    start: u64,
}

impl Writer {
    /// Take the session's lock (waiting for a request that holds it).
    pub async fn lock(session: Arc<Session>, ctx: WriterCtx) -> Writer {
        let state = session.state.clone().lock_owned().await;
        session.touch();
        let start = state.received;
        Writer {
            session,
            state,
            ctx,
            start,
        }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    pub fn budget(&self) -> &Budget {
        &self.ctx.budget
    }

    pub fn received(&self) -> u64 {
        self.state.received
    }

    /// Where the request began whose completion failed in a way worth retrying, if one did.
    pub fn completing(&self) -> Option<u64> {
        self.state.completing
    }

    /// This request's completion failed in a way worth retrying: its resend skips the body.
    pub fn set_completing(&mut self) {
        self.state.completing = Some(self.start);
    }

    /// Take in one chunk of the client's body.
    pub async fn write(&mut self, mut chunk: Bytes) -> Result<(), WriteError> {
        self.state.completing = None;
        let part_size = self.session.part_size();
        while !chunk.is_empty() {
            self.fill().await?;
            let state = &mut *self.state;
            let Tail::Filling(body, _) = &mut state.tail else {
                unreachable!("fill leaves a filling tail")
            };
            let take = (chunk.len() as u64).min(part_size - body.raw_len()) as usize;
            body.push(&chunk.split_to(take));
            state.received += take as u64;
            let full = body.raw_len() == part_size;
            self.session.set_received(self.state.received);
            if full {
                self.wait().await?; // the full part stays in the session meanwhile
                self.ship();
            }
        }
        Ok(())
    }

    /// Make the tail a part buffer being filled: new memory, or the parked bytes brought back.
    /// The tail is replaced only after the last await, so a request dropped while it waits for
    /// memory leaves the upload as it was.
    async fn fill(&mut self) -> Result<(), WriteError> {
        if matches!(self.state.tail, Tail::Filling(..)) {
            return Ok(());
        }
        let memory = self.memory().await?;
        let (mut buf, reservation) = memory.into_parts();
        match std::mem::replace(&mut self.state.tail, Tail::Empty) {
            Tail::Empty => {
                self.state.tail = Tail::Filling(PartBody::new(buf), reservation);
            }
            Tail::Parked(parked, file) => {
                buf.resize(buf.capacity(), 0);
                if let Err(e) = file.load(&mut buf) {
                    // The parked bytes are lost: the upload cannot go on.
                    self.ctx.budget.give(buf, reservation);
                    return Err(WriteError::Spool(e));
                }
                self.state.tail = Tail::Filling(parked.restore(buf), reservation);
            }
            Tail::Filling(..) => unreachable!("checked above"),
        }
        Ok(())
    }

    /// A part buffer from the budget, waiting at most `budget_wait` in all. Meanwhile the part
    /// in flight is watched: if it fails, that is the answer (the upload rewinds and its memory
    /// is free at once); a cancelled upload stops waiting.
    async fn memory(&mut self) -> Result<super::budget::PartMemory, WriteError> {
        let capacity = part_cost(self.session.part_size()) as usize;
        let deadline = tokio::time::Instant::now() + self.ctx.budget_wait;
        let cancel = self.session.cancellation().clone();
        loop {
            let budget = self.ctx.budget.clone();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(flight) = self.state.in_flight.as_mut() else {
                return tokio::select! {
                    m = budget.take_within(capacity, left) => Ok(m?),
                    () = cancel.cancelled() => Err(WriteError::Cancelled),
                };
            };
            let joined = tokio::select! {
                m = budget.take_within(capacity, left) => return Ok(m?),
                () = cancel.cancelled() => return Err(WriteError::Cancelled),
                joined = &mut flight.task => joined,
            };
            settle_joined(
                &mut self.state,
                &self.session,
                &self.ctx.budget,
                self.start,
                joined,
            )?;
        }
    }

    /// Send the filling tail as a part (the previous one has landed); its buffer goes back to
    /// the budget once it is sent.
    fn ship(&mut self) {
        debug_assert!(self.state.in_flight.is_none());
        let Tail::Filling(body, reservation) = std::mem::replace(&mut self.state.tail, Tail::Empty)
        else {
            return;
        };
        let len = body.raw_len();
        let first = self.state.committed;
        let ecr = self.ctx.ecr.clone();
        let repo = self.session.repo().to_string();
        let upload = self.session.ecr_upload_id().to_string();
        let part = ecr.finish_part(body, &repo, &upload, first);
        let budget = self.ctx.budget.clone();
        // Carried: the part's ECR request id belongs to the request that sent it (access log).
        let task = tokio::spawn(crate::metrics::request::carry(async move {
            let (result, buf) = ecr.upload_part(&repo, &upload, part).await;
            match (result, buf) {
                // A sent part's memory is free for others at once, not when a request joins it.
                (Ok(()), Some(buf)) => {
                    budget.give(buf, reservation);
                    (Ok(()), None, None)
                }
                (result, buf) => (result, buf, Some(reservation)),
            }
        }));
        self.state.in_flight = Some(InFlight { len, task });
    }

    /// Wait for the part in flight, if any. It stays in the session until it has finished, so a
    /// request dropped while waiting leaves it for the next one.
    pub async fn wait(&mut self) -> Result<(), WriteError> {
        join(&mut self.state, &self.session, &self.ctx.budget, self.start).await
    }

    /// Send the tail as the final part (it may be shorter than a part) and wait for everything.
    pub async fn finish(&mut self) -> Result<(), WriteError> {
        self.wait().await?;
        if !matches!(self.state.tail, Tail::Empty) {
            self.fill().await?;
            self.ship();
        }
        self.wait().await
    }

    /// Give up the tail's memory while no bytes come: park it in the spool.
    pub fn park(&mut self) -> Result<(), WriteError> {
        park(
            &mut self.state,
            &self.session,
            &self.ctx.budget,
            &self.ctx.spool,
        )
    }
}

/// Park `state`'s filling tail in the spool, handing its buffer back to the budget. An empty
/// tail just hands its buffer back; if the spool cannot take it the tail stays in memory. No
/// await: the tail is replaced only once its bytes are safe in the spool.
pub(super) fn park(
    state: &mut State,
    session: &Session,
    budget: &Budget,
    spool: &Spool,
) -> Result<(), WriteError> {
    let Tail::Filling(body, _) = &state.tail else {
        return Ok(());
    };
    let file = if body.raw_len() == 0 {
        None
    } else {
        Some(
            spool
                .save(session.id(), body.written())
                .map_err(WriteError::Spool)?,
        )
    };
    let Tail::Filling(body, reservation) = std::mem::replace(&mut state.tail, Tail::Empty) else {
        unreachable!("matched above")
    };
    let (buf, parked) = body.park();
    budget.give(buf, reservation);
    if let Some(file) = file {
        state.tail = Tail::Parked(parked, file);
    }
    Ok(())
}
