//! The proxy's per-connection service: each request runs through the tower stack below.
//! Layers, outermost first, and why they sit there:
//! 1. `api_version` adds `Docker-Distribution-API-Version` to every answer, errors included, so
//!    it sits outside everything that can answer.
//! 2. `early_answer::CloseIfBodyUnreadLayer` marks HTTP/1 error answers to requests that carry a
//!    body with `Connection: close`: such an answer may come before the body was read (a 416
//!    for a bad `Content-Range`, a 404 for an unknown upload), and hyper then closes the
//!    connection anyway; the header tells the client so. It sits outside every layer and handler
//!    that can answer early, so it sees each final answer beside the request as the client sent
//!    it; inside the version layer because order between the two does not matter.
//! 3. `with_peer` puts the client's address (`listener::Peer`) into the request's extensions
//!    for the handlers (the per-client upload cap); innermost, as only the handlers read it.
//! 4. `handlers::dispatch` parses the route, opens the request's tracing span and answers.
//!
//! Connection limits (timers, the connection cap, accept errors, buffer sizes) are applied
//! around this stack, per connection, by `crate::listener`.

mod early_answer;

use super::{handlers, App};
use crate::body::Body;
use crate::listener::{Drained, Peer, Stop};
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

pub async fn accept_loop(listener: TcpListener, app: Arc<App>, stop: Stop) -> Drained {
    let limits = app.config.connections.clone();
    crate::listener::serve(listener, &limits, &stop, |peer| {
        let app = app.clone();
        let service = ServiceBuilder::new()
            .map_response(api_version)
            .layer(early_answer::CloseIfBodyUnreadLayer)
            .map_request(move |req| with_peer(req, peer))
            .service_fn(move |req| handlers::dispatch(app.clone(), req));
        TowerToHyperService::new(service)
    })
    .await
}

fn api_version(mut r: Response<Body>) -> Response<Body> {
    r.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

fn with_peer(mut req: Request<Incoming>, peer: std::net::SocketAddr) -> Request<Incoming> {
    req.extensions_mut().insert(Peer(peer));
    req
}
