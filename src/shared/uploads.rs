//! Upload sessions in Redis: the store the proxy's upload sessions will hand over through when
//! the requests of one upload land on different replicas (issue 13; not wired into the upload
//! handlers yet). Per upload: a record (repository, ECR upload id, part size, bytes ECR has
//! acknowledged) and its tail (the bytes received after the last part, shorter than a part, as
//! a binary value), both expiring with the session; and a lock whose value is a fencing token
//! from one counter, so that two replicas never append to one upload at once: a write or an
//! unlock is carried out only for the holder of the current token (checked atomically in Lua).
//! A replica that dies mid-request loses its lock at the lease's end; what it saved (ECR's
//! acknowledged bytes and the tail that goes with them) is what the next holder resumes from.

use super::{Script, Shared, SharedError};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;
use std::time::Duration;

/// What Redis keeps of an upload besides its tail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub repository: String,
    pub ecr_upload_id: String,
    pub part_size: u64,
    /// Bytes ECR has acknowledged (whole parts).
    pub committed: u64,
}

/// A held lock: the upload and the fencing token that proves the hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub upload: String,
    pub token: u64,
}

fn record_key(id: &str) -> String {
    format!("upload:{id}")
}
fn tail_key(id: &str) -> String {
    format!("upload:{id}:tail")
}
fn lock_key(id: &str) -> String {
    format!("upload:{id}:lock")
}
const FENCE: &str = "upload-fence";

/// Take the lock if it is free: `KEYS[1]` lock, `KEYS[2]` fence counter, `ARGV[1]` lease ms.
/// The new token, or 0 when someone holds it.
static LOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
          local token = redis.call('INCR', KEYS[2])
          redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
          return token",
    )
});

/// Save record and tail if the lock holds `token`: `KEYS` lock, record, tail; `ARGV` token,
/// record, tail, ttl ms. 1 when saved, 0 when fenced out.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
          redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
          redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
          return 1",
    )
});

/// Extend (`ARGV[2]` = lease ms) or release (`ARGV[2]` = 0) the lock if it holds `ARGV[1]`.
static HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
          if ARGV[2] == '0' then redis.call('DEL', KEYS[1])
          else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
          return 1",
    )
});

fn ms(d: Duration) -> Vec<u8> {
    d.as_millis().max(1).to_string().into_bytes()
}

impl Shared {
    /// Record a new upload (no tail yet), expiring after `ttl` without activity.
    pub async fn create_upload(
        &self,
        id: &str,
        record: &UploadRecord,
        ttl: Duration,
    ) -> Result<(), SharedError> {
        let json = serde_json::to_vec(record).expect("a record serializes");
        self.set_ex(&record_key(id), &json, ttl).await?;
        self.set_ex(&tail_key(id), b"", ttl).await
    }

    /// The upload's record and tail, if it exists (and has not expired).
    pub async fn load_upload(
        &self,
        id: &str,
    ) -> Result<Option<(UploadRecord, Vec<u8>)>, SharedError> {
        let Some(raw) = self.get(&record_key(id)).await? else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice(&raw) else {
            return Ok(None);
        };
        let tail = self.get(&tail_key(id)).await?.unwrap_or_default();
        Ok(Some((record, tail)))
    }

    /// Take the upload's lock for `lease` (renew it while the request runs); `None` when another
    /// replica holds it.
    pub async fn lock_upload(
        &self,
        id: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, SharedError> {
        let token: u64 = self
            .eval(&LOCK, &[&lock_key(id), FENCE], &[&ms(lease)])
            .await?;
        Ok((token > 0).then(|| Lease {
            upload: id.to_string(),
            token,
        }))
    }

    /// Save the record and tail, if `lease` still holds the lock; false when fenced out (the
    /// lease ran out and another replica took the upload: this one must stop).
    pub async fn save_upload(
        &self,
        lease: &Lease,
        record: &UploadRecord,
        tail: &[u8],
        ttl: Duration,
    ) -> Result<bool, SharedError> {
        let json = serde_json::to_vec(record).expect("a record serializes");
        let id = &lease.upload;
        let saved: u64 = self
            .eval(
                &SAVE,
                &[&lock_key(id), &record_key(id), &tail_key(id)],
                &[lease.token.to_string().as_bytes(), &json, tail, &ms(ttl)],
            )
            .await?;
        Ok(saved == 1)
    }

    /// Extend the lease; false when it is no longer held.
    pub async fn renew_upload(&self, lease: &Lease, by: Duration) -> Result<bool, SharedError> {
        let held: u64 = self
            .eval(
                &HOLD,
                &[&lock_key(&lease.upload)],
                &[lease.token.to_string().as_bytes(), &ms(by)],
            )
            .await?;
        Ok(held == 1)
    }

    /// Release the lock, if still held by `lease`.
    pub async fn unlock_upload(&self, lease: &Lease) -> Result<(), SharedError> {
        let _: u64 = self
            .eval(
                &HOLD,
                &[&lock_key(&lease.upload)],
                &[lease.token.to_string().as_bytes(), b"0"],
            )
            .await?;
        Ok(())
    }

    /// Forget the upload (completed or cancelled).
    pub async fn delete_upload(&self, id: &str) -> Result<(), SharedError> {
        self.del(&record_key(id)).await?;
        self.del(&tail_key(id)).await?;
        self.del(&lock_key(id)).await?;
        Ok(())
    }
}
