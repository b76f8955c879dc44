//! An upload's data file: parts decoded from base64 into it piece by piece (hashed on the way,
//! while each piece is in cache), cut back when a part is refused, and hashed whole when the
//! running hash was lost. Knows nothing of ECR's rules or the index (see `uploads`).

use crate::emulator::error::{EcrError, EcrResult};
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};

pub fn not_base64() -> EcrError {
    EcrError::Serialization("layerPartBlob is not valid base64".into())
}

/// Decode the part's base64 piece by piece into the upload's data file at `first`, hashing each
/// piece while it is in cache. On any error the file is cut back to `first`: nothing of a
/// refused part stays.
pub fn write_part(
    path: &std::path::Path,
    first: u64,
    b64: &[u8],
    mut hasher: Option<&mut Sha256>,
) -> EcrResult<()> {
    /// Base64 characters per piece (a multiple of 4): 256 KiB in, 192 KiB out.
    const PIECE: usize = 256 * 1024;
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    let mut buf = vec![0u8; PIECE / 4 * 3];
    let mut write = || -> EcrResult<()> {
        f.seek(SeekFrom::Start(first))?;
        let count = b64.len().div_ceil(PIECE);
        for (i, piece) in b64.chunks(PIECE).enumerate() {
            if i + 1 < count && piece.ends_with(b"=") {
                return Err(not_base64()); // padding before the end
            }
            let raw = base64_simd::STANDARD
                .decode(piece, base64_simd::Out::from_slice(&mut buf))
                .map_err(|_| not_base64())?;
            if let Some(h) = hasher.as_mut() {
                h.update(&*raw);
            }
            f.write_all(raw)?;
        }
        Ok(())
    };
    let result = write();
    if result.is_err() {
        if let Err(e) = f.set_len(first) {
            tracing::error!(error = %e, "could not cut a refused part off the upload's data file");
        }
    }
    result
}

/// The SHA-256 of the first `len` bytes of an upload's data file.
pub fn hash_file(path: &std::path::Path, len: u64) -> EcrResult<crate::digest::Digest> {
    let mut f = fs::File::open(path)?.take(len);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::digest::Digest::from_sha256(h.finalize().into()))
}
