//! What an upload request leaves behind: its failure sorted into "keep the upload where the
//! client can resume it" or "end it", and the answer (202/201 with the upload's headers, or the
//! error with `Range` and `Location` when the upload is kept). Reads no bodies and calls no ECR.

use super::super::blob_created;
use super::feed::FeedError;
use crate::body::{self, Body};
use crate::digest::Digest;
use crate::ecr::Meaning;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::sessions::writer::{WriteError, Writer};
use crate::proxy::sessions::Session;
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

/// Turn the outcome of a request into the answer, keeping or forgetting the session.
pub fn respond(
    app: &App,
    w: &Writer,
    outcome: Result<Option<Digest>, Failure>,
) -> RegistryResult<Response<Body>> {
    let session = w.session();
    session.touch();
    match outcome {
        Ok(Some(digest)) => {
            app.sessions.remove(session.id());
            Ok(blob_created(session.repo(), &digest))
        }
        Ok(None) => Ok(accepted(session, StatusCode::ACCEPTED)),
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

pub fn accepted(session: &Session, status: StatusCode) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::LOCATION, session.location())
        .header(header::RANGE, session.range())
        .header("Docker-Upload-UUID", session.id())
        .header(header::CONTENT_LENGTH, 0)
        .body(body::empty())
        .expect("valid response")
}
