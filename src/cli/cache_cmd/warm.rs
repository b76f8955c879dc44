//! `cache warm`: start the proxy in this process on loopback (the configuration's `[cache]` and
//! upstream, without `[auth]`, `[tls]` or the admin port: only this process talks to it), then
//! pull each image through it as a client would: first every manifest (an index's children
//! too), so the total is known, then every config and layer blob, read whole and checked. The
//! proxy fills the cache as it serves; its `/metrics` tell what was already cached and what came
//! from ECR; at the end every manifest, tag and blob is looked for in the cache folder (a cache
//! too small for what was warmed evicts). Failures are per image and do not stop the others.

use super::client::{Counters, Proxy};
use super::image::{self, ImageRef, Reference};
use super::plan::{self, Blob, Next};
use super::progress::{count, size, Output, Progress};
use super::{CacheError, WarmArgs};
use crate::cache::layout::Layout;
use crate::cli::CliError;
use crate::config::{CacheSettings, Listen, ProxyConfig};
use crate::digest::Digest;
use crate::ecr::startup::CredentialStatus;
use crate::proxy;
use futures_util::stream::{self, StreamExt};
use std::collections::{HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Blobs of one image pulled at once.
const PARALLEL_BLOBS: usize = 4;
/// Indexes inside indexes followed this deep.
const MAX_DEPTH: usize = 3;
/// How long the proxy may take to put the last fills in place once their bytes were read.
const SETTLE: Duration = Duration::from_secs(120);

/// An image whose manifests were read.
struct Resolved {
    image: ImageRef,
    label: String,
    manifests: Vec<Digest>,
    /// Blobs to pull for this image (those an image before it in the same repository had are
    /// left out and counted in `shared`).
    blobs: Vec<Blob>,
    shared: usize,
    /// Blob bytes this image needs in all (shared ones included).
    bytes: u64,
}

impl Resolved {
    fn total(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

pub async fn run(
    args: &WarmArgs,
    mut config: ProxyConfig,
    settings: CacheSettings,
    output: Output,
) -> Result<(), CliError> {
    let images = image::from_args(&args.images, args.file.as_deref())?;
    let local = config.local.clone();
    // Only this process talks to it: loopback, a free port, plain HTTP, no admin port, and one
    // user with a random password who may only pull (another local user cannot push or delete
    // through it while it runs).
    config.listen = Listen::from(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    config.admin_listen = None;
    config.tls = None;
    let (auth, authorization, _users) = pull_only_user()?;
    config.auth = Some(auth);
    let _emulator = match &local {
        Some(dir) => Some(super::super::start_local(dir, &mut config).await?),
        None => None,
    };
    let running = proxy::start(config).await?;
    if local.is_none() {
        let s = running.ecr().startup(super::super::CREDENTIALS_WAIT).await;
        if let CredentialStatus::Missing(why) = s.credentials {
            return Err(CacheError::NoCredentials(why).into());
        }
    }
    let client = Proxy::new(running.url(), authorization);
    let progress = Arc::new(Mutex::new(Progress::new(output)));
    let say = |text: String| progress.lock().expect("progress").line(&text);
    let n = images.len();
    let label = |i: usize, image: &ImageRef| format!("[{}/{n}] {image}", i + 1);

    // Manifests first: the whole job's size is known before any blob.
    say(format!(
        "cache warm: {} into {} (cache.max_size {})",
        count(n as u64, "image"),
        settings.dir.display(),
        size(settings.max_size)
    ));
    let mut failures: Vec<(String, String)> = Vec::new();
    let mut resolved = Vec::new();
    let mut planned: HashSet<(String, Digest)> = HashSet::new();
    for (i, image) in images.into_iter().enumerate() {
        let label = label(i, &image);
        match resolve(&client, &image, &args.platform).await {
            Ok((manifests, blobs)) => {
                let bytes = blobs.iter().map(|b| b.size).sum();
                let all = blobs.len();
                let blobs: Vec<Blob> = blobs
                    .into_iter()
                    .filter(|b| planned.insert((image.repository.clone(), b.digest.clone())))
                    .collect();
                let r = Resolved {
                    shared: all - blobs.len(),
                    image,
                    label,
                    manifests,
                    blobs,
                    bytes,
                };
                say(format!(
                    "{}: {}, {}, {}",
                    r.label,
                    count(r.manifests.len() as u64, "manifest"),
                    count(all as u64, "blob"),
                    size(r.bytes)
                ));
                resolved.push(r);
            }
            Err(why) => {
                say(format!("{label}: FAILED: {why}"));
                failures.push((image.to_string(), why));
            }
        }
    }

    // Then the blobs, image by image.
    let started = Instant::now();
    let first = client.counters().await.unwrap_or_default();
    progress
        .lock()
        .expect("progress")
        .start(resolved.iter().map(Resolved::total).sum());
    let ticker = {
        let p = progress.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            loop {
                every.tick().await;
                p.lock().expect("progress").tick();
            }
        })
    };
    let mut warmed = Vec::new();
    for r in resolved {
        match pull(&client, &r, &progress).await {
            Ok(line) => {
                say(format!("{}: {line}", r.label));
                warmed.push(r);
            }
            Err(why) => {
                say(format!("{}: FAILED: {why}", r.label));
                failures.push((r.image.to_string(), why));
            }
        }
    }
    ticker.abort();
    progress.lock().expect("progress").clear();
    let last = client.counters().await.unwrap_or_default();

    // Everything warmed must still be there (warming more than max_size evicts).
    let layout = Layout::new(&settings.dir);
    for r in &warmed {
        if let Some(why) = missing(&layout, r, settings.max_size) {
            say(format!("{}: FAILED: {why}", r.label));
            failures.push((r.image.to_string(), why));
        }
    }
    let d = last.since(&first);
    let (read, rate) = progress.lock().expect("progress").done();
    say(format!(
        "cache warm: {} of {n} images warmed{}: {}, {} read — {} already cached ({}), {} \
         fetched from ECR ({}) — in {:.1} s ({}/s); the cache holds {} of {}",
        n - failures.len(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(", {} failed", failures.len())
        },
        count(d.blob_hits + d.blob_misses, "blob"),
        size(read),
        d.blob_hits,
        size(d.served_bytes),
        d.blob_misses,
        size(d.fetched_bytes),
        started.elapsed().as_secs_f64(),
        size(rate),
        size(last.bytes),
        size(settings.max_size),
    ));
    for (image, why) in &failures {
        say(format!("failed: {image}: {why}"));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CacheError::Failed {
            failed: failures.len(),
            of: n,
        }
        .into())
    }
}

/// Read an image's manifests (following indexes), returning their digests and the blobs they
/// name (each once; the empty blob, which the proxy answers without ECR, left out).
async fn resolve(
    client: &Proxy,
    image: &ImageRef,
    platforms: &[image::Platform],
) -> Result<(Vec<Digest>, Vec<Blob>), String> {
    let repo = &image.repository;
    let top = client.manifest(repo, image.reference_str()).await?;
    let mut manifests = vec![top.digest];
    let mut blobs: Vec<Blob> = Vec::new();
    let mut queue = VecDeque::from([(top.bytes, 0)]);
    while let Some((bytes, depth)) = queue.pop_front() {
        match plan::next(&bytes, platforms)? {
            Next::Manifests(children) => {
                if depth >= MAX_DEPTH {
                    return Err(format!("indexes nested more than {MAX_DEPTH} deep"));
                }
                for child in children {
                    let m = client
                        .manifest(repo, child.as_str())
                        .await
                        .map_err(|e| format!("manifest {child}: {e}"))?;
                    manifests.push(m.digest);
                    queue.push_back((m.bytes, depth + 1));
                }
            }
            Next::Blobs(found) => {
                for b in found {
                    if !b.digest.is_empty_blob() && !blobs.iter().any(|x| x.digest == b.digest) {
                        blobs.push(b);
                    }
                }
            }
        }
    }
    Ok((manifests, blobs))
}

/// Pull one image's blobs; the line saying how it went, or why it failed.
async fn pull(client: &Proxy, r: &Resolved, progress: &Mutex<Progress>) -> Result<String, String> {
    progress
        .lock()
        .expect("progress")
        .image(r.label.clone(), r.total());
    let before = client.counters().await?;
    let repo = &r.image.repository;
    let errors: Vec<String> = stream::iter(&r.blobs)
        .map(|b| async move {
            let mut read = 0;
            let got = client
                .blob(repo, b, |n| {
                    read += n;
                    progress.lock().expect("progress").add(n);
                })
                .await;
            got.map_err(|e| {
                progress
                    .lock()
                    .expect("progress")
                    .skip(b.size.saturating_sub(read));
                format!("blob {}: {e}", b.digest)
            })
        })
        .buffer_unordered(PARALLEL_BLOBS)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    let after = settle(client).await?;
    if let Some(first) = errors.first() {
        return Err(format!(
            "{} of {} could not be pulled; {first}",
            errors.len(),
            count(r.blobs.len() as u64, "blob")
        ));
    }
    let d = after.since(&before);
    let shared = if r.shared > 0 {
        format!(", {} already pulled for an image above", r.shared)
    } else {
        String::new()
    };
    Ok(format!(
        "done: {}, {} — {} already cached, {} fetched from ECR ({}){shared}",
        count((r.blobs.len() + r.shared) as u64, "blob"),
        size(r.bytes),
        d.blob_hits,
        d.blob_misses,
        size(d.fetched_bytes),
    ))
}

/// Wait until the proxy has put every fill in place (a reader may finish just before the fill
/// does); its counters then.
async fn settle(client: &Proxy) -> Result<Counters, String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let c = client.counters().await?;
        if c.fills_in_flight == 0 {
            return Ok(c);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} blobs were still being put in the cache after {} s",
                c.fills_in_flight,
                SETTLE.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What of a warmed image is not in the cache folder, if anything.
fn missing(layout: &Layout, r: &Resolved, max_size: u64) -> Option<String> {
    let manifests = r
        .manifests
        .iter()
        .filter(|d| !layout.manifest(d.hex()).exists())
        .count();
    let blobs = r
        .blobs
        .iter()
        .filter(|b| !layout.blob(b.digest.hex()).exists())
        .count();
    let tag = match &r.image.reference {
        Reference::Tag(t) => !layout.tag(&r.image.repository, t).exists(),
        Reference::Digest(_) => false,
    };
    if manifests == 0 && blobs == 0 && !tag {
        return None;
    }
    Some(format!(
        "pulled, but not all of it is in the cache now ({manifests} manifests, {blobs} blobs{} \
         missing): cache.max_size ({}) is too small for everything warmed, or the cache could \
         not write (see the log)",
        if tag { ", the tag" } else { "" },
        size(max_size)
    ))
}

/// The htpasswd file of the in-process proxy's one user, removed when dropped.
struct TempUsers(std::path::PathBuf);

impl Drop for TempUsers {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `[auth]` admitting one user, `warm`, with a random password, who may only pull; the
/// `Authorization` value for it; and its htpasswd file (removed when dropped).
fn pull_only_user() -> Result<(crate::config::AuthSettings, String, TempUsers), CliError> {
    let password = uuid::Uuid::new_v4().simple().to_string();
    let hash = bcrypt::hash(&password, 4)
        .map_err(|e| CacheError::TempUser(std::io::Error::other(e.to_string())))?;
    let path = std::env::temp_dir().join(format!(
        "ecr-proxy-warm-{}.htpasswd",
        uuid::Uuid::new_v4().simple()
    ));
    let users = TempUsers(path.clone());
    std::fs::write(&path, format!("warm:{hash}\n")).map_err(CacheError::TempUser)?;
    let auth = crate::config::AuthSettings {
        htpasswd: Some(path),
        issuers: Vec::new(),
        rules: vec![crate::config::Rule {
            subjects: vec!["warm".into()],
            claims: Default::default(),
            repositories: vec!["*".into()],
            actions: vec![crate::config::Action::Pull],
        }],
        anonymous_pull: Vec::new(),
        realm: None,
        service: "ecr-proxy".into(),
        token_key_file: None,
        token_ttl: std::time::Duration::from_secs(300),
        max_password_checks: 1,
    };
    let basic = base64_simd::STANDARD.encode_to_string(format!("warm:{password}"));
    Ok((auth, format!("Basic {basic}"), users))
}
