//! The proxy's listener: accepts connections (HTTP/1.1 and HTTP/2) and runs each request through
//! the tower stack. Layers, outermost first, and why they sit there:
//! 1. `MapResponse` adds `Docker-Distribution-API-Version` to every answer, errors included, so
//!    it sits outside everything that can answer.
//! 2. `handlers::dispatch` parses the route, opens the request's tracing span and answers.
//!
//! Connections live in a set owned by the accept loop: stopping the loop closes them.

use super::{handlers, App};
use http::HeaderValue;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceBuilder;

pub async fn accept_loop(listener: TcpListener, app: Arc<App>) {
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
        let app = app.clone();
        let service = ServiceBuilder::new()
            .map_response(|mut r: http::Response<crate::body::Body>| {
                r.headers_mut().insert(
                    "Docker-Distribution-API-Version",
                    HeaderValue::from_static("registry/2.0"),
                );
                r
            })
            .service_fn(move |req| handlers::dispatch(app.clone(), req));
        connections.spawn(async move {
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await
            {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}
