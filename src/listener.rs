//! The accept loop both servers (the registry and the emulator) run: accept TCP connections and
//! serve each with HTTP/1.1 or HTTP/2 on its own task, within `ConnectionLimits`, over TLS when
//! given a `tls::Tls` (the registry with `[tls]`). Connections live in a set owned by the loop,
//! so stopping the loop (aborting its task) closes them all: a clean restart in tests. A `Stop`
//! drains it instead (`drain`: the listening socket closed, idle connections closed, requests in
//! progress given the drain period, then the rest cut). This module knows nothing of routes;
//! callers pass what makes each connection's service, given what the listener knows of it
//! (`Accepted`). `handshake` owns a TLS connection's start (the plain-HTTP answer, the
//! handshake under the header timer); `conn` owns one connection's timers (header read,
//! keep-alive idle), how it finishes on a drain, and its socket.
//!
//! Limits enforced here, and how:
//! - at most `max_connections` at once: the loop stops calling `accept` at the cap, so further
//!   clients wait in the kernel's backlog until a connection ends;
//! - accept errors that are about the process, not one client (EMFILE, ENFILE, ENOBUFS, ENOMEM)
//!   pause accepting, doubling from 10 ms to 1 s, and are logged at most once a second with the
//!   count of failures not logged;
//! - per-connection memory: hyper's HTTP/1 read buffer and the HTTP/2 windows and send buffers
//!   are capped (see `builder`), because with hundreds of uploads they add up outside the budget.

mod conn;
mod drain;
mod handshake;

pub use drain::{Drained, Stop};

use crate::body::Body;
use crate::config::ConnectionLimits;
use crate::tls::Tls;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The client's address, put into every request's extensions by the proxy's server.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::SocketAddr);

/// What the listener knows of a connection when its service is made: after the TLS handshake,
/// on a TLS listener.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub peer: std::net::SocketAddr,
    /// The identity of the client's certificate, verified against `tls.client_ca` (mTLS).
    pub client_cert: Option<ClientCert>,
}

/// HTTP/1 read (and write) buffer cap per connection. hyper's default is about 400 KiB, which
/// 200 concurrent uploads can turn into 80 MiB outside the buffer budget. 64 KiB reads keep one
/// streamed push at full speed (a 512 MiB PATCH under `--local`: same throughput and the same
/// 8.6 s of CPU as with hyper's default).
const H1_MAX_BUF: usize = 64 * 1024;
/// HTTP/2 flow-control windows: what one stream, and one connection in all, may have sent us
/// that the handlers have not read yet.
const H2_STREAM_WINDOW: u32 = 256 * 1024;
const H2_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// HTTP/2 response bytes buffered per stream before the body producer is held back.
const H2_SEND_BUF: usize = 128 * 1024;
const H2_MAX_STREAMS: u32 = 100;

const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Serve plain connections from `listener` within `limits` until the task is aborted; `service`
/// makes each connection's service.
pub async fn accept_loop<S, F>(listener: TcpListener, limits: &ConnectionLimits, service: F)
where
    F: Fn(Accepted) -> S + Send + Sync + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    serve(listener, limits, &Stop::default(), None, service).await;
}

/// Serve connections from `listener` within `limits`, over TLS when `tls` is given, until
/// `stop` drains the loop (or its task is aborted); `service` makes each connection's service
/// (in the connection's task, after the TLS handshake).
pub async fn serve<S, F>(
    listener: TcpListener,
    limits: &ConnectionLimits,
    stop: &Stop,
    tls: Option<Tls>,
    service: F,
) -> Drained
where
    F: Fn(Accepted) -> S + Send + Sync + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = Arc::new(service);
    let builder = Arc::new(builder());
    let timers = conn::Timers {
        header_read: limits.header_read_timeout,
        keep_alive_idle: limits.keep_alive_idle,
    };
    let max = limits.max_connections.max(1);
    let mut connections = JoinSet::new();
    let mut failures = AcceptFailures::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.draining() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept(), if connections.len() < max => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if about_one_client(&e) => {
                tracing::debug!("accept: {e}");
                continue;
            }
            Err(e) => {
                tokio::select! {
                    () = stop.draining() => break,
                    () = tokio::time::sleep(failures.failed(&e)) => continue,
                }
            }
        };
        failures.recovered();
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            Connection {
                stream,
                peer,
                accepted: tokio::time::Instant::now(),
                drain: stop.for_connection(),
            },
            tls.clone(),
            service.clone(),
            builder.clone(),
            timers,
        ));
    }
    // Closing the listening socket makes the kernel refuse new connections (and reset those
    // still in its backlog), so clients and load balancers go elsewhere at once.
    drop(listener);
    drain::finish(&mut connections, limits.drain_period, stop).await
}

/// An accepted connection, handed to its task.
struct Connection {
    stream: TcpStream,
    peer: std::net::SocketAddr,
    accepted: tokio::time::Instant,
    drain: CancellationToken,
}

/// One connection's task: the TLS handshake if any (bounded by the header timer from accept),
/// then its service made and the connection served.
async fn connection<S, F>(
    c: Connection,
    tls: Option<Tls>,
    service: Arc<F>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    timers: conn::Timers,
) where
    F: Fn(Accepted) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Connection {
        stream,
        peer,
        accepted,
        drain,
    } = c;
    let Some(tls) = tls else {
        let service = service(Accepted {
            peer,
            client_cert: None,
        });
        return conn::serve(&builder, stream, peer, service, timers, drain, accepted).await;
    };
    let deadline = accepted + timers.header_read;
    let Some((stream, client_cert)) = handshake::secure(&tls, stream, peer, deadline, &drain).await
    else {
        return;
    };
    let service = service(Accepted { peer, client_cert });
    conn::serve(&builder, stream, peer, service, timers, drain, accepted).await
}

/// hyper's per-connection settings (the timers are `conn`'s, see there why not hyper's).
fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1().header_read_timeout(None).max_buf_size(H1_MAX_BUF);
    b.http2()
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_send_buf_size(H2_SEND_BUF)
        .max_concurrent_streams(H2_MAX_STREAMS);
    b
}

/// Errors `accept` returns for one client that went away before we took it: try the next.
/// Anything else (out of descriptors or memory) is about the process and calls for a pause.
fn about_one_client(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

/// The pause after each failed accept, and the once-a-second log of failures.
#[derive(Default)]
struct AcceptFailures {
    pause: Option<Duration>,
    last_log: Option<Instant>,
    not_logged: u64,
}

impl AcceptFailures {
    /// Note a failure; returns how long to pause before the next accept.
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        let pause = self
            .pause
            .map_or(FIRST_PAUSE, |p| (p * 2).min(LONGEST_PAUSE));
        self.pause = Some(pause);
        if self.may_log() {
            let earlier = match self.not_logged {
                0 => String::new(),
                n => format!(" ({n} more failures since the last such line)"),
            };
            tracing::warn!(
                "cannot accept connections: {e}; pausing accepts for {pause:?}{earlier}"
            );
            self.last_log = Some(Instant::now());
            self.not_logged = 0;
        } else {
            self.not_logged += 1;
        }
        pause
    }

    /// Note a successful accept; failures not logged yet are reported once a line is allowed.
    fn recovered(&mut self) {
        self.pause = None;
        if self.not_logged > 0 && self.may_log() {
            tracing::warn!(
                "accepting connections again ({} failures since the last such line)",
                self.not_logged
            );
            self.last_log = Some(Instant::now());
            self.not_logged = 0;
        }
    }

    fn may_log(&self) -> bool {
        self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY)
    }
}

/// The identity of a verified client certificate (mTLS): its subject's common name (or, without
/// one, its first subject alternative name). Put into every request's extensions on a TLS
/// connection whose client presented a certificate that `[tls] client_ca` verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert(pub std::sync::Arc<str>);
