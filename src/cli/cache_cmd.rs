//! The `cache` subcommand: `warm` (fill the disk cache through an in-process proxy so a site can
//! go offline prepared; `warm`), `stats` and `prune` (read or trim the cache folder without ECR;
//! `folder`). This module owns the flags and turns each command into a report: it prints
//! nothing (progress goes to the writer `main` hands in, reports back to `main`) and it never
//! touches the cache's files except through `crate::cache` (`stats` only reads them).

mod client;
mod folder;
mod image;
mod plan;
mod progress;
mod warm;

pub use progress::Output;

use crate::config::{self, ByteSize, CacheSettings, ProxyConfig};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Fill the disk cache with images from ECR, so that a site can go offline prepared
    ///
    /// Reads the config file as `serve` does ([cache], ECR's region and credentials), runs the
    /// proxy in this process on a loopback port and pulls each image through it: every
    /// manifest (all of an index's children, or --platform's) and every config and layer,
    /// checked. Progress goes to stderr; exits 1 naming each image that could not be warmed.
    Warm(WarmArgs),
    /// Show what the disk cache holds
    ///
    /// Blobs, manifests, tags, bytes used of cache.max_size, the oldest and newest last use.
    /// Reads the folder only (safe beside a running proxy); needs no ECR and no credentials.
    Stats(ConfigArg),
    /// Remove the least recently used blobs and manifests
    ///
    /// Down to --to SIZE (default cache.max_size), or all of them with --all. Needs no ECR;
    /// stop the proxies using the folder first.
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct ConfigArg {
    /// TOML configuration file with a [cache] section (config/ecr-proxy.toml documents it)
    #[arg(long, env = "ECR_PROXY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct WarmArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// A file of images, one a line (`#` starts a comment)
    #[arg(long, value_name = "LIST")]
    pub file: Option<PathBuf>,
    /// Only these platforms of an index, OS/ARCH[/VARIANT] (repeatable; default: all)
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Vec<image::Platform>,
    /// Images as REPO:TAG or REPO@sha256:…, REPO being the ECR repository name
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Evict down to this size (`10GiB`, `0`); default: cache.max_size
    #[arg(long, value_name = "SIZE", conflicts_with = "all")]
    pub to: Option<ByteSize>,
    /// Remove every blob and manifest
    #[arg(long)]
    pub all: bool,
}

/// Why a cache command failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "no [cache] section in {0}: the cache commands need cache.dir and cache.max_size \
         (README § Mirror cache)"
    )]
    NoCache(String),
    #[error("{0}")]
    Images(String),
    #[error("cannot read the image list {path}: {source}")]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no AWS credentials ({0}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
         AWS_PROFILE, or give this machine a role"
    )]
    NoCredentials(String),
    #[error("cannot read the cache folder {dir}: {source}")]
    Folder {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the in-process proxy's temporary user file: {0}")]
    TempUser(std::io::Error),
    #[error("{failed} of {of} images could not be warmed (each is named above, with why)")]
    Failed { failed: usize, of: usize },
}

/// Run a cache command. `output` takes `warm`'s progress; what is returned is the report for
/// standard output (empty for `warm`, whose summary is part of its progress).
pub async fn run(args: CacheArgs, output: Output) -> Result<String, super::CliError> {
    match args.command {
        CacheCommand::Warm(a) => {
            let (config, settings) = load(&a.config)?;
            warm::run(&a, config, settings, output).await?;
            Ok(String::new())
        }
        CacheCommand::Stats(a) => {
            let (_, settings) = load(&a)?;
            Ok(folder::stats(&settings)?)
        }
        CacheCommand::Prune(a) => {
            let (_, settings) = load(&a.config)?;
            let to = if a.all {
                0
            } else {
                a.to.map_or(settings.max_size, |s| s.0)
            };
            Ok(folder::prune(&settings, to)?)
        }
    }
}

/// The configuration (file, `ECR_PROXY_*`), which must have `[cache]`.
fn load(arg: &ConfigArg) -> Result<(ProxyConfig, CacheSettings), super::CliError> {
    let config = config::load(
        arg.config.as_deref(),
        &config::ProcessEnv,
        &config::Flags::default(),
    )?;
    let settings = config.cache.clone().ok_or_else(|| {
        CacheError::NoCache(match &arg.config {
            Some(p) => p.display().to_string(),
            None => "the configuration (give --config FILE)".into(),
        })
    })?;
    Ok((config, settings))
}
