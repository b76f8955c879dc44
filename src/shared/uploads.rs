//! Upload sessions in Redis, so that the requests of one upload may land on different replicas.
//! Per upload (keys `upload:{ID}…`: the braces keep one upload's keys in one Redis Cluster slot):
//! - a record (hash): repository, ECR upload id, part size, bytes ECR has acknowledged
//!   (`committed`), bytes received, the `version` that last saved it, and what its writer saved
//!   with the tail (`hash_state`: opaque here, the SigV4 hash state of the tail's part body, so
//!   the next replica need not hash the tail again);
//! - its tail: the bytes received after the last part (at most a part), raw, in segments: each
//!   save writes its new bytes with a plain SET under a key named by its token and lists it
//!   (no save passes a big value through a script, and no stored value grows in place); a save
//!   that cannot append (anything shipped since, or too many segments) replaces the list;
//! - a lock whose value is a fencing token (`fence`, counted in the record), held by the one
//!   request working on the upload and renewed while it runs;
//! - `busy`, set when a request takes the lock and cleared when it saves: found without a lock,
//!   it says the replica that held the upload died mid-request, so what Redis holds may not match
//!   ECR any more. Such an upload is ended (the client starts it again), never resumed.
//!
//! All keys expire after the session's idle time, refreshed by each request. Every step is one
//! Lua script (atomic); a save or renewal is carried out only for the holder of the current token.
//! Tail bytes never pass through a script: segments are written with SET and read with MGET by
//! the lock's holder.

use super::{Shared, SharedError};
use std::time::Duration;

/// What Redis keeps of an upload besides its tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    pub repository: String,
    pub ecr_upload_id: String,
    pub part_size: u64,
    /// Bytes ECR has acknowledged (whole parts).
    pub committed: u64,
    /// Bytes received: `committed` plus the tail's length.
    pub received: u64,
    /// The fencing token of the request that saved this state last.
    pub version: u64,
    /// Where the request began whose CompleteLayerUpload failed in a way worth retrying (its
    /// resend, on any replica, must not add its body again).
    pub completing: Option<u64>,
    /// What the writer of the tail saved with it (the hash state of the part body it makes),
    /// opaque to the store; empty when none.
    pub hash_state: String,
}

/// A held lock: the upload and the fencing token that proves the hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub upload: String,
    pub token: u64,
}

/// What taking an upload's lock found.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    Locked(Lease, UploadRecord),
    /// Another request holds it.
    Busy,
    /// No such upload (never, expired, completed or cancelled).
    Unknown,
    /// Its last holder died mid-request: the upload is deleted (see the module comment).
    Abandoned,
}

/// What an upload looks like from outside (status requests).
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    Open(UploadRecord),
    Unknown,
    Abandoned,
}

/// Where an upload stands: what a save writes besides the tail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub committed: u64,
    pub received: u64,
    pub completing: Option<u64>,
}

/// How a save changes the stored tail.
#[derive(Debug)]
pub enum TailWrite<'a> {
    /// Nothing changed since the last save: only the lock and `busy` go.
    Unchanged,
    Replace(&'a [u8]),
    /// Add bytes to a stored tail that is `at` bytes long.
    Append {
        at: u64,
        bytes: &'a [u8],
    },
}

/// What a save did.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    Saved,
    /// The lock is no longer this lease's: nothing was written.
    Fenced,
    /// An append found a stored tail of another length: nothing was written (replace it).
    TailMismatch,
}

fn keys(id: &str) -> [String; 4] {
    [
        format!("upload:{{{id}}}"),
        format!("upload:{{{id}}}:segs"),
        format!("upload:{{{id}}}:lock"),
        format!("upload:{{{id}}}:busy"),
    ]
}

/// The tail segment a save under token `token` writes (`KEYS[1] .. ':seg:' .. token` in Lua).
fn segment_key(id: &str, token: u64) -> String {
    format!("upload:{{{id}}}:seg:{token}")
}

mod scripts;

pub use scripts::MAX_SEGMENTS;
use scripts::{BEGIN, CREATE, DELETE, END, RENEW, STATUS};

fn ms(d: Duration) -> Vec<u8> {
    d.as_millis().max(1).to_string().into_bytes()
}

/// A script's `{outcome, token, fields…}` answer.
fn parse(id: &str, answer: Vec<Option<String>>) -> Result<(String, u64, UploadRecord), String> {
    let mut it = answer.into_iter();
    let outcome = it.next().flatten().unwrap_or_default();
    let mut next = || it.next().flatten().unwrap_or_default();
    let token = next().parse().unwrap_or(0);
    let (repository, ecr_upload_id) = (next(), next());
    let numbers: Vec<Option<u64>> = (0..4).map(|_| next().parse().ok()).collect();
    let [Some(part_size), Some(committed), Some(received), Some(version)] = numbers[..] else {
        return Err(format!("the stored record of upload `{id}` is incomplete"));
    };
    let completing = next().parse().ok();
    let hash_state = next();
    let record = UploadRecord {
        repository,
        ecr_upload_id,
        part_size,
        committed,
        received,
        version,
        completing,
        hash_state,
    };
    Ok((outcome, token, record))
}

impl Shared {
    /// Record a new upload (no bytes yet), expiring after `ttl` without activity; with `lock`,
    /// the caller holds it (token 1) for that lease.
    pub async fn create_upload(
        &self,
        id: &str,
        record: &UploadRecord,
        ttl: Duration,
        lock: Option<Duration>,
    ) -> Result<Option<Lease>, SharedError> {
        let k = keys(id);
        let lease = lock.map_or_else(|| b"0".to_vec(), ms);
        let _: u64 = self
            .eval(
                &CREATE,
                &[&k[0], &k[1], &k[2], &k[3]],
                &[
                    record.repository.as_bytes(),
                    record.ecr_upload_id.as_bytes(),
                    record.part_size.to_string().as_bytes(),
                    &ms(ttl),
                    &lease,
                ],
            )
            .await?;
        Ok(lock.map(|_| Lease {
            upload: id.to_string(),
            token: 1,
        }))
    }

    /// Take the upload's lock for `lease` and read its record.
    pub async fn begin_upload(
        &self,
        id: &str,
        lease: Duration,
        ttl: Duration,
    ) -> Result<Begin, SharedError> {
        let k = keys(id);
        let answer: Vec<Option<String>> = self
            .eval(
                &BEGIN,
                &[&k[0], &k[1], &k[2], &k[3]],
                &[&ms(lease), &ms(ttl)],
            )
            .await?;
        Ok(match answer.first().cloned().flatten().as_deref() {
            Some("busy") => Begin::Busy,
            Some("abandoned") => Begin::Abandoned,
            Some("locked") => match parse(id, answer) {
                Ok((_, token, record)) => Begin::Locked(
                    Lease {
                        upload: id.to_string(),
                        token,
                    },
                    record,
                ),
                Err(why) => {
                    tracing::warn!("{why}: dropped it");
                    self.delete_upload(id).await?;
                    Begin::Unknown
                }
            },
            _ => Begin::Unknown,
        })
    }

    /// The upload as it was last saved, without taking its lock.
    pub async fn upload_status(&self, id: &str) -> Result<Status, SharedError> {
        let k = keys(id);
        let answer: Vec<Option<String>> = self.eval(&STATUS, &[&k[0], &k[2], &k[3]], &[]).await?;
        Ok(match answer.first().cloned().flatten().as_deref() {
            Some("abandoned") => Status::Abandoned,
            Some("open") => match parse(id, answer) {
                Ok((_, _, record)) => Status::Open(record),
                Err(_) => Status::Unknown,
            },
            _ => Status::Unknown,
        })
    }

    /// The stored tail (empty when there is none).
    pub async fn upload_tail(&self, id: &str) -> Result<Vec<u8>, SharedError> {
        Ok(self.upload_tail_segments(id).await?.concat())
    }

    /// The stored tail as its segments, in order (a missing one comes back empty). Read with
    /// LRANGE and MGET, not in a script, so Redis copies the bytes once; the caller holds the
    /// lock, so no save changes them in between.
    pub async fn upload_tail_segments(&self, id: &str) -> Result<Vec<Vec<u8>>, SharedError> {
        let list = self.key(&keys(id)[1]);
        let names: Vec<String> = self
            .run("lrange", |mut c| async move {
                redis::cmd("LRANGE")
                    .arg(&list)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let segments: Vec<String> = names
            .iter()
            .map(|n| self.key(&format!("upload:{{{id}}}:seg:{n}")))
            .collect();
        let values: Vec<Option<Vec<u8>>> = self
            .run("mget", |mut c| async move {
                redis::cmd("MGET").arg(&segments).query_async(&mut c).await
            })
            .await?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Save where the upload stands and release the lock, if `lease` still holds it.
    pub async fn end_upload(
        &self,
        lease: &Lease,
        at: Position,
        tail: TailWrite<'_>,
        ttl: Duration,
    ) -> Result<End, SharedError> {
        self.end_upload_after(lease, at, &[], tail, "", ttl).await
    }

    /// `end_upload`, with segments `presaved` (written with `put_segment` while the request
    /// ran, in order) before the new bytes of an append, and the `hash_state` that goes with the
    /// new tail (kept when the tail is unchanged). A save that does not append lists none of the
    /// presaved segments: the caller drops them.
    pub async fn end_upload_after(
        &self,
        lease: &Lease,
        at: Position,
        presaved: &[String],
        tail: TailWrite<'_>,
        hash_state: &str,
        ttl: Duration,
    ) -> Result<End, SharedError> {
        let k = keys(&lease.upload);
        let (mode, bytes, stored): (&[u8], &[u8], u64) = match tail {
            TailWrite::Unchanged => (b"unchanged", b"", 0),
            TailWrite::Replace(b) => (b"replace", b, 0),
            TailWrite::Append { at, bytes } => (b"append", bytes, at),
        };
        // The bytes go in a key of their own, named by the token, with a plain SET (no script
        // copies them, and no stored tail grows in place); the script then adds it to the tail.
        let segment = match bytes.is_empty() {
            true => String::new(),
            false => {
                let key = segment_key(&lease.upload, lease.token);
                self.set_ex(&key, bytes, ttl).await?;
                lease.token.to_string()
            }
        };
        let completing = at.completing.map(|c| c.to_string()).unwrap_or_default();
        let answer: String = self
            .eval(
                &END,
                &[&k[0], &k[1], &k[2], &k[3]],
                &[
                    lease.token.to_string().as_bytes(),
                    mode,
                    at.committed.to_string().as_bytes(),
                    at.received.to_string().as_bytes(),
                    segment.as_bytes(),
                    stored.to_string().as_bytes(),
                    &ms(ttl),
                    completing.as_bytes(),
                    presaved.join(" ").as_bytes(),
                    hash_state.as_bytes(),
                ],
            )
            .await?;
        let end = match answer.as_str() {
            "saved" => End::Saved,
            "mismatch" => End::TailMismatch,
            _ => End::Fenced,
        };
        if end == End::Fenced && !segment.is_empty() {
            self.del(&segment_key(&lease.upload, lease.token)).await?;
        }
        Ok(end)
    }

    /// Write one segment of tail bytes, `name` unique to its writer (listed by a later save).
    pub async fn put_segment(
        &self,
        id: &str,
        name: &str,
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<(), SharedError> {
        self.set_ex(&format!("upload:{{{id}}}:seg:{name}"), bytes, ttl)
            .await
    }

    /// Delete segments that were written but will not be listed.
    pub async fn drop_segments(&self, id: &str, names: &[String]) -> Result<(), SharedError> {
        for name in names {
            self.del(&format!("upload:{{{id}}}:seg:{name}")).await?;
        }
        Ok(())
    }

    /// Extend the lease (and the upload's expiry); false when it is no longer held.
    pub async fn renew_upload(
        &self,
        lease: &Lease,
        by: Duration,
        ttl: Duration,
    ) -> Result<bool, SharedError> {
        let k = keys(&lease.upload);
        let held: u64 = self
            .eval(
                &RENEW,
                &[&k[0], &k[1], &k[2], &k[3]],
                &[lease.token.to_string().as_bytes(), &ms(by), &ms(ttl)],
            )
            .await?;
        Ok(held == 1)
    }

    /// Forget the upload if `lease` still holds it; whether it did.
    pub async fn delete_held_upload(&self, lease: &Lease) -> Result<bool, SharedError> {
        let k = keys(&lease.upload);
        let deleted: u64 = self
            .eval(
                &DELETE,
                &[&k[0], &k[1], &k[2], &k[3]],
                &[lease.token.to_string().as_bytes()],
            )
            .await?;
        Ok(deleted > 0)
    }

    /// Forget the upload (completed, cancelled or failed for good); a holder elsewhere is then
    /// fenced out.
    pub async fn delete_upload(&self, id: &str) -> Result<(), SharedError> {
        let k = keys(id);
        let _: u64 = self
            .eval(&DELETE, &[&k[0], &k[1], &k[2], &k[3]], &[])
            .await?;
        Ok(())
    }
}
