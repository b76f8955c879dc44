//! Manifest GET and HEAD through the disk cache. By digest: from the cache when the repository
//! is known to hold it, asked of ECR again once that knowledge is older than
//! `cache.tag_ttl_secs` (an image deleted elsewhere then answers 404), and served from the cache
//! whenever ECR cannot be asked. By tag: the tag's last known digest while it is younger than
//! `cache.tag_ttl_secs`; after that ECR is asked again (BatchGetImage), and while ECR cannot be
//! asked (unreachable, throttling) the last known digest is served for up to
//! `cache.max_stale_secs`, with a WARN line and the `stale` count; past that, 503 saying why.
//! After one failed lookup ECR is taken as unreachable for a few seconds, so stale answers do
//! not each wait for another failing call. Concurrent lookups of one manifest share one ECR call
//! (`flight`); an answer fetched across a push or delete through the proxy is served but not
//! kept. Pushes and deletes keep the cache right (`remember_push`, `forget_delete`), and so do
//! those made through another replica, announced through `[sessions]` (`forget_elsewhere`).

use super::flight::Flights;
use crate::cache::{Cache, Manifest, Tag};
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

/// Ask ECR (once for all who ask at the same time); the answer is kept unless a push or delete
/// through the proxy happened meanwhile. `tag`: also point it at the answer.
async fn fetch(
    app: &App,
    cache: &Cache,
    flights: &Flights,
    name: &str,
    reference: &Reference,
    accepted: &[String],
) -> RegistryResult<Manifest> {
    let seen = cache.generation();
    match flights.fetch(app, name, reference, accepted).await {
        Ok(m) => {
            if cache.generation() == seen {
                let digest = Digest::of(&m.bytes);
                cache.put_manifest(name, digest.hex(), &m);
                if let Reference::Tag(tag) = reference {
                    cache.put_tag(name, tag, digest.as_str(), &m.media_type);
                }
            }
            Ok(m)
        }
        Err(e) => {
            if unreachable(&e) {
                cache.note_unreachable();
            }
            Err(e)
        }
    }
}

pub async fn get(
    app: &App,
    cache: &Cache,
    flights: &Flights,
    name: &str,
    reference: &Reference,
    accepted: &[String],
) -> RegistryResult<Manifest> {
    let acceptable = |m: &Manifest| accepted.contains(&m.media_type);
    let ttl = cache.settings.tag_ttl;
    match reference {
        Reference::Digest(d) => {
            let Some(m) = cache.manifest(name, d.hex()).filter(acceptable) else {
                cache.metrics().cache_lookup("manifest", "miss");
                return fetch(app, cache, flights, name, reference, accepted).await;
            };
            let fresh = cache
                .manifest_checked(name, d.hex())
                .is_some_and(|age| age < ttl);
            if fresh || cache.known_unreachable() {
                cache.metrics().cache_lookup("manifest", "hit");
                return Ok(m);
            }
            // Known for a while: does the repository still hold it?
            match fetch(app, cache, flights, name, reference, accepted).await {
                Ok(m) => {
                    cache.confirm_manifest(name, d.hex());
                    cache.metrics().cache_lookup("manifest", "hit");
                    Ok(m)
                }
                Err(e) if unreachable(&e) => {
                    cache.metrics().cache_lookup("manifest", "hit");
                    Ok(m)
                }
                Err(e @ RegistryError::ManifestUnknown(_)) => {
                    cache.forget_manifest(name, d.hex());
                    Err(e)
                }
                Err(e) => Err(e),
            }
        }
        Reference::Tag(tag) => {
            let known = cache.tag(name, tag);
            let cached = known.as_ref().and_then(|k| {
                let d = Digest::parse(&k.digest).ok()?;
                cache.manifest(name, d.hex()).filter(acceptable)
            });
            let stale = |k: &Tag, m: Manifest, why: &dyn std::fmt::Display| {
                cache.metrics().cache_lookup("tag", "stale");
                tracing::warn!(
                    repository = name,
                    tag = %tag,
                    digest = %k.digest,
                    age_secs = k.age().as_secs(),
                    "ECR cannot be asked ({why}); answered with the tag's last known digest"
                );
                m
            };
            if let (Some(k), Some(m)) = (&known, &cached) {
                if k.age() < ttl {
                    cache.metrics().cache_lookup("tag", "hit");
                    return Ok(m.clone());
                }
                if cache.known_unreachable() && k.age() <= cache.settings.max_stale {
                    return Ok(stale(k, m.clone(), &"a lookup failed moments ago"));
                }
            }
            match fetch(app, cache, flights, name, reference, accepted).await {
                Ok(m) => {
                    cache.metrics().cache_lookup("tag", "miss");
                    Ok(m)
                }
                Err(e) if unreachable(&e) => match (known, cached) {
                    (Some(k), Some(m)) if k.age() <= cache.settings.max_stale => {
                        Ok(stale(&k, m, &e))
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
    cache.changed();
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

/// A delete through the proxy. By tag: that tag is forgotten (ECR names the image's digest even
/// when the image keeps its other tags, so nothing else is). By digest: the manifest is no longer
/// served for the repository, nor any tag pointing to it.
pub fn forget_delete(cache: &Cache, name: &str, reference: &Reference, removed: &[String]) {
    cache.changed();
    match reference {
        Reference::Tag(t) => cache.forget_tag(name, t),
        Reference::Digest(_) => {
            for d in removed {
                if let Ok(d) = Digest::parse(d) {
                    cache.forget_manifest(name, d.hex());
                }
            }
        }
    }
}

/// A push or delete made through another replica (`shared::Invalidation`): whatever this
/// replica's cache knows about it is forgotten, never rewritten (the next pull asks ECR). A tag
/// pushed or deleted: that tag. An image deleted by digest: the manifest for the repository and
/// every tag pointing to it.
pub fn forget_elsewhere(cache: &Cache, msg: &crate::shared::Invalidation) {
    cache.changed();
    let name = msg.repository.as_str();
    match (&msg.tag, &msg.digest) {
        (Some(tag), _) => cache.forget_tag(name, tag),
        (None, Some(d)) => {
            if let Ok(d) = Digest::parse(d) {
                if msg.kind == crate::shared::InvalidationKind::Delete {
                    cache.forget_manifest(name, d.hex());
                }
            }
        }
        (None, None) => {}
    }
}
