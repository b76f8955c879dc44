//! Acceptance tests for the local ECR emulator (`ecr_proxy::emulator`): every operation the proxy
//! uses, driven through aws-sdk-ecr, the AWS CLI and plain HTTP, with ECR's exceptions, part-size
//! rules, restarts, download URLs, SigV4, fault injection and concurrency.
//!
//! A test crate's root resolves `mod x;` beside itself, so each module names its file under
//! `tests/emulator/`.

#[path = "emulator/support.rs"]
mod support;
#[path = "emulator/wire.rs"]
mod wire;

#[path = "emulator/model.rs"]
mod model;

#[path = "emulator/auth.rs"]
mod auth;
#[path = "emulator/awscli.rs"]
mod awscli;
#[path = "emulator/concurrency.rs"]
mod concurrency;
#[path = "emulator/constraints.rs"]
mod constraints;
#[path = "emulator/downloads.rs"]
mod downloads;
#[path = "emulator/edge_names.rs"]
mod edge_names;
#[path = "emulator/expiry.rs"]
mod expiry;
#[path = "emulator/faults.rs"]
mod faults;
#[path = "emulator/fidelity.rs"]
mod fidelity;
#[path = "emulator/images.rs"]
mod images;
#[path = "emulator/listing.rs"]
mod listing;
#[path = "emulator/part_bodies.rs"]
mod part_bodies;
#[path = "emulator/parts.rs"]
mod parts;
#[path = "emulator/put_image.rs"]
mod put_image;
#[path = "emulator/repositories.rs"]
mod repositories;
#[path = "emulator/restart.rs"]
mod restart;
#[path = "emulator/spans.rs"]
mod spans;
#[path = "emulator/uploads.rs"]
mod uploads;
