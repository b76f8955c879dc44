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
        let mut types = accepted.to_vec();
        types.sort();
        types.dedup();
        let key = format!("{name}\n{reference}\n{}", types.join(","));
        let cell = self.inflight.entry(key.clone()).or_default().clone();
        // However this ends (answered, or every asker gone: a timeout, a client that hung up),
        // the key leaves the table, so keys cannot pile up.
        let _leave = Leave {
            flights: self,
            key: &key,
            cell: &cell,
        };
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
        answer
    }
}

/// Removes a lookup's key (if it is still this lookup's) when dropped: later askers start anew.
struct Leave<'a> {
    flights: &'a Flights,
    key: &'a str,
    cell: &'a Arc<OnceCell<Answer>>,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.flights
            .inflight
            .remove_if(self.key, |_, c| Arc::ptr_eq(c, self.cell));
    }
}
