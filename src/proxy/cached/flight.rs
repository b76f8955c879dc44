//! Single-flight manifest lookups: concurrent requests for the same manifest (repository,
//! reference, accepted types) share one BatchGetImage call and its answer, so a crowd of nodes
//! pulling one tag makes one ECR call, not one each (BatchGetImage has a per-second quota).

use crate::cache::Manifest;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::route::Reference;
use crate::proxy::App;
use bytes::Bytes;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::OnceCell;

type Answer = Result<Manifest, RegistryError>;

/// Lookups in flight, by key.
#[derive(Default)]
pub struct Flights {
    inflight: DashMap<String, Arc<OnceCell<Answer>>>,
}

impl Flights {
    /// The manifest from ECR, asked once for all who ask at the same time.
    pub async fn fetch(
        &self,
        app: &App,
        name: &str,
        reference: &Reference,
        accepted: &[String],
    ) -> RegistryResult<Manifest> {
        let key = format!("{name}\n{reference}\n{}", accepted.join(","));
        let cell = self.inflight.entry(key.clone()).or_default().clone();
        let answer = cell
            .get_or_init(|| async {
                let (tag, digest) = match reference {
                    Reference::Tag(t) => (Some(t.as_str()), None),
                    Reference::Digest(d) => (None, Some(d.as_str())),
                };
                let image = app
                    .ecr
                    .get_image(name, tag, digest, accepted)
                    .await?
                    .ok_or_else(|| RegistryError::ManifestUnknown(format!("{name}:{reference}")))?;
                Ok(Manifest {
                    bytes: Bytes::from(image.manifest),
                    media_type: image.media_type,
                })
            })
            .await
            .clone();
        // The first to finish clears the key; later askers start a new lookup.
        self.inflight.remove_if(&key, |_, c| Arc::ptr_eq(c, &cell));
        answer
    }
}
