//! SHA-256 of a part body as it is written, whose state can be taken out (`Midstate`) and put
//! back in another process: a replica taking over an upload goes on hashing where the last one
//! stopped instead of hashing the whole tail again. The same compression function and block
//! buffering as `sha2::Sha256` (SHA-NI where the CPU has it), only with the state reachable.
//! Owns no I/O and knows nothing of uploads.

use sha2::digest::block_buffer::{BlockBuffer, Eager};
use sha2::digest::consts::U64;

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// An incremental SHA-256.
#[derive(Clone)]
pub struct Sha256Stream {
    state: [u32; 8],
    /// Whole 64-byte blocks compressed into `state`.
    blocks: u64,
    /// The bytes after them (fewer than 64).
    pending: BlockBuffer<U64, Eager>,
}

/// The state after the whole blocks of the first `len` bytes hashed: with the last `len % 64` of
/// those bytes, all it takes to go on. Written as text (`<len>.<64 hex digits>`) for a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Midstate {
    pub len: u64,
    state: [u32; 8],
}

impl Sha256Stream {
    pub fn new() -> Sha256Stream {
        Sha256Stream {
            state: H0,
            blocks: 0,
            pending: BlockBuffer::default(),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        let (state, blocks) = (&mut self.state, &mut self.blocks);
        self.pending.digest_blocks(data, |b| {
            *blocks += b.len() as u64;
            sha2::compress256(state, b);
        });
    }

    /// Bytes hashed so far.
    fn hashed(&self) -> u64 {
        self.blocks * 64 + self.pending.get_pos() as u64
    }

    pub fn finalize(mut self) -> [u8; 32] {
        let bits = self.hashed() * 8;
        let state = &mut self.state;
        self.pending
            .len64_padding_be(bits, |b| sha2::compress256(state, std::slice::from_ref(b)));
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    pub fn midstate(&self) -> Midstate {
        Midstate {
            len: self.hashed(),
            state: self.state,
        }
    }

    /// Go on from `mid`, given the bytes it was taken over (`hashed`, at least `mid.len` long:
    /// only the last `mid.len % 64` of the first `mid.len` are read).
    pub fn resume(mid: &Midstate, hashed: &[u8]) -> Sha256Stream {
        let whole = mid.len - mid.len % 64;
        Sha256Stream {
            state: mid.state,
            blocks: whole / 64,
            pending: BlockBuffer::new(&hashed[whole as usize..mid.len as usize]),
        }
    }
}

impl Midstate {
    pub fn to_text(&self) -> String {
        let mut s = format!("{}.", self.len);
        for w in self.state {
            s += &format!("{w:08x}");
        }
        s
    }

    /// `to_text`'s output back (`None` for anything else).
    pub fn parse(text: &str) -> Option<Midstate> {
        let (len, hex) = text.split_once('.')?;
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut state = [0u32; 8];
        for (i, w) in state.iter_mut().enumerate() {
            *w = u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok()?;
        }
        Some(Midstate {
            len: len.parse().ok()?,
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn matches_sha2_for_any_split() {
        for n in [0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 4096 + 17] {
            let d = data(n);
            let want: [u8; 32] = Sha256::digest(&d).into();
            for split in [0, 1, n / 3, n / 2, n.saturating_sub(1), n].map(|s| s.min(n)) {
                let mut h = Sha256Stream::new();
                h.update(&d[..split]);
                h.update(&d[split..]);
                assert_eq!(h.hashed(), n as u64);
                assert_eq!(h.finalize(), want, "n {n} split {split}");
            }
        }
    }

    #[test]
    fn resumes_from_a_midstate_through_its_text() {
        let d = data(10_000);
        let want: [u8; 32] = Sha256::digest(&d).into();
        for cut in [0, 1, 63, 64, 65, 5000, 9999] {
            let mut h = Sha256Stream::new();
            h.update(&d[..cut]);
            let text = h.midstate().to_text();
            let mid = Midstate::parse(&text).expect("parses its own text");
            assert_eq!(mid, h.midstate());
            let mut again = Sha256Stream::resume(&mid, &d);
            again.update(&d[cut..]);
            assert_eq!(again.finalize(), want, "cut {cut}");
        }
    }

    #[test]
    fn refuses_malformed_text() {
        for bad in ["", "12", "x.00", "5.zz", &format!("5.{}", "0".repeat(63))] {
            assert_eq!(Midstate::parse(bad), None, "{bad:?}");
        }
    }
}
