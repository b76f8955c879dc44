//! What an upload request leaves behind: its failure sorted into "keep the upload where the
//! client can resume it" or "end it", and the answer (202/201 with the upload's headers, or the
//! error with `Range` and `Location` when the upload is kept), after the hold on the upload ends
//! (with a shared store: saved or forgotten there). Reads no bodies and calls no ECR.

use super::super::blob_created;
use super::feed::FeedError;
use super::shared::handover_error;
use crate::body::{self, Body};
use crate::digest::Digest;
use crate::ecr::Meaning;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::sessions::handover::Hold;
use crate::proxy::sessions::writer::WriteError;
use crate::proxy::App;
use http::{header, Response, StatusCode};

/// Why a request failed, and whether the upload can go on.
pub struct Failure {
    pub error: RegistryError,
    pub keep: bool,
}

impl From<FeedError> for Failure {
    fn from(e: FeedError) -> Failure {
        match e {
            FeedError::Write(w) => w.into(),
            FeedError::Cancelled => Failure {
                error: RegistryError::BlobUploadUnknown(e.to_string()),
                keep: false,
            },
            FeedError::Body(_) | FeedError::Stalled(_) => Failure {
                error: RegistryError::BlobUploadInvalid(e.to_string()),
                keep: true,
            },
        }
    }
}

impl From<WriteError> for Failure {
    fn from(e: WriteError) -> Failure {
        match e {
            WriteError::Ecr(e) => {
                // What may succeed later keeps the upload; a refusal ends it.
                let keep = matches!(e.kind.meaning(), Meaning::Throttled | Meaning::Transient);
                Failure {
                    error: e.into(),
                    keep,
                }
            }
            WriteError::Busy(b) => Failure {
                error: RegistryError::TooManyRequests(format!(
                    "{b}: other uploads are using the proxy's upload memory; retry this request"
                )),
                keep: true,
            },
            WriteError::Cancelled => Failure {
                error: RegistryError::BlobUploadUnknown(e.to_string()),
                keep: false,
            },
            WriteError::Spool(io) => Failure {
                error: RegistryError::Unavailable(format!(
                    "the proxy could not read back this upload's parked bytes ({io}); start the upload again"
                )),
                keep: false,
            },
        }
    }
}

impl From<RegistryError> for Failure {
    fn from(error: RegistryError) -> Failure {
        Failure { error, keep: false }
    }
}

/// Turn the outcome of a request into the answer, ending the request's hold on the upload:
/// saved for its next request, or forgotten. A completed upload is answered 201 even when the
/// shared store could not be told (its record expires by itself); a kept one that could not be
/// saved gets the store's error instead (the client starts again).
pub async fn respond(
    app: &App,
    mut w: Hold,
    outcome: Result<Option<Digest>, Failure>,
) -> RegistryResult<Response<Body>> {
    let keep = matches!(&outcome, Ok(None) | Err(Failure { keep: true, .. }));
    let ended = w.end(keep).await;
    let session = w.session().clone();
    session.touch();
    if let Err(e) = ended {
        match &outcome {
            Ok(Some(_)) | Err(Failure { keep: false, .. }) => {
                tracing::warn!(session = %session.id(), "could not forget a finished upload in the shared store: {e}")
            }
            _ => {
                app.sessions.remove(session.id());
                return Err(handover_error(e));
            }
        }
    }
    match outcome {
        Ok(Some(digest)) => {
            app.sessions.remove(session.id());
            Ok(blob_created(session.repo(), &digest))
        }
        Ok(None) => Ok(accepted(session.location(), session.range(), session.id())),
        Err(Failure { error, keep: true }) => Err(RegistryError::UploadKept {
            error: Box::new(error),
            range: session.range(),
            location: session.location(),
            upload_id: session.id().to_string(),
        }),
        Err(Failure { error, keep: false }) => {
            app.sessions.remove(session.id());
            Err(error)
        }
    }
}

/// 202 Accepted with the upload's `Location`, `Range` and id.
pub fn accepted(location: String, range: String, id: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::LOCATION, location)
        .header(header::RANGE, range)
        .header("Docker-Upload-UUID", id)
        .header(header::CONTENT_LENGTH, 0)
        .body(body::empty())
        .expect("valid response")
}
