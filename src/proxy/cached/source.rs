//! Where the disk cache's fills get a blob's bytes: ECR's download URL for the repository
//! (GetDownloadUrlForLayer, through `holder` for a blob no manifest references yet), fetched
//! from the offset the fill asks (`Range: bytes=N-` when resuming). A fresh URL for each try,
//! as they expire. The fill's errors carry the proxy's own `RegistryError`, so the first
//! client sees what ECR said (BLOB_UNKNOWN, UNAVAILABLE).

use crate::cache::{Opened, Source, SourceError};
use crate::digest::Digest;
use crate::proxy::error::RegistryError;
use crate::proxy::{holder, App};
use futures_util::future::BoxFuture;
use futures_util::stream::StreamExt;
use http::{header, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;

pub struct EcrSource {
    pub app: Arc<App>,
    pub repository: String,
    pub digest: Digest,
}

fn err(e: RegistryError) -> SourceError {
    Arc::new(e)
}

impl Source for EcrSource {
    fn open(&self, from: u64) -> BoxFuture<'static, Result<Opened, SourceError>> {
        let app = self.app.clone();
        let repo = self.repository.clone();
        let digest = self.digest.clone();
        Box::pin(async move {
            let url = holder::download_url(&app, &repo, &digest)
                .await
                .map_err(err)?;
            let range = (from > 0).then(|| format!("bytes={from}-"));
            let resp = app.fetcher.get(&url, range.as_deref()).await.map_err(err)?;
            let status = resp.status();
            let total = match status {
                StatusCode::OK if from == 0 => resp
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok()),
                StatusCode::PARTIAL_CONTENT => resp
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok()?.rsplit_once('/')?.1.parse::<u64>().ok()),
                _ => None,
            };
            let Some(total) = total else {
                return Err(err(RegistryError::Unavailable(format!(
                    "the layer store answered {status} for {digest} from byte {from}"
                ))));
            };
            let body = resp
                .into_body()
                .into_data_stream()
                .map(|r| r.map_err(std::io::Error::other))
                .boxed();
            Ok(Opened { total, body })
        })
    }
}

/// The proxy's error for a fill that failed: the source's own error when it was one of ours.
pub fn to_registry(f: crate::cache::Failure) -> RegistryError {
    match f {
        crate::cache::Failure::Source(e) => e
            .downcast_ref::<RegistryError>()
            .cloned()
            .unwrap_or_else(|| RegistryError::Unavailable(e.to_string())),
        crate::cache::Failure::Broken(why) => {
            RegistryError::Unavailable(format!("the cache fill failed: {why}"))
        }
    }
}
