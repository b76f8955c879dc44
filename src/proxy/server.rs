//! The proxy's per-connection service: each request runs through the tower stack. Layers,
//! outermost first, and why they sit there:
//! 1. `MapResponse` adds `Docker-Distribution-API-Version` to every answer, errors included, so
//!    it sits outside everything that can answer.
//! 2. `handlers::dispatch` parses the route, opens the request's tracing span and answers.
//!
//! Accepting connections is `crate::listener`'s job.

use super::{handlers, App};
use http::HeaderValue;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

pub async fn accept_loop(listener: TcpListener, app: Arc<App>) {
    crate::listener::accept_loop(listener, |peer| {
        let app = app.clone();
        let service = ServiceBuilder::new()
            .map_response(|mut r: http::Response<crate::body::Body>| {
                r.headers_mut().insert(
                    "Docker-Distribution-API-Version",
                    HeaderValue::from_static("registry/2.0"),
                );
                r
            })
            .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(crate::listener::Peer(peer));
                req
            })
            .service_fn(move |req| handlers::dispatch(app.clone(), req));
        TowerToHyperService::new(service)
    })
    .await
}
