//! The emulator's HTTP listener: accepts connections, serves HTTP/1.1 and HTTP/2, and routes
//! `POST /` to the API and `GET|HEAD /__layers/…` to the download URLs. Connections live in a
//! set owned by the accept loop, so stopping the loop closes them all (a clean restart in tests).

use super::{api, download, Shared};
use crate::body;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
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
        let shared = shared.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| route(shared.clone(), req));
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<body::Body>, api::DropConnection> {
    let path = req.uri().path();
    if path.starts_with(download::PREFIX) {
        let store = &shared.ctx.store;
        let now = download::unix_now() + shared.clock_skew_secs.load(Ordering::Relaxed);
        return Ok(download::serve(store.url_key(), |d| store.layout().blob(d), &req, now).await);
    }
    if req.method() == Method::POST && path == "/" {
        return api::handle(shared, req).await;
    }
    Ok(Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .body(body::full(
            r#"{"__type":"UnknownOperationException","message":"Only POST / is served here"}"#,
        ))
        .expect("valid response"))
}
