//! Reading a request body into an upload's writer, frame by frame, with the limits that keep a
//! client from holding the upload hostage: no byte for `body_read_timeout` ends the request;
//! a pause longer than `PARK_AFTER` parks the tail so a stalled body holds no part memory; a
//! cancelled or expired upload stops at once. Each frame is read only when the writer has room:
//! that is the backpressure. Bytes read from a client are counted (`metrics::request`) as they
//! arrive; bytes the proxy fetched itself (`copy`, a server-side mount) are not. Owns no HTTP
//! answers: the handler turns `FeedError` into one.

use crate::metrics::request;
use crate::proxy::sessions::handover::Hold;
use crate::proxy::sessions::writer::WriteError;
use http_body_util::BodyExt;
use std::time::Duration;
use tokio::time::Instant;

/// A body that pauses this long gives its tail's memory back until bytes come again.
const PARK_AFTER: Duration = Duration::from_secs(2);
/// The same while someone waits for memory: a client that sends a byte now and then cannot keep
/// a part buffer from those who would fill it (a stream at any useful speed never pauses this
/// long between frames).
const PARK_AFTER_UNDER_PRESSURE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("reading the request body failed: {0}")]
    Body(String),
    #[error("the request body sent no byte for {} s", .0.as_secs())]
    Stalled(Duration),
    #[error("the upload was cancelled or expired while this request was sending it")]
    Cancelled,
}

/// Feed a client's `body` into `w` until it ends.
pub async fn feed<B>(w: &mut Hold, body: B, timeout: Duration) -> Result<(), FeedError>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    feed_from(w, body, timeout, true).await
}

/// Feed a body the proxy fetched itself (not received from the client) into `w`.
pub async fn copy<B>(w: &mut Hold, body: B, timeout: Duration) -> Result<(), FeedError>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    feed_from(w, body, timeout, false).await
}

async fn feed_from<B>(
    w: &mut Hold,
    mut body: B,
    timeout: Duration,
    from_client: bool,
) -> Result<(), FeedError>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let cancel = w.session().cancellation().clone();
    let budget = w.budget().clone();
    loop {
        let frame = {
            let next = body.frame();
            tokio::pin!(next);
            let since = Instant::now();
            let mut parked = false;
            loop {
                let park_after = if budget.is_contended() {
                    PARK_AFTER_UNDER_PRESSURE
                } else {
                    PARK_AFTER
                };
                let until = if parked {
                    since + timeout
                } else {
                    since + park_after.min(timeout)
                };
                // Biased: a frame that is ready is taken without polling (and so arming) the
                // timer or the other signals: this loop runs once per frame of every push.
                tokio::select! {
                    biased;
                    frame = &mut next => break frame,
                    () = cancel.cancelled() => return Err(FeedError::Cancelled),
                    () = budget.contended(), if !parked => continue,
                    () = tokio::time::sleep_until(until) => {
                        if since.elapsed() >= timeout {
                            return Err(FeedError::Stalled(timeout));
                        }
                        if !parked && Instant::now() >= since + park_after.min(timeout) {
                            parked = true;
                            if let Err(e) = w.park() {
                                tracing::warn!("cannot park a stalled upload's tail: {e}");
                            }
                        }
                    }
                }
            }
        };
        match frame {
            None => return Ok(()),
            Some(Err(e)) => return Err(FeedError::Body(e.to_string())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if from_client {
                        request::received_blob_bytes(data.len() as u64);
                    }
                    w.write(data).await?;
                    w.after_write();
                }
                w.session().touch();
            }
        }
    }
}

/// Read and drop a body the upload already has (a resent request), at most `expected` bytes.
pub async fn discard<B>(mut body: B, expected: u64, timeout: Duration) -> Result<(), FeedError>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut seen = 0u64;
    loop {
        let frame = tokio::time::timeout(timeout, body.frame())
            .await
            .map_err(|_| FeedError::Stalled(timeout))?;
        match frame {
            None => return Ok(()),
            Some(Err(e)) => return Err(FeedError::Body(e.to_string())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    request::received_blob_bytes(data.len() as u64);
                    seen += data.len() as u64;
                    if seen > expected {
                        return Err(FeedError::Body(format!(
                            "the resent request is longer than the {expected} bytes it sent before"
                        )));
                    }
                }
            }
        }
    }
}
