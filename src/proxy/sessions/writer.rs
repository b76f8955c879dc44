//! Feeding client bytes into an upload session: hash them, cut them into exactly `partSize`
//! parts, and send each full part with UploadLayerPart while the next one fills (one part in
//! flight per upload: ECR takes parts strictly in order). The tail shorter than a part stays in
//! the session until more bytes come or the upload is finished. Owns no HTTP; callers give it
//! byte chunks and turn its errors into responses.

use super::budget::Reservation;
use super::Session;
use crate::ecr::{Ecr, EcrError};
use bytes::Bytes;
use sha2::Digest as _;
use tokio::task::JoinHandle;

/// A part being filled, with the memory promised for it.
pub struct PartBuf {
    pub data: Vec<u8>,
    reservation: Reservation,
}

/// What a part costs while it exists: its bytes, and while it is encoded, the base64 JSON body
/// (`ecr::part_body`; the raw bytes are dropped once encoded).
pub fn part_cost(part_size: u64) -> u64 {
    part_size + part_size.div_ceil(3) * 4 + 64 * 1024
}

/// One request's view of a session: bytes in, parts out.
pub struct Writer<'a> {
    session: &'a mut Session,
    ecr: &'a Ecr,
    in_flight: Option<(u64, JoinHandle<Result<(), EcrError>>)>,
}

impl<'a> Writer<'a> {
    pub fn new(session: &'a mut Session, ecr: &'a Ecr) -> Self {
        Writer {
            session,
            ecr,
            in_flight: None,
        }
    }

    pub fn session(&self) -> &Session {
        self.session
    }

    /// Take in one chunk of the client's body.
    pub async fn write(&mut self, mut chunk: Bytes) -> Result<(), EcrError> {
        self.session.hasher.update(&chunk);
        let part_size = self.session.part_size as usize;
        while !chunk.is_empty() {
            if self.session.tail.is_none() {
                let reservation = self
                    .session
                    .budget
                    .reserve(part_cost(self.session.part_size))
                    .await;
                self.session.tail = Some(PartBuf {
                    data: Vec::with_capacity(part_size),
                    reservation,
                });
            }
            let tail = self.session.tail.as_mut().expect("just filled");
            let take = chunk.len().min(part_size - tail.data.len());
            tail.data.extend_from_slice(&chunk.split_to(take));
            self.session.received += take as u64;
            if tail.data.len() == part_size {
                let part = self.session.tail.take().expect("present");
                self.ship(part).await?;
            }
        }
        Ok(())
    }

    /// Send a part once the previous one has landed.
    async fn ship(&mut self, part: PartBuf) -> Result<(), EcrError> {
        self.wait().await?;
        let len = part.data.len() as u64;
        let first = self.session.committed + self.in_flight_len();
        let (ecr, repo, upload) = (
            self.ecr.clone(),
            self.session.repo.clone(),
            self.session.ecr_upload_id.clone(),
        );
        let handle = tokio::spawn(async move {
            let PartBuf { data, reservation } = part;
            let result = ecr.upload_part(&repo, &upload, first, data).await;
            drop(reservation);
            result
        });
        self.in_flight = Some((len, handle));
        Ok(())
    }

    fn in_flight_len(&self) -> u64 {
        self.in_flight.as_ref().map_or(0, |(len, _)| *len)
    }

    /// Wait for the part in flight, if any.
    pub async fn wait(&mut self) -> Result<(), EcrError> {
        if let Some((len, handle)) = self.in_flight.take() {
            handle.await.map_err(|e| {
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
        if let Some(part) = self.session.tail.take() {
            if !part.data.is_empty() {
                self.ship(part).await?;
            }
        }
        self.wait().await
    }
}
