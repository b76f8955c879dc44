//! Integration tests of the registry: the proxy in front of the emulator, driven over plain HTTP
//! and by real clients (skopeo, docker). Each module lives in `tests/proxy/`.

#[path = "proxy/access_log.rs"]
mod access_log;
#[path = "proxy/admin.rs"]
mod admin;
#[path = "proxy/attacks.rs"]
mod attacks;
#[path = "proxy/auth.rs"]
mod auth;
#[path = "proxy/auth_clients.rs"]
mod auth_clients;
#[path = "proxy/cache.rs"]
mod cache;
#[path = "proxy/cache_cmd.rs"]
mod cache_cmd;
#[path = "proxy/conformance.rs"]
mod conformance;
#[path = "proxy/connections.rs"]
mod connections;
#[path = "proxy/correctness.rs"]
mod correctness;
#[path = "proxy/crowd.rs"]
mod crowd;
#[path = "proxy/docker.rs"]
mod docker;
#[path = "proxy/drain.rs"]
mod drain;
#[path = "proxy/error_table.rs"]
mod error_table;
#[path = "proxy/errors.rs"]
mod errors;
#[path = "proxy/hostage.rs"]
mod hostage;
#[path = "proxy/memory.rs"]
mod memory;
#[path = "proxy/metrics.rs"]
mod metrics;
#[path = "proxy/mirror.rs"]
mod mirror;
#[path = "proxy/oidc.rs"]
mod oidc;
#[path = "proxy/pull.rs"]
mod pull;
#[path = "proxy/replicas.rs"]
mod replicas;
#[path = "proxy/request_timeout.rs"]
mod request_timeout;
#[path = "proxy/resilience.rs"]
mod resilience;
#[path = "proxy/roundtrip.rs"]
mod roundtrip;
#[path = "proxy/skopeo.rs"]
mod skopeo;
#[path = "proxy/startup.rs"]
mod startup;
#[path = "proxy/support.rs"]
mod support;
#[path = "proxy/tls.rs"]
mod tls;
#[path = "proxy/tryout.rs"]
mod tryout;
#[path = "proxy/uploads.rs"]
mod uploads;
