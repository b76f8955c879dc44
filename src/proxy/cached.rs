//! Pulls through the disk cache (`[cache]`, `crate::cache`): `blobs` (GET and HEAD from cached
//! files or a shared fill), `manifests` (by digest, and tags with their time-to-live and the
//! serve-stale rule), `flight` (one ECR lookup for concurrent askers), `source` (where fills get
//! bytes: ECR's download URL). The handlers call in here when a cache is configured. This module
//! decides what comes from the cache; the files are `crate::cache`'s.

pub mod blobs;
pub mod flight;
pub mod manifests;
mod source;
