//! The deployment files tested against the code: the Kubernetes manifests under
//! `deploy/kubernetes` (`deploy/kubernetes.rs`, reading them through `deploy/manifests.rs`) and the
//! container image of `deploy/Dockerfile`, built offline and run (`deploy/image.rs`). The IAM
//! policies are checked in `tests/invariants.rs`.

#[path = "deploy/image.rs"]
mod image;
#[path = "deploy/kubernetes.rs"]
mod kubernetes;
#[path = "deploy/manifests.rs"]
mod manifests;
// The proxy tests' helpers (emulator client, OCI layouts, skopeo, tool checks); this target uses
// a few of them.
#[allow(dead_code)]
#[path = "proxy/support.rs"]
mod support;
