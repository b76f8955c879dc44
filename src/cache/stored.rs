//! Reading a complete cached blob: its bytes in 256 KiB chunks, each checked against the CRC-32 the
//! fill recorded before a byte of it is sent, so a file that rotted or was edited on disk (a
//! flipped byte) is caught before it reaches a client. A bad chunk tells the caller (who drops
//! the entry) and the rest of the bytes come from the fallback (a new fill from ECR), so the
//! client never notices; without a fallback the stream ends with an error. Also the CRC table's
//! file format. Reads only; never writes.

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Bytes per CRC.
/// 256 KiB: what one reader holds in flight (a slow client holds one chunk; with
/// `server.max_connections` readers that bounds the memory cache reads can take).
pub const CHUNK: u64 = 256 << 10;

/// The CRC table's bytes: each chunk's CRC-32, little-endian.
pub fn encode_crcs(crcs: &[u32]) -> Vec<u8> {
    crcs.iter().flat_map(|c| c.to_le_bytes()).collect()
}

/// The CRC table of a blob of `size` bytes, if the bytes are one.
pub fn decode_crcs(bytes: &[u8], size: u64) -> Option<Vec<u32>> {
    let want = size.div_ceil(CHUNK) as usize;
    if bytes.len() != want * 4 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// A complete blob opened for reading.
pub struct Stored {
    pub file: Arc<std::fs::File>,
    pub size: u64,
    pub crcs: Arc<Vec<u32>>,
}

/// Where the bytes after a bad chunk come from: given the offset, a stream of the rest.
pub type Fallback = Box<dyn FnOnce(u64) -> BoxStream<'static, std::io::Result<Bytes>> + Send>;

type Bytestream = BoxStream<'static, std::io::Result<Bytes>>;

enum Phase {
    Cache {
        stored: Stored,
        pos: u64,
        end: u64,
        on_corrupt: Box<dyn FnOnce() + Send>,
        fallback: Option<Fallback>,
    },
    Fallback(Bytestream),
}

impl Stored {
    /// Bytes `start..end` (end exclusive, within the size), checked chunk by chunk.
    /// `on_corrupt` runs if a chunk does not match its CRC; then the rest comes from
    /// `fallback` if there is one, else the stream ends with an error.
    pub fn stream(
        self,
        start: u64,
        end: u64,
        on_corrupt: Box<dyn FnOnce() + Send>,
        fallback: Option<Fallback>,
    ) -> Bytestream {
        let first = Phase::Cache {
            stored: self,
            pos: start,
            end,
            on_corrupt,
            fallback,
        };
        stream::unfold(Some(first), |phase| async move {
            match phase? {
                Phase::Fallback(mut rest) => {
                    let item = rest.next().await?;
                    let ok = item.is_ok();
                    Some((item, ok.then_some(Phase::Fallback(rest))))
                }
                Phase::Cache {
                    mut stored,
                    pos,
                    end,
                    on_corrupt,
                    fallback,
                } => {
                    if pos >= end {
                        return None;
                    }
                    match stored.chunk_at(pos, end).await {
                        Ok(Some(bytes)) => {
                            let next = pos + bytes.len() as u64;
                            let phase = Phase::Cache {
                                stored,
                                pos: next,
                                end,
                                on_corrupt,
                                fallback,
                            };
                            Some((Ok(bytes), Some(phase)))
                        }
                        Ok(None) => {
                            on_corrupt();
                            match fallback {
                                Some(f) => {
                                    let rest = f(pos);
                                    Some((Ok(Bytes::new()), Some(Phase::Fallback(rest))))
                                }
                                None => Some((
                                    Err(std::io::Error::new(
                                        std::io::ErrorKind::InvalidData,
                                        format!(
                                            "the cached blob's bytes at {} do not match their CRC",
                                            pos - pos % CHUNK
                                        ),
                                    )),
                                    None,
                                )),
                            }
                        }
                        Err(e) => Some((Err(e), None)),
                    }
                }
            }
        })
        .boxed()
    }

    /// The bytes from `pos` to the end of its chunk (or `end`), if the chunk matches its CRC:
    /// one positioned read and the check on a blocking thread, one hop per chunk.
    async fn chunk_at(&mut self, pos: u64, end: u64) -> std::io::Result<Option<Bytes>> {
        let index = pos / CHUNK;
        let chunk_start = index * CHUNK;
        let chunk_len = CHUNK.min(self.size - chunk_start) as usize;
        let (file, crcs) = (self.file.clone(), self.crcs.clone());
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<Option<Vec<u8>>> {
            let mut buf = vec![0u8; chunk_len];
            file.read_exact_at(&mut buf, chunk_start)?;
            Ok((crc32fast::hash(&buf) == crcs[index as usize]).then_some(buf))
        })
        .await
        .map_err(std::io::Error::other)??;
        let Some(buf) = read else { return Ok(None) };
        let from = (pos - chunk_start) as usize;
        let to = (end.min(chunk_start + chunk_len as u64) - chunk_start) as usize;
        Ok(Some(Bytes::from(buf).slice(from..to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn stored(bytes: &[u8], crcs: Vec<u32>) -> (tempfile::TempDir, Stored) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        std::fs::write(&p, bytes).unwrap();
        let file = Arc::new(std::fs::File::open(&p).unwrap());
        let s = Stored {
            file,
            size: bytes.len() as u64,
            crcs: Arc::new(crcs),
        };
        (dir, s)
    }

    fn crcs_of(bytes: &[u8]) -> Vec<u32> {
        bytes.chunks(CHUNK as usize).map(crc32fast::hash).collect()
    }

    async fn collect(s: Bytestream) -> (Vec<u8>, Option<std::io::Error>) {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn serves_ranges_and_catches_a_flipped_byte() {
        let data: Vec<u8> = (0..(2 * CHUNK + 123))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let table = decode_crcs(&encode_crcs(&crcs_of(&data)), data.len() as u64).unwrap();
        let (_d, s) = stored(&data, table.clone()).await;
        let (all, err) = collect(s.stream(0, data.len() as u64, Box::new(|| {}), None)).await;
        assert!(err.is_none());
        assert_eq!(all, data);
        let (_d, s) = stored(&data, table.clone()).await;
        let (part, _) = collect(s.stream(CHUNK - 5, CHUNK + 10, Box::new(|| {}), None)).await;
        assert_eq!(part, &data[(CHUNK - 5) as usize..(CHUNK + 10) as usize]);
        // A byte flipped in the second chunk: the first chunk is served, then an error.
        let mut bad = data.clone();
        bad[(CHUNK + 7) as usize] ^= 1;
        let hit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let h = hit.clone();
        let (_d, s) = stored(&bad, table.clone()).await;
        let (got, err) = collect(s.stream(
            0,
            data.len() as u64,
            Box::new(move || h.store(true, std::sync::atomic::Ordering::SeqCst)),
            None,
        ))
        .await;
        assert_eq!(got.len() as u64, CHUNK);
        assert!(err.is_some() && hit.load(std::sync::atomic::Ordering::SeqCst));
        // With a fallback, the rest comes from it and the whole is right.
        let (_d, s) = stored(&bad, table).await;
        let good = data.clone();
        let fallback: Fallback = Box::new(move |from| {
            let rest = Bytes::from(good[from as usize..].to_vec());
            stream::iter([Ok(rest)]).boxed()
        });
        let (got, err) =
            collect(s.stream(0, data.len() as u64, Box::new(|| {}), Some(fallback))).await;
        assert!(err.is_none());
        assert_eq!(got, data);
        assert!(decode_crcs(&[0; 5], 10).is_none());
    }
}
