//! The ECR operations the emulator implements, one function each, grouped by resource, and the
//! table that maps an `X-Amz-Target` operation name onto them. Operations are synchronous: they
//! run on a blocking thread, hold the store lock only for bookkeeping, and return the output JSON.
//! This module must not know about HTTP, SigV4 or fault injection (see `api`).

mod images;
mod layers;
mod listing;
mod paging;
mod repositories;
mod uploads;

use super::error::{EcrError, EcrResult};
use super::input::Input;
use super::store::{model::RepoState, Index, Store};
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};
pub use uploads::expire_idle;

/// How BatchCheckLayerAvailability reports a digest the repository does not have: ECR's model
/// allows both, and clients meet both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingLayers {
    /// A `failures[]` entry with `MissingLayerDigest`.
    Failure,
    /// A `layers[]` entry with `layerAvailability: UNAVAILABLE`.
    Unavailable,
}

/// What operations need besides their input.
pub struct Ctx {
    pub store: Store,
    pub account: String,
    pub region: String,
    /// The `partSize` InitiateLayerUpload announces (ECR: 10 MiB).
    pub part_size: u64,
    pub missing_layers: MissingLayers,
}

/// One call: the parsed input and the base URL the caller reached us at (for download URLs).
pub struct Call {
    pub input: Input,
    pub base_url: String,
}

type Op = fn(&Ctx, &Call) -> EcrResult<Value>;

/// Every operation the emulator answers, by its `X-Amz-Target` name.
pub fn lookup(name: &str) -> Option<Op> {
    Some(match name {
        "CreateRepository" => repositories::create,
        "DescribeRepositories" => repositories::describe,
        "DeleteRepository" => repositories::delete,
        "GetAuthorizationToken" => repositories::authorization_token,
        "InitiateLayerUpload" => uploads::initiate,
        "UploadLayerPart" => uploads::upload_part,
        "CompleteLayerUpload" => uploads::complete,
        "BatchCheckLayerAvailability" => layers::batch_check,
        "GetDownloadUrlForLayer" => layers::download_url,
        "PutImage" => images::put,
        "BatchGetImage" => images::batch_get,
        "BatchDeleteImage" => images::batch_delete,
        "ListImages" => listing::list_images,
        "DescribeImages" => listing::describe_images,
        "ListImageReferrers" => listing::list_referrers,
        _ => return None,
    })
}

/// Seconds since the epoch, as ECR's timestamps are sent.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0)
}

impl Ctx {
    /// The registry an operation addresses: `registryId` if given (it must be ours), else ours.
    pub fn registry(&self, input: &Input) -> EcrResult<String> {
        match input.registry_id()? {
            Some(id) if id != self.account => Err(EcrError::Auth(
                "AccessDeniedException",
                format!("User is not authorized to access registry '{id}'"),
            )),
            _ => Ok(self.account.clone()),
        }
    }

    /// The repository `name` in the locked index, or ECR's RepositoryNotFoundException.
    pub fn repo<'a>(&self, index: &'a Index, name: &str) -> EcrResult<&'a RepoState> {
        index
            .repos
            .get(name)
            .ok_or_else(|| EcrError::repository_not_found(name, &self.account))
    }

    pub fn repo_mut<'a>(&self, index: &'a mut Index, name: &str) -> EcrResult<&'a mut RepoState> {
        index
            .repos
            .get_mut(name)
            .ok_or_else(|| EcrError::repository_not_found(name, &self.account))
    }
}

impl From<std::io::Error> for EcrError {
    fn from(e: std::io::Error) -> Self {
        EcrError::Server(format!("storage error: {e}"))
    }
}
