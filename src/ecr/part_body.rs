//! The UploadLayerPart request body, written by us as the part's bytes arrive. Each piece of the
//! client's body is base64-encoded straight into the JSON buffer and the bytes just written are
//! fed to SHA-256 while they are still in cache: that hash is the payload hash SigV4 signs, so
//! the SDK never reads the 13.4 MiB body again (hashing it cold ran at half the speed). The raw
//! part is never kept. The blob comes first in the JSON so the members known only at the end
//! (`partLastByte`) go in a suffix. An interceptor puts the finished body and its hash in the
//! request before signing, so every retry sends and signs the same bytes. Owns no budget: the
//! caller lends the buffer and gets it back after the call, to use again.

use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_ecr::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_ecr::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_ecr::error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::{Bytes, BytesMut};

use crate::parts::{BODY_PREFIX as PREFIX, BODY_SUFFIX_ROOM as SUFFIX_ROOM};

mod sha;

pub use sha::{Midstate, Sha256Stream};
/// Raw bytes encoded (and hashed) per step: 48 KiB in, 64 KiB out, both stay in L2.
const STEP: usize = 48 * 1024;

/// One part's body while its bytes arrive.
pub struct PartBody {
    /// Initialised to its full length; `pos` is how much of it is the body so far.
    buf: BytesMut,
    pos: usize,
    carry: [u8; 2],
    carry_len: usize,
    raw_len: u64,
    hasher: Sha256Stream,
}

/// A part body whose buffer was taken away (its bytes saved elsewhere, see `PartBody::park`):
/// what it takes to go on once `len()` saved bytes are back at the start of a buffer.
#[derive(Clone)]
pub struct ParkedBody {
    pos: usize,
    carry: [u8; 2],
    carry_len: usize,
    raw_len: u64,
    hasher: Sha256Stream,
}

/// A finished body: what is sent, and the SHA-256 SigV4 signs.
pub struct EncodedPart {
    pub(super) body: Bytes,
    pub(super) sha256_hex: String,
    pub(super) first: u64,
    pub(super) last: u64,
}

impl PartBody {
    /// Bytes a buffer needs to hold the body of a `part_size` part.
    pub fn capacity_for(part_size: u64) -> usize {
        crate::parts::body_capacity(part_size)
    }

    /// Start a body in `buf` (a fresh or reused buffer; its contents are overwritten).
    pub fn new(mut buf: BytesMut) -> PartBody {
        if buf.len() < buf.capacity() {
            buf.resize(buf.capacity(), 0);
        }
        if buf.len() < PREFIX.len() + SUFFIX_ROOM {
            buf.resize(PREFIX.len() + SUFFIX_ROOM, 0);
        }
        buf[..PREFIX.len()].copy_from_slice(PREFIX);
        let mut hasher = Sha256Stream::new();
        hasher.update(PREFIX);
        PartBody {
            buf,
            pos: PREFIX.len(),
            carry: [0; 2],
            carry_len: 0,
            raw_len: 0,
            hasher,
        }
    }

    /// Raw (client) bytes taken so far.
    pub fn raw_len(&self) -> u64 {
        self.raw_len
    }

    /// The body so far: what `park` asks the caller to save.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.pos]
    }

    /// Take the buffer away: the body so far is its first `ParkedBody::len()` bytes, which the
    /// caller saves; `ParkedBody::restore` goes on from a buffer holding them again.
    pub fn park(self) -> (BytesMut, ParkedBody) {
        let parked = ParkedBody {
            pos: self.pos,
            carry: self.carry,
            carry_len: self.carry_len,
            raw_len: self.raw_len,
            hasher: self.hasher,
        };
        (self.buf, parked)
    }

    /// The body of the first `keep` raw bytes of a part that was finished (and perhaps sent),
    /// rebuilt in its own buffer: for going back to an earlier point of an upload after the part
    /// failed. The SigV4 hash is recomputed over what is kept.
    pub fn rewind(mut buf: BytesMut, keep: u64) -> PartBody {
        let groups = (keep / 3) as usize;
        let pos = PREFIX.len() + groups * 4;
        let carry_len = (keep % 3) as usize;
        let mut carry = [0u8; 2];
        if carry_len > 0 {
            let group = base64_simd::STANDARD
                .decode_to_vec(&buf[pos..pos + 4])
                .expect("a body this module wrote is valid base64");
            carry[..carry_len].copy_from_slice(&group[..carry_len]);
        }
        let mut hasher = Sha256Stream::new();
        hasher.update(&buf[..pos]);
        if buf.len() < buf.capacity() {
            buf.resize(buf.capacity(), 0);
        }
        PartBody {
            buf,
            pos,
            carry,
            carry_len,
            raw_len: keep,
            hasher,
        }
    }

    /// The raw bytes taken so far from offset `from` on (decoded from the body: the raw part is
    /// not kept), for saving an unfinished part elsewhere (another replica goes on from them).
    pub fn raw_from(&self, from: u64) -> Vec<u8> {
        let carry = &self.carry[..self.carry_len];
        decode_from(&self.buf[..self.pos], carry, self.raw_len, from)
    }

    /// The SigV4 hash state of the body so far, for saving with the tail's raw bytes: a body
    /// rebuilt from them (`resume`) goes on from it instead of hashing them again.
    pub fn midstate(&self) -> Midstate {
        self.hasher.midstate()
    }

    /// A body rebuilt in `buf` from raw bytes saved elsewhere (`segments`, in order) and, when
    /// known, the hash state saved with them: the bytes are only encoded when `mid` is the
    /// state of a body of exactly their length (else they are hashed as they are encoded, while
    /// in cache). Whether `mid` was used.
    pub fn resume<S: AsRef<[u8]>>(
        buf: BytesMut,
        segments: &[S],
        mid: Option<&Midstate>,
    ) -> (PartBody, bool) {
        let raw: u64 = segments.iter().map(|s| s.as_ref().len() as u64).sum();
        let encoded = (PREFIX.len() as u64) + raw / 3 * 4;
        let mid = mid.filter(|m| m.len == encoded);
        let mut body = PartBody::new(buf);
        for s in segments {
            body.take(s.as_ref(), mid.is_none());
        }
        debug_assert_eq!(body.pos as u64, encoded);
        if let Some(m) = mid {
            body.hasher = Sha256Stream::resume(m, &body.buf[..body.pos]);
        }
        (body, mid.is_some())
    }

    /// Take the next raw bytes of the part.
    pub fn push(&mut self, data: &[u8]) {
        self.take(data, true);
    }

    /// Encode the next raw bytes (and hash them, with `hash`).
    fn take(&mut self, mut data: &[u8], hash: bool) {
        self.raw_len += data.len() as u64;
        if self.carry_len > 0 {
            let mut group = [0u8; 3];
            group[..self.carry_len].copy_from_slice(&self.carry[..self.carry_len]);
            let take = (3 - self.carry_len).min(data.len());
            group[self.carry_len..self.carry_len + take].copy_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry_len + take < 3 {
                self.carry_len += take;
                self.carry[..self.carry_len].copy_from_slice(&group[..self.carry_len]);
                return;
            }
            self.carry_len = 0;
            self.encode(&group, hash);
        }
        let whole = data.len() / 3 * 3;
        for piece in data[..whole].chunks(STEP) {
            self.encode(piece, hash);
        }
        let rest = &data[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
    }

    /// Encode and (with `hash`) hash `raw` (whole 3-byte groups, or the padded end).
    fn encode(&mut self, raw: &[u8], hash: bool) {
        let b64 = base64_simd::STANDARD;
        let n = b64.encoded_length(raw.len());
        self.room(n);
        let out = &mut self.buf[self.pos..self.pos + n];
        let written = b64.encode(raw, base64_simd::Out::from_slice(out)).len();
        debug_assert_eq!(written, n);
        if hash {
            self.hasher.update(&self.buf[self.pos..self.pos + n]);
        }
        self.pos += n;
    }

    fn room(&mut self, n: usize) {
        if self.pos + n > self.buf.len() {
            self.buf.resize(self.pos + n, 0);
        }
    }

    /// Close the body for a part whose first byte is at `first` in the layer.
    pub fn finish(
        mut self,
        registry_id: Option<&str>,
        repo: &str,
        upload_id: &str,
        first: u64,
    ) -> EncodedPart {
        if self.carry_len > 0 {
            let carry = self.carry;
            self.encode(&carry[..self.carry_len], true);
        }
        let last = first + self.raw_len.max(1) - 1;
        let s = |v: &str| serde_json::Value::from(v).to_string();
        let mut suffix = format!("\",\"partFirstByte\":{first},\"partLastByte\":{last},");
        if let Some(id) = registry_id {
            suffix += &format!("\"registryId\":{},", s(id));
        }
        suffix += &format!(
            "\"repositoryName\":{},\"uploadId\":{}}}",
            s(repo),
            s(upload_id)
        );
        self.room(suffix.len());
        self.buf[self.pos..self.pos + suffix.len()].copy_from_slice(suffix.as_bytes());
        self.pos += suffix.len();
        self.hasher.update(suffix.as_bytes());
        let sha256_hex = hex::encode(self.hasher.finalize());
        self.buf.truncate(self.pos);
        EncodedPart {
            body: self.buf.freeze(),
            sha256_hex,
            first,
            last,
        }
    }

    /// The body of a part held whole in memory (small parts: the holder's config blob).
    pub fn of(registry_id: Option<&str>, repo: &str, upload_id: &str, data: &[u8]) -> EncodedPart {
        let mut body = PartBody::new(BytesMut::zeroed(PartBody::capacity_for(data.len() as u64)));
        body.push(data);
        body.finish(registry_id, repo, upload_id, 0)
    }
}

impl ParkedBody {
    /// Bytes of the body so far (what the caller saves).
    pub fn len(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.raw_len == 0
    }

    /// Raw (client) bytes in the body so far.
    pub fn raw_len(&self) -> u64 {
        self.raw_len
    }

    /// The SigV4 hash state of the body so far (see `PartBody::midstate`).
    pub fn midstate(&self) -> Midstate {
        self.hasher.midstate()
    }

    /// The raw bytes from offset `from` on, given the saved body (its first `len()` bytes).
    pub fn raw_from(&self, saved: &[u8], from: u64) -> Vec<u8> {
        let carry = &self.carry[..self.carry_len];
        decode_from(&saved[..self.pos], carry, self.raw_len, from)
    }

    /// Go on in `buf`, whose first `len()` bytes are the saved body.
    pub fn restore(self, mut buf: BytesMut) -> PartBody {
        if buf.len() < buf.capacity() {
            buf.resize(buf.capacity(), 0);
        }
        debug_assert!(buf.len() >= self.pos);
        PartBody {
            buf,
            pos: self.pos,
            carry: self.carry,
            carry_len: self.carry_len,
            raw_len: self.raw_len,
            hasher: self.hasher,
        }
    }
}

impl EncodedPart {
    /// The buffer back, to use for another part, when nothing else holds it any more (no copy:
    /// its length stays that of the body, and `PartBody::new` only re-initialises the rest).
    pub fn reclaim(body: Bytes) -> Option<BytesMut> {
        body.try_into_mut().ok()
    }
}

/// The raw bytes from `from` on of an unfinished body: `written` (the prefix, then whole groups:
/// 3 raw bytes as 4 characters) and the `carry` not yet encoded, `raw_len` raw bytes in all.
/// Decoded straight into the result.
fn decode_from(written: &[u8], carry: &[u8], raw_len: u64, from: u64) -> Vec<u8> {
    let b64 = base64_simd::STANDARD;
    let from = from.min(raw_len);
    let mut out = vec![0u8; (raw_len - from) as usize];
    let encoded = raw_len - carry.len() as u64;
    let mut at = 0;
    if from < encoded {
        let mut group = PREFIX.len() + (from / 3) as usize * 4;
        let skip = (from % 3) as usize;
        if skip > 0 {
            let mut first = [0u8; 3];
            b64.decode(
                &written[group..group + 4],
                base64_simd::Out::from_slice(&mut first),
            )
            .expect("a body this module wrote is valid base64");
            at = 3 - skip;
            out[..at].copy_from_slice(&first[skip..]);
            group += 4;
        }
        let rest = (encoded - from) as usize - at;
        b64.decode(
            &written[group..],
            base64_simd::Out::from_slice(&mut out[at..at + rest]),
        )
        .expect("a body this module wrote is valid base64");
        at += rest;
    }
    let skip = (from.saturating_sub(encoded) as usize).min(carry.len());
    out[at..].copy_from_slice(&carry[skip..]);
    out
}

/// Puts a prepared body into the request, with its payload hash, before signing.
#[derive(Debug)]
pub struct ReplaceBody {
    pub body: Bytes,
    pub sha256_hex: String,
}

impl Intercept for ReplaceBody {
    fn name(&self) -> &'static str {
        "ReplaceBody"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        *request.body_mut() = SdkBody::from(self.body.clone());
        request
            .headers_mut()
            .insert("content-length", self.body.len().to_string());
        cfg.interceptor_state()
            .store_put(PayloadSigningOverride::Precomputed(self.sha256_hex.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
