//! Manifest GET and HEAD through the disk cache. By digest: from the cache when the repository
//! is known to hold it, else from ECR and then kept. By tag: the tag's last known digest while
//! it is younger than `cache.tag_ttl_secs`; after that ECR is asked again (BatchGetImage), and
//! while ECR cannot be asked (unreachable, throttling) the last known digest is served for up
//! to `cache.max_stale_secs`, with a WARN line and the `stale` count; past that, 503 saying why.
//! Concurrent lookups of one manifest share one ECR call (`flight`). Pushes and deletes through
//! the proxy keep the cache right (`remember_push`, `forget_delete`).

use super::flight::Flights;
use crate::cache::{Cache, Manifest};
use crate::digest::Digest;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::route::Reference;
use crate::proxy::App;
use bytes::Bytes;

/// ECR could not be asked: an answer from the cache may stand in.
fn unreachable(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Unavailable(_)
            | RegistryError::TooManyRequests(_)
            | RegistryError::TimedOut(_)
    )
}

/// A manifest and its digest, from the cache or ECR.
pub struct Found {
    pub bytes: Bytes,
    pub media_type: String,
}

pub async fn get(
    app: &App,
    cache: &Cache,
    flights: &Flights,
    name: &str,
    reference: &Reference,
    accepted: &[String],
) -> RegistryResult<Found> {
    let served = |m: Manifest| Found {
        bytes: m.bytes,
        media_type: m.media_type,
    };
    let acceptable = |m: &Manifest| accepted.contains(&m.media_type);
    match reference {
        Reference::Digest(d) => {
            if let Some(m) = cache.manifest(name, d.hex()).filter(acceptable) {
                cache.metrics().cache_lookup("manifest", "hit");
                return Ok(served(m));
            }
            cache.metrics().cache_lookup("manifest", "miss");
            let m = flights.fetch(app, name, reference, accepted).await?;
            cache.put_manifest(name, Digest::of(&m.bytes).hex(), &m);
            Ok(served(m))
        }
        Reference::Tag(tag) => {
            let known = cache.tag(name, tag);
            let cached = known.as_ref().and_then(|k| {
                let d = Digest::parse(&k.digest).ok()?;
                cache.manifest(name, d.hex()).filter(acceptable)
            });
            if let (Some(k), Some(m)) = (&known, &cached) {
                if k.age() < cache.settings.tag_ttl {
                    cache.metrics().cache_lookup("tag", "hit");
                    return Ok(served(m.clone()));
                }
            }
            match flights.fetch(app, name, reference, accepted).await {
                Ok(m) => {
                    cache.metrics().cache_lookup("tag", "miss");
                    let digest = Digest::of(&m.bytes);
                    cache.put_manifest(name, digest.hex(), &m);
                    cache.put_tag(name, tag, digest.as_str(), &m.media_type);
                    Ok(served(m))
                }
                Err(e) if unreachable(&e) => match (known, cached) {
                    (Some(k), Some(m)) if k.age() <= cache.settings.max_stale => {
                        cache.metrics().cache_lookup("tag", "stale");
                        tracing::warn!(
                            repository = name,
                            tag = %tag,
                            digest = %k.digest,
                            age_secs = k.age().as_secs(),
                            "ECR cannot be asked ({e}); answered with the tag's last known digest"
                        );
                        Ok(served(m))
                    }
                    (Some(k), Some(_)) => Err(RegistryError::Unavailable(format!(
                        "ECR cannot be asked ({e}), and the last known digest of {name}:{tag} \
                         ({}) was confirmed {} s ago, more than cache.max_stale_secs ({} s)",
                        k.digest,
                        k.age().as_secs(),
                        cache.settings.max_stale.as_secs()
                    ))),
                    _ => Err(e),
                },
                Err(e @ RegistryError::ManifestUnknown(_)) => {
                    cache.forget_tag(name, tag);
                    Err(e)
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// A manifest pushed through the proxy: kept, and the tag (if any) points to it from now.
pub fn remember_push(
    cache: &Cache,
    name: &str,
    tag: Option<&str>,
    bytes: &Bytes,
    media_type: &str,
) {
    let digest = Digest::of(bytes);
    let m = Manifest {
        media_type: media_type.to_string(),
        bytes: bytes.clone(),
    };
    cache.put_manifest(name, digest.hex(), &m);
    if let Some(tag) = tag {
        cache.put_tag(name, tag, digest.as_str(), media_type);
    }
}

/// A delete through the proxy: by tag the tag is forgotten; every digest ECR removed is no
/// longer served for the repository (nor any tag pointing to it).
pub fn forget_delete(cache: &Cache, name: &str, reference: &Reference, removed: &[String]) {
    if let Reference::Tag(t) = reference {
        cache.forget_tag(name, t);
    }
    for d in removed {
        if let Ok(d) = Digest::parse(d) {
            cache.forget_manifest(name, d.hex());
        }
    }
}
