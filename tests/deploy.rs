//! The deployment files tested against the code: the Kubernetes manifests under
//! `deploy/kubernetes` (`kubernetes.rs`: parsing, command line, config, probes; `pods.rs`: memory,
//! grace, credentials, privileges, network; `replicas.rs`: the Redis replicas share; `front_door.rs`: auth and TLS from Secrets), read through `manifests.rs`, `dockerfile.rs` and
//! `proxy_container.rs`; and the container image of `deploy/Dockerfile`, built offline and run
//! (`image.rs`). The IAM
//! policies are checked in `tests/invariants.rs`.

#[path = "deploy/dockerfile.rs"]
mod dockerfile;
#[path = "deploy/front_door.rs"]
mod front_door;
#[path = "deploy/image.rs"]
mod image;
#[path = "deploy/kubernetes.rs"]
mod kubernetes;
#[path = "deploy/manifests.rs"]
mod manifests;
#[path = "deploy/pods.rs"]
mod pods;
#[path = "deploy/proxy_container.rs"]
mod proxy_container;
#[path = "deploy/replicas.rs"]
mod replicas;
// The proxy tests' helpers (emulator client, OCI layouts, skopeo, tool checks); this target uses
// a few of them.
#[allow(dead_code)]
#[path = "proxy/support.rs"]
mod support;
