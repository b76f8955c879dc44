//! Stopping an accept loop gracefully: the `Stop` handle its owner keeps, and the drain itself
//! (the listening socket closed, connections told to finish, the period, the cut). It owns when
//! connections are cut at the end; how one connection finishes its request is `conn`'s.

use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Tells an accept loop to drain, or to stop at once. Clones share one loop.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    drain: CancellationToken,
    cut: CancellationToken,
}

impl Stop {
    /// Stop accepting (the listening socket is closed, so connecting is refused), close idle
    /// connections, let requests in progress finish for the loop's drain period, then cut.
    pub fn drain(&self) {
        self.drain.cancel();
    }

    /// Cut every connection now (during a drain: end it early).
    pub fn cut(&self) {
        self.drain.cancel();
        self.cut.cancel();
    }

    pub(super) async fn draining(&self) {
        self.drain.cancelled().await;
    }

    /// What each connection watches: told once to finish what it is doing and close.
    pub(super) fn for_connection(&self) -> CancellationToken {
        self.drain.clone()
    }
}

/// How a drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drained {
    /// Connections still open when the period ran out (or a cut came), closed mid-way.
    pub cut: usize,
}

/// The drain, once the listening socket is closed: wait for `connections` to end within
/// `period`, or until `stop` says cut; then cut those left. Each step is logged.
pub(super) async fn finish(
    connections: &mut JoinSet<()>,
    period: Duration,
    stop: &Stop,
) -> Drained {
    tracing::info!(
        open = connections.len(),
        "draining: no longer accepting connections (new ones are refused); idle ones are closed, \
         requests in progress have {}s to finish",
        period.as_secs()
    );
    let deadline = tokio::time::sleep(period);
    tokio::pin!(deadline);
    let why = loop {
        tokio::select! {
            joined = connections.join_next() => match joined {
                Some(_) => continue,
                None => {
                    tracing::info!("drained: every connection finished");
                    return Drained { cut: 0 };
                }
            },
            () = &mut deadline => break format!("the drain period ({}s) is over", period.as_secs()),
            () = stop.cut.cancelled() => break "told to stop at once".to_string(),
        }
    };
    let cut = connections.len();
    tracing::warn!(cut, "{why}: cutting the connections still open ({cut})");
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Drained { cut }
}
