//! The accept loop both servers (the registry and the emulator) run: accept TCP connections and
//! serve each with HTTP/1.1 or HTTP/2 on its own task. Connections live in a set owned by the
//! loop, so stopping the loop (aborting its task) closes them all: a clean restart in tests.
//! This module knows nothing of routes; callers pass the service for each connection.

use crate::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The client's address, put into every request's extensions by the proxy's server.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::SocketAddr);

/// Serve connections from `listener` until the task is aborted; `service` makes each
/// connection's service, given the client's address.
pub async fn accept_loop<S>(listener: TcpListener, service: impl Fn(std::net::SocketAddr) -> S)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let _ = stream.set_nodelay(true);
        let service = service(peer);
        connections.spawn(async move {
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}
