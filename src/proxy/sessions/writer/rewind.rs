//! A part's answer, taken into the upload: a sent part is committed; a failed one takes the
//! upload back to where the request that joins it began (if the failed part holds every byte
//! from ECR's end up to there), else to where ECR stands, rebuilding the tail from the failed
//! part's own buffer. Byte offsets only (no digest state to rewind: ECR checks the digest).
//! Touches only the session state it is given.

use super::super::budget::Budget;
use super::super::session::{Session, State};
use super::{Sent, Tail, WriteError};
use crate::ecr::{EcrError, ErrorKind, PartBody};

/// Wait for `state`'s part in flight, if any. When it failed, the upload goes back to `start`
/// (where the request that joins it began) if the failed part holds every byte from ECR's end up
/// to there (the request then had no effect), else to where ECR stands. Bytes after that point
/// are dropped; `received` tells the client where it stands.
pub(in crate::proxy::sessions) async fn join(
    state: &mut State,
    session: &Session,
    budget: &Budget,
    start: u64,
) -> Result<(), WriteError> {
    let Some(flight) = state.in_flight.as_mut() else {
        return Ok(());
    };
    let joined = (&mut flight.task).await;
    settle_joined(state, session, budget, start, joined)
}

/// `join`'s second half, once the part's task has answered: no await, so the state is never
/// left half-way.
pub(super) fn settle_joined(
    state: &mut State,
    session: &Session,
    budget: &Budget,
    start: u64,
    joined: Result<Sent, tokio::task::JoinError>,
) -> Result<(), WriteError> {
    let failed = state.in_flight.take().expect("the part that answered");
    let (e, kept) = match joined {
        Ok((Ok(()), _, _)) => {
            state.committed += failed.len;
            return Ok(());
        }
        Ok((Err(e), buf, reservation)) => (e, buf.zip(reservation)),
        Err(join) => {
            let e = EcrError::new(
                ErrorKind::Unavailable,
                "UploadLayerPart",
                "TaskFailed",
                join.to_string(),
            );
            (e, None)
        }
    };
    let committed = state.committed;
    if let Tail::Filling(body, reservation) = std::mem::replace(&mut state.tail, Tail::Empty) {
        budget.give(body.park().0, reservation);
    }
    let keep = start.saturating_sub(committed);
    match kept {
        Some((buf, reservation)) if start >= committed && keep <= failed.len => {
            if keep > 0 {
                state.tail = Tail::Filling(PartBody::rewind(buf, keep), reservation);
            } else {
                budget.give(buf, reservation);
            }
            state.received = start;
        }
        other => {
            if let Some((buf, reservation)) = other {
                budget.give(buf, reservation);
            }
            state.received = committed;
        }
    }
    session.set_received(state.received);
    tracing::info!(session = %session.id(), received = state.received, error = %e, "part failed; upload rewound");
    Err(e.into())
}

/// Settle a part that finished while no request held the upload (its request ended first), so
/// a failed part's buffer does not stay with an idle upload: everything received is kept when
/// the failed part holds it all.
pub(in crate::proxy::sessions) async fn settle(
    state: &mut State,
    session: &Session,
    budget: &Budget,
) {
    if state
        .in_flight
        .as_ref()
        .is_some_and(|f| f.task.is_finished())
    {
        let all = state.received;
        let _ = join(state, session, budget, all).await;
    }
}
