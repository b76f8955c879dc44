//! ecr-proxy: an OCI Distribution / Docker Registry v2 server that keeps images in Amazon ECR
//! through the ECR API, and `emulator`, the local ECR it is tested against.
#![forbid(unsafe_code)]

pub mod auth;
pub mod body;
pub mod cache;
pub mod cli;
pub mod config;
pub mod digest;
pub mod ecr;
pub mod emulator;
pub mod listener;
pub mod metrics;
pub mod names;
pub mod parts;
pub mod proxy;
pub mod range;
pub mod shared;
pub mod tls;
pub mod watch;
