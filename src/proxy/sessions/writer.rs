//! Feeding client bytes into an upload session: hash them, cut them into exactly `partSize`
//! parts, and send each full part with UploadLayerPart while the next one fills (one part in
//! flight per upload: ECR takes parts strictly in order). The tail shorter than a part stays in
//! the session until more bytes come or the upload is finished. Owns no HTTP; callers give it
//! byte chunks and turn its errors into responses.

use super::budget::Reservation;
use super::Session;
use crate::ecr::{Ecr, EcrError, PartBody};
use bytes::Bytes;
use sha2::Digest as _;
use tokio::task::JoinHandle;

/// Client bytes hashed and encoded per step, so both passes read them from cache.
const STEP: usize = 48 * 1024;

/// A part being filled: its request body so far, with the memory promised for it.
pub struct Tail {
    pub body: PartBody,
    reservation: Reservation,
}

/// What a part costs while it exists: the buffer its base64 JSON body is written into
/// (`ecr::PartBody`; the raw bytes are never kept).
pub fn part_cost(part_size: u64) -> u64 {
    PartBody::capacity_for(part_size) as u64
}

/// The part being sent: its length and its task. Kept in the session, not in one request, so a
/// request that is dropped mid-way (its connection closed) leaves it for the next to wait for.
pub type InFlight = Option<(u64, JoinHandle<Result<(), EcrError>>)>;

/// One request's view of a session: bytes in, parts out.
pub struct Writer<'a> {
    session: &'a mut Session,
    ecr: &'a Ecr,
}

impl<'a> Writer<'a> {
    pub fn new(session: &'a mut Session, ecr: &'a Ecr) -> Self {
        Writer { session, ecr }
    }

    pub fn session(&self) -> &Session {
        self.session
    }

    /// Take in one chunk of the client's body.
    pub async fn write(&mut self, mut chunk: Bytes) -> Result<(), EcrError> {
        let part_size = self.session.part_size;
        while !chunk.is_empty() {
            if self.session.tail.is_none() {
                let memory = self
                    .session
                    .budget
                    .take(part_cost(part_size) as usize)
                    .await;
                let (buf, reservation) = memory.into_parts();
                self.session.tail = Some(Tail {
                    body: PartBody::new(buf),
                    reservation,
                });
            }
            let tail = self.session.tail.as_mut().expect("just filled");
            let take = (chunk.len() as u64).min(part_size - tail.body.raw_len()) as usize;
            for step in chunk.split_to(take).chunks(STEP) {
                self.session.hasher.update(step);
                tail.body.push(step);
            }
            self.session.received += take as u64;
            if tail.body.raw_len() == part_size {
                self.wait().await?; // the full part stays in the session meanwhile
                let tail = self.session.tail.take().expect("present");
                self.ship(tail);
            }
        }
        Ok(())
    }

    /// Send a part (the previous one has landed); its buffer goes back to the budget after.
    fn ship(&mut self, tail: Tail) {
        debug_assert!(self.session.in_flight.is_none());
        let len = tail.body.raw_len();
        let first = self.session.committed + self.in_flight_len();
        let (ecr, repo, upload, budget) = (
            self.ecr.clone(),
            self.session.repo.clone(),
            self.session.ecr_upload_id.clone(),
            self.session.budget.clone(),
        );
        let Tail { body, reservation } = tail;
        let part = ecr.finish_part(body, &repo, &upload, first);
        let handle = tokio::spawn(async move {
            let (result, buf) = ecr.upload_part(&repo, &upload, part).await;
            if let Some(buf) = buf {
                budget.give(buf, reservation);
            }
            result
        });
        self.session.in_flight = Some((len, handle));
    }

    fn in_flight_len(&self) -> u64 {
        self.session.in_flight.as_ref().map_or(0, |(len, _)| *len)
    }

    /// Wait for the part in flight, if any. It stays in the session until it has finished, so a
    /// request dropped while waiting leaves it for the next one.
    pub async fn wait(&mut self) -> Result<(), EcrError> {
        if let Some((len, handle)) = self.session.in_flight.as_mut() {
            let len = *len;
            let joined = handle.await;
            self.session.in_flight = None;
            joined.map_err(|e| {
                EcrError::new(
                    crate::ecr::ErrorKind::Unavailable,
                    "UploadLayerPart",
                    "TaskFailed",
                    e.to_string(),
                )
            })??;
            self.session.committed += len;
        }
        Ok(())
    }

    /// Send the tail as the final part (it may be shorter than a part) and wait for everything.
    pub async fn finish(&mut self) -> Result<(), EcrError> {
        self.wait().await?;
        if let Some(tail) = self.session.tail.take() {
            if tail.body.raw_len() > 0 {
                self.ship(tail);
            }
        }
        self.wait().await
    }
}
