//! Expiry of abandoned uploads: an upload no part has reached for longer than the configured
//! period is forgotten with its data, as ECR forgets unfinished uploads (UploadNotFound after).
//! Owns only the decision and the removal; when it runs is `emulator::sweeper`'s business.
//! Must not touch an upload a part is being written to (`busy`).

use crate::emulator::ops::Ctx;
use std::io;

/// Remove every idle upload whose last activity is more than `max_idle_secs` before `now`
/// (seconds since the epoch); the ids removed.
pub fn expire_idle(ctx: &Ctx, max_idle_secs: f64, now: f64) -> io::Result<Vec<String>> {
    let mut index = ctx.store.lock();
    let expired: Vec<String> = index
        .uploads
        .iter()
        .filter(|(_, u)| !u.busy && now - u.record.last_activity() > max_idle_secs)
        .map(|(id, _)| id.clone())
        .collect();
    for id in &expired {
        // Forget it first: a folder that cannot be removed now is loaded and expired at the
        // next start.
        index.uploads.remove(id);
        ctx.store.remove_upload(id)?;
    }
    Ok(expired)
}
