//! One blob being fetched into the cache, shared by every client that wants it while it fills:
//! the bytes go to a partial file as they arrive (256 KiB at a time, each chunk's CRC-32 and the
//! whole's SHA-256 computed on the way), and each waiting client streams from that file as far
//! as it has been written, so the first bytes reach clients long before the fill ends. The fill
//! runs on its own task, so a client that goes away does not stop it for the others. A
//! connection cut part-way is resumed from the last whole chunk with a ranged request (at most
//! `MAX_ATTEMPTS` tries); a fill whose bytes do not hash to the digest is discarded, never
//! served as complete (readers get the last chunk only after the whole verified). The file is renamed into place (with its CRC table) by `Cache` only
//! once verified. This module knows nothing of ECR: a `Source` gives the bytes.

use super::stored::CHUNK;
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt};
use sha2::{Digest as _, Sha256};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why a source could not give the bytes (the proxy's own error inside, for the first client).
pub type SourceError = Arc<dyn std::error::Error + Send + Sync>;

/// A source's answer: the blob's whole size and its bytes from the offset asked.
pub struct Opened {
    pub total: u64,
    pub body: BoxStream<'static, std::io::Result<Bytes>>,
}

/// Where a fill gets its bytes: `open(from)` returns the bytes from offset `from`.
pub trait Source: Send + Sync + 'static {
    fn open(&self, from: u64) -> BoxFuture<'static, Result<Opened, SourceError>>;
}

/// Tries (the first included) before a fill gives up.
pub const MAX_ATTEMPTS: u32 = 5;

/// How a fill ended.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The source refused before any byte (the blob is unknown, ECR is down): its own error.
    Source(SourceError),
    /// The fill broke (the source kept failing, sent the wrong bytes, the disk failed).
    Broken(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Source(e) => write!(f, "{e}"),
            Failure::Broken(why) => f.write_str(why),
        }
    }
}

/// Where a fill stands.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub total: Option<u64>,
    pub written: u64,
    pub outcome: Option<Result<(), Failure>>,
}

/// A fill in progress (or just ended), as readers see it.
pub struct Fill {
    pub hex: String,
    /// The partial file, once the fill has a slot and has made it (before any byte is written).
    file: std::sync::OnceLock<Arc<std::fs::File>>,
    progress: watch::Receiver<Progress>,
}

/// What the fill task ends with, for `Cache` to put in place.
pub struct Filled {
    pub size: u64,
    pub crcs: Vec<u32>,
}

impl Fill {
    pub fn new(hex: &str) -> (Arc<Fill>, watch::Sender<Progress>) {
        let (tx, rx) = watch::channel(Progress::default());
        let fill = Arc::new(Fill {
            hex: hex.to_string(),
            file: std::sync::OnceLock::new(),
            progress: rx,
        });
        (fill, tx)
    }

    /// Give the fill its partial file (once, before its first byte).
    pub fn set_file(&self, file: Arc<std::fs::File>) {
        let _ = self.file.set(file);
    }

    /// The blob's size once the source has answered, or why it could not.
    pub async fn size(&self) -> Result<u64, Failure> {
        let mut rx = self.progress.clone();
        loop {
            {
                let p = rx.borrow_and_update();
                if let Some(total) = p.total {
                    return Ok(total);
                }
                if let Some(Err(e)) = &p.outcome {
                    return Err(e.clone());
                }
            }
            if rx.changed().await.is_err() {
                return Err(Failure::Broken("the fill ended without an answer".into()));
            }
        }
    }

    /// Bytes `start..end` as they are written; an error if the fill fails before `end`.
    pub fn stream(
        self: &Arc<Self>,
        start: u64,
        end: u64,
    ) -> BoxStream<'static, std::io::Result<Bytes>> {
        let fill = self.clone();
        stream::unfold((fill, start), move |(fill, pos)| async move {
            if pos >= end {
                return None;
            }
            let mut rx = fill.progress.clone();
            loop {
                let (written, outcome) = {
                    let p = rx.borrow_and_update();
                    (p.written, p.outcome.clone())
                };
                if let (true, Some(file)) = (written > pos, fill.file.get()) {
                    let len = (written.min(end) - pos).min(CHUNK) as usize;
                    let file = file.clone();
                    let read = tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0u8; len];
                        file.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf))
                    })
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r);
                    return match read {
                        Ok(b) => Some((Ok(b), (fill, pos + len as u64))),
                        Err(e) => Some((Err(e), (fill, end))),
                    };
                }
                if let Some(Err(e)) = outcome {
                    let err = std::io::Error::other(format!("the cache fill failed: {e}"));
                    return Some((Err(err), (fill, end)));
                }
                if rx.changed().await.is_err() {
                    let err = std::io::Error::other("the cache fill ended early");
                    return Some((Err(err), (fill, end)));
                }
            }
        })
        .boxed()
    }
}

/// Fetch the whole blob into `file`, resuming cut connections, telling readers through `tx`.
/// Returns the size and CRC table once the bytes hash to `hex`; the readers are told of the last
/// bytes (`Progress::written` = size) by the caller, once the blob is in place.
pub async fn run(
    hex: &str,
    file: Arc<std::fs::File>,
    source: Arc<dyn Source>,
    tx: &watch::Sender<Progress>,
    announced: &mut (dyn FnMut(u64) + Send),
) -> Result<Filled, Failure> {
    let mut hasher = Sha256::new();
    let mut crcs = Vec::new();
    let mut written = 0u64;
    let mut total: Option<u64> = None;
    let mut attempts = 0u32;
    let mut last_error = String::new();
    'attempts: while attempts < MAX_ATTEMPTS {
        if attempts > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempts.min(4))).await;
        }
        attempts += 1;
        let opened = match source.open(written).await {
            Ok(o) => o,
            Err(e) if written == 0 && total.is_none() => return Err(Failure::Source(e)),
            Err(e) => {
                last_error = e.to_string();
                continue;
            }
        };
        match total {
            Some(t) if t != opened.total => {
                return Err(Failure::Broken(format!(
                    "the source changed size during the fill ({t} then {} bytes)",
                    opened.total
                )))
            }
            None => {
                total = Some(opened.total);
                announced(opened.total);
            }
            _ => {}
        }
        let size = opened.total;
        tx.send_modify(|p| p.total = Some(size));
        let mut buf = BytesMut::with_capacity(CHUNK as usize);
        let mut body = opened.body;
        loop {
            match body.next().await {
                Some(Ok(bytes)) => {
                    if written + (buf.len() + bytes.len()) as u64 > size {
                        return Err(Failure::Broken(format!(
                            "the source sent more than the {size} bytes it announced"
                        )));
                    }
                    buf.extend_from_slice(&bytes);
                    while buf.len() as u64 >= CHUNK {
                        let chunk = buf.split_to(CHUNK as usize).freeze();
                        written =
                            flush(&file, chunk, written, size, &mut hasher, &mut crcs, tx).await?;
                    }
                }
                Some(Err(e)) => {
                    last_error = e.to_string();
                    tracing::debug!(hex, written, "cache fill cut off: {e}; resuming");
                    continue 'attempts;
                }
                None => {
                    if written + buf.len() as u64 == size {
                        if !buf.is_empty() {
                            let rest = buf.split().freeze();
                            written = flush(&file, rest, written, size, &mut hasher, &mut crcs, tx)
                                .await?;
                        }
                        break 'attempts;
                    }
                    last_error = format!(
                        "the source ended at {} of {size} bytes",
                        written + buf.len() as u64
                    );
                    continue 'attempts;
                }
            }
        }
    }
    let size = total.unwrap_or(0);
    if written != size || total.is_none() {
        return Err(Failure::Broken(format!(
            "gave up after {MAX_ATTEMPTS} tries at {written} of {size} bytes: {last_error}"
        )));
    }
    let got = hex::encode(hasher.finalize());
    if got != hex {
        return Err(Failure::Broken(format!(
            "the bytes received hash to sha256:{got}, not sha256:{hex}; discarded"
        )));
    }
    // The last bytes go to readers once the caller has put the blob in place: a blob that does
    // not verify never reaches its end.
    Ok(Filled { size, crcs })
}

/// Write `chunk` at `offset`, account for it, tell readers (unless it ends the blob, which
/// readers get once the whole is verified); the new written length.
async fn flush(
    file: &Arc<std::fs::File>,
    chunk: Bytes,
    offset: u64,
    size: u64,
    hasher: &mut Sha256,
    crcs: &mut Vec<u32>,
    tx: &watch::Sender<Progress>,
) -> Result<u64, Failure> {
    hasher.update(&chunk);
    crcs.push(crc32fast::hash(&chunk));
    let len = chunk.len() as u64;
    let f = file.clone();
    tokio::task::spawn_blocking(move || f.write_all_at(&chunk, offset))
        .await
        .map_err(|e| Failure::Broken(format!("the cache write task failed: {e}")))?
        .map_err(|e| Failure::Broken(format!("cannot write to the cache: {e}")))?;
    let written = offset + len;
    if written < size {
        tx.send_modify(|p| p.written = written);
    }
    Ok(written)
}
