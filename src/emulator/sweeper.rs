//! The emulator's housekeeping task: expires abandoned uploads with their data (see
//! `ops::expire_idle`) once at start, before anything is served, and then periodically.
//! Owns the timing only; must not apply ECR rules or touch the network.

use super::Shared;
use std::sync::Arc;
use std::time::Duration;

/// How long an upload may go without a part before it is expired.
///
/// ECR does not document when it drops an unfinished upload. The period must not be shorter
/// than the time the proxy keeps an idle upload session (1 hour by default, configurable),
/// or the emulator would answer UploadNotFound to a session the proxy still honours, a
/// failure ECR in practice does not produce. A day is well beyond any session and still keeps
/// a long-running `serve --local` data directory from filling with abandoned parts.
pub const DEFAULT_UPLOAD_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// How often to look: a quarter of the expiry (so an upload goes at most 25% late), between
/// 50 ms and one minute.
fn period(expiry: Duration) -> Duration {
    (expiry / 4).clamp(Duration::from_millis(50), Duration::from_secs(60))
}

/// Expire what is due now; logs what went.
pub fn sweep(shared: &Shared, expiry: Duration) {
    let now = super::ops::now();
    match super::ops::expire_idle(&shared.ctx, expiry.as_secs_f64(), now) {
        Ok(ids) if ids.is_empty() => {}
        Ok(ids) => tracing::info!(count = ids.len(), ?ids, "expired idle uploads"),
        Err(e) => tracing::warn!("cannot remove an expired upload's data: {e}"),
    }
}

/// Sweep every `period(expiry)` until aborted.
pub async fn run(shared: Arc<Shared>, expiry: Duration) {
    let mut tick = tokio::time::interval(period(expiry));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; `start` has just swept
    loop {
        tick.tick().await;
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || sweep(&shared, expiry)).await;
    }
}
