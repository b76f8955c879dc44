//! One connection's life: its timers and its socket. It owns when a connection is cut for
//! being slow or idle, and the lingering close; it must not look at requests beyond their
//! HTTP version, nor answer them. On a TLS connection it is given the stream once the handshake
//! is done (`listener::handshake`), and the header timer still counts from accept.
//!
//! Why not hyper's own timers: hyper's HTTP/1 `header_read_timeout` also starts the moment a
//! kept-alive connection goes idle (hyper ≥ 1.4), so it would cut idle connections after the
//! header timeout, not the keep-alive one; it does not run while `auto` sniffs the protocol (a
//! client that connects and sends nothing, or a few bytes of the HTTP/2 preface, is never cut);
//! and hyper has no idle timeout for HTTP/2. So one watch per connection applies both:
//! - a connection that has not yet sent a whole request head gets `header_read` from accept;
//! - a kept-alive connection with nothing in flight is closed gracefully (HTTP/2: GOAWAY) after
//!   `keep_alive_idle`, unless the next request has begun (its first byte has arrived), which
//!   then has `header_read` from that byte to arrive whole (HTTP/1; HTTP/2 reads are frames).
//!
//! A request counts as in flight from the service call until its response body is dropped
//! (fully sent or abandoned); slow request bodies are the upload code's business.
//!
//! On a drain the connection finishes what it is doing and closes: idle, it is closed at once
//! (HTTP/2: GOAWAY); with a request in flight, that request is its last (HTTP/1 answers with
//! `Connection: close`, HTTP/2 sends GOAWAY and lets open streams end). A request head that has
//! begun to arrive counts as a request: the connection waits for it (within the header timer)
//! and answers it last, which hyper alone would not do on a kept-alive connection (it closes
//! one whose next head is half read as idle).

mod socket;

pub(super) use socket::LINGER;

use crate::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, Version};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use socket::Watched;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
pub(super) struct Timers {
    pub header_read: Duration,
    pub keep_alive_idle: Duration,
}

/// Serve one connection (`stream`: the TCP stream, or the TLS stream over it), accepted at
/// `accepted`, until it ends, a timer cuts it, or `drain` tells it to finish.
pub(super) async fn serve<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    stream: I,
    peer: std::net::SocketAddr,
    service: S,
    timers: Timers,
    drain: CancellationToken,
    accepted: Instant,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity::new(accepted));
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let tracked = Tracked {
        inner: service,
        activity: activity.clone(),
        drain: drain.clone(),
    };
    let conn = builder.serve_connection(io, tracked);
    tokio::pin!(conn);
    let mut shutdown_at: Option<Instant> = None;
    let mut draining = false;
    loop {
        if draining && shutdown_at.is_none() && !activity.head_arriving() {
            tracing::debug!(%peer, "draining: the connection closes after its request in flight, if any");
            conn.as_mut().graceful_shutdown();
            shutdown_at = Some(Instant::now());
        }
        let due = match (activity.due(timers), shutdown_at) {
            // Told to go away and still open with nothing in flight: give it one header timeout.
            (Some((_, Due::Idle)), Some(at)) => Some((at + timers.header_read, Due::HeadTimeout)),
            (due, _) => due,
        };
        if let Some((at, what)) = due {
            if at <= Instant::now() {
                match what {
                    Due::HeadTimeout => {
                        tracing::debug!(%peer, "closing a connection: no whole request head in time");
                        return;
                    }
                    Due::Idle => {
                        tracing::debug!(%peer, "closing an idle kept-alive connection");
                        conn.as_mut().graceful_shutdown();
                        shutdown_at = Some(Instant::now());
                        continue;
                    }
                }
            }
        }
        let wake = due.map_or_else(|| Instant::now() + Duration::from_secs(86_400), |d| d.0);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            _ = activity.changed.notified() => {}
            _ = tokio::time::sleep_until(wake), if due.is_some() => {}
            () = drain.cancelled(), if !draining => draining = true,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Due {
    HeadTimeout,
    Idle,
}

/// What the watch needs to know about a connection, shared by its socket and its service.
struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    in_flight: usize,
    /// When the connection was accepted, or when it last had nothing in flight.
    since: Instant,
    /// Whether a request has come on this connection.
    served: bool,
    /// When the first byte after accept or after going idle arrived (HTTP/1; only timed on a
    /// kept-alive connection, as a new one is timed from accept).
    head_started: Option<Instant>,
    http2: bool,
}

impl Activity {
    fn new(accepted: Instant) -> Activity {
        Activity {
            state: Mutex::new(State {
                in_flight: 0,
                since: accepted,
                served: false,
                head_started: None,
                http2: false,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn due(&self, t: Timers) -> Option<(Instant, Due)> {
        let s = self.state();
        if s.in_flight > 0 {
            None
        } else if !s.served {
            Some((s.since + t.header_read, Due::HeadTimeout))
        } else if let Some(first_byte) = s.head_started {
            Some((first_byte + t.header_read, Due::HeadTimeout))
        } else {
            Some((s.since + t.keep_alive_idle, Due::Idle))
        }
    }

    /// Whether a request head has begun to arrive and is not yet whole (HTTP/1, or a connection
    /// not yet served).
    fn head_arriving(&self) -> bool {
        let s = self.state();
        s.in_flight == 0 && s.head_started.is_some()
    }

    /// The socket read some bytes.
    fn read_some(&self) {
        let mut s = self.state();
        if s.in_flight == 0 && s.head_started.is_none() && !s.http2 {
            s.head_started = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    fn begin(self: &Arc<Self>, version: Version) -> InFlight {
        let mut s = self.state();
        s.in_flight += 1;
        s.served = true;
        s.head_started = None;
        s.http2 |= version == Version::HTTP_2;
        drop(s);
        // A drain waiting for this request's head goes on now that it is whole.
        self.changed.notify_one();
        InFlight(self.clone())
    }
}

/// One request in flight; dropping it (with the response body) may make the connection idle.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.since = Instant::now();
            s.head_started = None;
        }
        drop(s);
        self.0.changed.notify_one();
    }
}

/// The caller's service, counting requests in flight. During a drain it marks HTTP/1 answers
/// `Connection: close` itself: hyper may write an answer that is ready at once in the same poll
/// that read its head, before the watch gets to call `graceful_shutdown`.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    drain: CancellationToken,
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, E>> + Send>>;

impl<S> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let version = req.version();
        let in_flight = self.activity.begin(version);
        let answer = self.inner.call(req);
        let drain = self.drain.clone();
        Box::pin(async move {
            let mut response = answer.await?;
            if drain.is_cancelled() && version < Version::HTTP_2 {
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that keeps its request in flight until it is dropped.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
