//! Upload sessions in Redis, so that the requests of one upload may land on different replicas.
//! Per upload (keys `upload:{ID}…`: the braces keep one upload's keys in one Redis Cluster slot):
//! - a record (hash): repository, ECR upload id, part size, bytes ECR has acknowledged
//!   (`committed`), bytes received, and the `version` that last saved it;
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

use super::{Script, Shared, SharedError};
use std::sync::LazyLock;
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

/// A tail of more segments than this is written whole at the next save (a client sending tiny
/// chunks must not make loading a tail cost thousands of keys).
pub const MAX_SEGMENTS: u64 = 32;

/// Lua: call `f` with the key of each tail segment of the upload (`KEYS[1]` record, `KEYS[2]`
/// segment list; segments share the record's hash tag).
const EACH_SEGMENT: &str = r"local function each_segment(f)
            for _, s in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do f(KEYS[1] .. ':seg:' .. s) end
          end
          local function expire_all(ttl)
            redis.call('PEXPIRE', KEYS[1], ttl)
            redis.call('PEXPIRE', KEYS[2], ttl)
            each_segment(function(k) redis.call('PEXPIRE', k, ttl) end)
          end
          ";

/// The record's fields, in the order the scripts return them.
const FIELDS: &str =
    "'repository', 'ecr_upload_id', 'part_size', 'committed', 'received', 'version', 'completing'";

/// `KEYS` record, segments, lock, busy; `ARGV` repository, ECR upload id, part size, ttl ms,
/// lease ms (0: not locked). Version and token 1.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          each_segment(function(k) redis.call('DEL', k) end)
          redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
          redis.call('HSET', KEYS[1], 'repository', ARGV[1], 'ecr_upload_id', ARGV[2],
            'part_size', ARGV[3], 'committed', 0, 'received', 0, 'version', 1, 'fence', 1,
            'completing', '')
          redis.call('PEXPIRE', KEYS[1], ARGV[4])
          if ARGV[5] ~= '0' then
            redis.call('SET', KEYS[3], 1, 'PX', ARGV[5])
            redis.call('SET', KEYS[4], 1, 'PX', ARGV[4])
          end
          return 1"
    ))
});

/// `KEYS` record, segments, lock, busy; `ARGV` lease ms, ttl ms.
static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          if redis.call('EXISTS', KEYS[1]) == 0 then return {{'unknown'}} end
          if redis.call('EXISTS', KEYS[3]) == 1 then return {{'busy'}} end
          if redis.call('EXISTS', KEYS[4]) == 1 then
            each_segment(function(k) redis.call('DEL', k) end)
            redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
            return {{'abandoned'}}
          end
          local token = redis.call('HINCRBY', KEYS[1], 'fence', 1)
          redis.call('SET', KEYS[3], token, 'PX', ARGV[1])
          redis.call('SET', KEYS[4], token, 'PX', ARGV[2])
          expire_all(ARGV[2])
          local f = redis.call('HMGET', KEYS[1], {FIELDS})
          return {{'locked', tostring(token), f[1], f[2], f[3], f[4], f[5], f[6], f[7]}}"
    ))
});

/// `KEYS` record, lock, busy.
static STATUS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"if redis.call('EXISTS', KEYS[1]) == 0 then return {{'unknown'}} end
          if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[3]) == 1 then
            return {{'abandoned'}}
          end
          local f = redis.call('HMGET', KEYS[1], {FIELDS})
          return {{'open', '0', f[1], f[2], f[3], f[4], f[5], f[6], f[7]}}"
    ))
});

/// `KEYS` record, segments, lock, busy; `ARGV` token, mode (`unchanged`, `replace`, `append`),
/// committed, received, the new segment's name ('' for none: written before, under the token),
/// stored tail length (append), ttl ms, completing ('' for none), the names of segments written
/// during the request that come before the new one (append; space-separated).
static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 'fenced' end
          if ARGV[2] == 'append' then
            local f = redis.call('HMGET', KEYS[1], 'committed', 'received')
            local adding = (ARGV[5] ~= '' and 1 or 0)
            for _ in string.gmatch(ARGV[9], '%S+') do adding = adding + 1 end
            if tonumber(f[2]) - tonumber(f[1]) ~= tonumber(ARGV[6])
              or redis.call('LLEN', KEYS[2]) + adding > {MAX_SEGMENTS} then
              return 'mismatch'
            end
          end
          if ARGV[2] == 'replace' then
            each_segment(function(k) if k ~= KEYS[1] .. ':seg:' .. ARGV[5] then redis.call('DEL', k) end end)
            redis.call('DEL', KEYS[2])
          end
          if ARGV[2] ~= 'unchanged' then
            for name in string.gmatch(ARGV[9], '%S+') do redis.call('RPUSH', KEYS[2], name) end
            if ARGV[5] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[5]) end
            redis.call('HSET', KEYS[1], 'committed', ARGV[3], 'received', ARGV[4],
              'version', ARGV[1], 'completing', ARGV[8])
          end
          expire_all(ARGV[7])
          redis.call('DEL', KEYS[3], KEYS[4])
          return 'saved'"
    ))
});

/// `KEYS` record, segments, lock, busy; `ARGV` token, lease ms, ttl ms.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
          redis.call('PEXPIRE', KEYS[3], ARGV[2])
          redis.call('PEXPIRE', KEYS[4], ARGV[3])
          expire_all(ARGV[3])
          return 1"
    ))
});

/// `KEYS` record, segments, lock, busy.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          each_segment(function(k) redis.call('DEL', k) end)
          return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])"
    ))
});

/// `KEYS` record, segments: the tail's segments in order.
static TAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EACH_SEGMENT}
          local out = {{}}
          each_segment(function(k) out[#out + 1] = redis.call('GET', k) or '' end)
          return out"
    ))
});

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
    let record = UploadRecord {
        repository,
        ecr_upload_id,
        part_size,
        committed,
        received,
        version,
        completing,
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
        let k = keys(id);
        let segments: Vec<Vec<u8>> = self.eval(&TAIL, &[&k[0], &k[1]], &[]).await?;
        Ok(match segments.len() {
            1 => segments.into_iter().next().unwrap_or_default(),
            _ => segments.concat(),
        })
    }

    /// Save where the upload stands and release the lock, if `lease` still holds it.
    pub async fn end_upload(
        &self,
        lease: &Lease,
        at: Position,
        tail: TailWrite<'_>,
        ttl: Duration,
    ) -> Result<End, SharedError> {
        self.end_upload_after(lease, at, &[], tail, ttl).await
    }

    /// `end_upload`, with segments `presaved` (written with `put_segment` while the request
    /// ran, in order) before the new bytes of an append. A save that does not append lists
    /// none of them: the caller drops them.
    pub async fn end_upload_after(
        &self,
        lease: &Lease,
        at: Position,
        presaved: &[String],
        tail: TailWrite<'_>,
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
