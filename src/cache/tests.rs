//! The cache against a fake source: one fill for many readers, readers served as bytes arrive,
//! resumed fills, refused wrong bytes, eviction by last use, and a restart after `kill -9`.

use super::*;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::StreamExt;
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::Semaphore;

const MIB: usize = 1 << 20;

fn settings(dir: &Path, max: u64) -> CacheSettings {
    CacheSettings {
        dir: dir.to_path_buf(),
        max_size: max,
        tag_ttl: Duration::from_secs(60),
        max_stale: Duration::from_secs(600),
    }
}

fn blob(seed: u8, len: usize) -> (Vec<u8>, String) {
    let b: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let hex = hex::encode(Sha256::digest(&b));
    (b, hex)
}

/// Serves `bytes` in 256 KiB pieces; each piece waits for a permit of `gate` (when given);
/// `cut_at` makes the first attempt fail after that many bytes; counts opens.
struct Fake {
    bytes: Bytes,
    opens: AtomicU32,
    gate: Option<Arc<Semaphore>>,
    cut_at: Option<usize>,
    froms: Mutex<Vec<u64>>,
}

impl Fake {
    fn new(bytes: Vec<u8>) -> Fake {
        Fake {
            bytes: bytes.into(),
            opens: AtomicU32::new(0),
            gate: None,
            cut_at: None,
            froms: Mutex::default(),
        }
    }
}

impl Source for Fake {
    fn open(&self, from: u64) -> BoxFuture<'static, Result<Opened, SourceError>> {
        let n = self.opens.fetch_add(1, Ordering::SeqCst);
        self.froms.lock().unwrap().push(from);
        let rest = self.bytes.slice(from as usize..);
        let total = self.bytes.len() as u64;
        let gate = self.gate.clone();
        let cut = self.cut_at.filter(|_| n == 0);
        Box::pin(async move {
            let pieces: Vec<Bytes> = (0..rest.len())
                .step_by(256 * 1024)
                .map(|i| rest.slice(i..(i + 256 * 1024).min(rest.len())))
                .collect();
            let mut sent = 0usize;
            let body = futures_util::stream::iter(pieces)
                .then(move |p| {
                    let gate = gate.clone();
                    async move {
                        if let Some(g) = gate {
                            g.acquire().await.unwrap().forget();
                        }
                        p
                    }
                })
                .map(move |p| {
                    sent += p.len();
                    match cut {
                        Some(c) if sent > c => Err(std::io::Error::other("connection reset")),
                        _ => Ok(p),
                    }
                })
                .boxed();
            Ok(Opened { total, body })
        })
    }
}

async fn read_all(
    s: futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut s = s;
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

#[tokio::test]
async fn many_readers_share_one_fill_and_read_before_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&settings(dir.path(), 1 << 30), Metrics::new()).unwrap();
    let (bytes, hex) = blob(1, 5 * MIB + 17);
    let gate = Arc::new(Semaphore::new(0));
    let mut fake = Fake::new(bytes.clone());
    fake.gate = Some(gate.clone());
    let fake = Arc::new(fake);
    let fill = cache.fill(&hex, fake.clone()).unwrap().unwrap().0;
    let again = cache.fill(&hex, fake.clone()).unwrap().unwrap().0;
    assert!(Arc::ptr_eq(&fill, &again), "one fill per blob");
    assert!(
        !cache.fill(&hex, fake.clone()).unwrap().unwrap().1,
        "joined, not started"
    );
    let readers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(read_all(fill.stream(0, bytes.len() as u64))))
        .collect();
    // Let exactly 1 MiB through: a reader gets its first bytes while the rest is held back.
    gate.add_permits(4);
    let mut first = fill.stream(0, MIB as u64);
    let head = first.next().await.unwrap().unwrap();
    assert!(!head.is_empty());
    assert_eq!(&head[..], &bytes[..head.len()]);
    assert!(cache.stored_blob(&hex).await.is_none(), "not complete yet");
    gate.add_permits(1000);
    for r in readers {
        assert_eq!(r.await.unwrap().unwrap(), bytes);
    }
    assert_eq!(fake.opens.load(Ordering::SeqCst), 1);
    // Complete now: served from the file, checked.
    let stored = cache.stored_blob(&hex).await.expect("stored");
    assert_eq!(stored.size, bytes.len() as u64);
    let all = read_all(stored.stream(0, bytes.len() as u64, Box::new(|| {}), None)).await;
    assert_eq!(all.unwrap(), bytes);
    assert!(cache.fill(&hex, fake.clone()).unwrap().is_none());
    assert_eq!(cache.stats().blobs, 1);
}

#[tokio::test]
async fn a_cut_fill_resumes_from_the_last_whole_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&settings(dir.path(), 1 << 30), Metrics::new()).unwrap();
    let (bytes, hex) = blob(2, 3 * MIB + 5);
    let mut fake = Fake::new(bytes.clone());
    fake.cut_at = Some(MIB + MIB / 2);
    let fake = Arc::new(fake);
    let fill = cache.fill(&hex, fake.clone()).unwrap().unwrap().0;
    assert_eq!(
        read_all(fill.stream(0, bytes.len() as u64)).await.unwrap(),
        bytes
    );
    // Cut at 1.5 MiB: resumed from the last whole chunk before it.
    let resumed = (MIB as u64 + MIB as u64 / 2) / stored::CHUNK * stored::CHUNK;
    assert_eq!(*fake.froms.lock().unwrap(), vec![0, resumed]);
}

#[tokio::test]
async fn wrong_bytes_are_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&settings(dir.path(), 1 << 30), Metrics::new()).unwrap();
    let (bytes, _) = blob(3, MIB + 1);
    let (_, other_hex) = blob(4, 10);
    let fill = cache
        .fill(&other_hex, Arc::new(Fake::new(bytes.clone())))
        .unwrap()
        .unwrap();
    let got = read_all(fill.0.stream(0, bytes.len() as u64)).await;
    assert!(
        got.is_err(),
        "a reader never gets the whole of a blob that does not verify"
    );
    let mut tries = 0;
    while cache.stats().fills_in_flight > 0 && tries < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tries += 1;
    }
    assert!(cache.stored_blob(&other_hex).await.is_none());
    assert_eq!(
        std::fs::read_dir(dir.path().join("partial"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn the_least_recently_used_are_evicted_and_a_restart_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&settings(dir.path(), (5 * MIB) as u64), Metrics::new()).unwrap();
    let mut hexes = Vec::new();
    for seed in 0..3u8 {
        let (bytes, hex) = blob(10 + seed, 2 * MIB);
        let f = cache
            .fill(&hex, Arc::new(Fake::new(bytes)))
            .unwrap()
            .unwrap();
        read_all(f.0.stream(0, (2 * MIB) as u64)).await.unwrap();
        while cache.stored_blob(&hex).await.is_none() && cache.stats().fills_in_flight > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        hexes.push(hex);
        if seed == 1 {
            // Use the first again: the second is now the least recently used.
            assert!(cache.stored_blob(&hexes[0]).await.is_some());
        }
    }
    let s = cache.stats();
    assert!(s.bytes <= (5 * MIB) as u64, "{s:?}");
    assert!(
        cache.stored_blob(&hexes[1]).await.is_none(),
        "the LRU one is gone"
    );
    assert!(cache.stored_blob(&hexes[0]).await.is_some());
    assert!(cache.stored_blob(&hexes[2]).await.is_some());
    // A partial file left by a killed process is removed at the next start.
    std::fs::write(
        dir.path()
            .join("partial")
            .join(format!("{}.dead", hexes[1])),
        b"half",
    )
    .unwrap();
    drop(cache);
    let again = Cache::open(&settings(dir.path(), (5 * MIB) as u64), Metrics::new()).unwrap();
    assert_eq!(again.stats().blobs, 2);
    assert_eq!(
        std::fs::read_dir(dir.path().join("partial"))
            .unwrap()
            .count(),
        0
    );
    assert!(again.stored_blob(&hexes[2]).await.is_some());
}

#[tokio::test]
async fn a_flipped_byte_is_caught_when_served() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&settings(dir.path(), 1 << 30), Metrics::new()).unwrap();
    let (bytes, hex) = blob(5, 2 * MIB);
    let f = cache
        .fill(&hex, Arc::new(Fake::new(bytes.clone())))
        .unwrap()
        .unwrap();
    read_all(f.0.stream(0, bytes.len() as u64)).await.unwrap();
    while cache.stored_blob(&hex).await.is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let path = Layout::new(dir.path()).blob(&hex);
    let mut raw = std::fs::read(&path).unwrap();
    raw[MIB + 3] ^= 0x40;
    std::fs::write(&path, raw).unwrap();
    let stored = cache.stored_blob(&hex).await.unwrap();
    let c = cache.clone();
    let h = hex.clone();
    let got = read_all(stored.stream(
        0,
        bytes.len() as u64,
        Box::new(move || c.forget_blob(&h, "test")),
        None,
    ))
    .await;
    assert!(got.is_err(), "the bad MiB is never sent");
    assert!(
        cache.stored_blob(&hex).await.is_none(),
        "and the entry is gone"
    );
}

#[tokio::test]
async fn one_process_at_a_time_opens_a_cache_folder() {
    let dir = tempfile::tempdir().unwrap();
    let first = Cache::open(&settings(dir.path(), 1 << 30), Metrics::new()).unwrap();
    let second = Cache::open(&settings(dir.path(), 1 << 30), Metrics::new())
        .err()
        .expect("refused while the first is open");
    assert_eq!(second.kind(), std::io::ErrorKind::WouldBlock);
    assert!(
        second.to_string().contains("another ecr-proxy process"),
        "{second}"
    );
    drop(first);
    Cache::open(&settings(dir.path(), 1 << 30), Metrics::new()).expect("free again");
}

#[tokio::test]
async fn a_tag_and_a_repository_of_the_same_path_do_not_collide() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&settings(dir.path(), 1 << 30), Metrics::new()).unwrap();
    cache.put_tag("app", "web", "sha256:aa", "x");
    cache.put_tag("app/web", "v1", "sha256:bb", "x");
    assert_eq!(cache.tag("app", "web").unwrap().digest, "sha256:aa");
    assert_eq!(cache.tag("app/web", "v1").unwrap().digest, "sha256:bb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_during_fills_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&settings(dir.path(), 1 << 30), Metrics::new()).unwrap();
    let scraper = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            for _ in 0..20_000 {
                let _ = cache.stats();
            }
        })
    };
    for i in 0..20_000u32 {
        let hex = hex::encode(Sha256::digest(i.to_le_bytes()));
        let _ = cache.fill(&hex, Arc::new(Fake::new(Vec::new())));
    }
    // A deadlock would hang here; the bound only keeps a broken build from hanging CI.
    let joined = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || scraper.join()),
    )
    .await;
    assert!(joined.is_ok(), "stats() and fill() deadlocked");
}

#[tokio::test]
async fn what_a_crash_left_is_cleared_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let l = Layout::new(dir.path());
    {
        let cache = Cache::open(&settings(dir.path(), 1 << 30), Metrics::new()).unwrap();
        let (bytes, hex) = blob(20, MIB);
        let f = cache
            .fill(&hex, Arc::new(Fake::new(bytes)))
            .unwrap()
            .unwrap()
            .0;
        read_all(f.stream(0, MIB as u64)).await.unwrap();
        while cache.stored_blob(&hex).await.is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let shard = l.blobs().join("ab");
    std::fs::create_dir_all(&shard).unwrap();
    let orphan_crc = shard.join(format!("{}.crc", "ab".repeat(32)));
    let no_crc = shard.join("ab".repeat(32).replace("abab", "abac"));
    let temp = shard.join(".x.crc.123");
    let tag_temp = dir.path().join("tags/r/_t/.latest.99");
    std::fs::create_dir_all(tag_temp.parent().unwrap()).unwrap();
    for p in [&orphan_crc, &no_crc, &temp, &tag_temp] {
        std::fs::write(p, b"x").unwrap();
    }
    // A stray file where a shard folder belongs is skipped, not fatal.
    std::fs::write(l.blobs().join("stray"), b"x").unwrap();
    let cache = Cache::open(&settings(dir.path(), 1 << 30), Metrics::new()).unwrap();
    assert_eq!(cache.stats().blobs, 1, "the complete blob is kept");
    for p in [&orphan_crc, &no_crc, &temp, &tag_temp] {
        assert!(!p.exists(), "{} removed", p.display());
    }
}
