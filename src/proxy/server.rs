//! The proxy's per-connection service: each request runs through the tower stack below, one
//! concern per layer. Layers, outermost first, and why they sit there:
//! 1. `api_version` adds `Docker-Distribution-API-Version` to every answer, errors included, so
//!    it sits outside everything that can answer.
//! 2. `early_answer::CloseIfBodyUnreadLayer` marks HTTP/1 error answers to requests that carry a
//!    body with `Connection: close`: such an answer may come before the body was read (a 416
//!    for a bad `Content-Range`, a 404 for an unknown upload), and hyper then closes the
//!    connection anyway; the header tells the client so. It sits outside every layer and handler
//!    that can answer early, so it sees each final answer beside the request as the client sent
//!    it; inside the version layer because order between the two does not matter.
//! 3. `with_connection` puts the client's address (`listener::Peer`) and, on mTLS, its
//!    certificate's identity (`listener::ClientCert`) into the request's extensions, before every
//!    layer that reads them (the access log, authentication, the per-client upload cap).
//! 4. `request_id` takes or makes `x-request-id` and returns it on every answer: outside the log
//!    and everything that can answer, so each line and each answer carries it.
//! 5. `access_log` opens the request's span and gathers what the request causes into one access
//!    line: outside the metrics, the timeout and authentication, so it logs their answers too.
//! 6. `request_metrics` counts and times answers by route kind, method and status: inside the
//!    access log (it reads the route kind from the request's record, which that layer makes) and
//!    outside the timeout and authentication, so timeouts and denials are counted.
//! 7. `timeout` answers a request without a body whose answer has not begun within
//!    `server.request_timeout_secs` with 503 UNAVAILABLE: inside the log and metrics, which then
//!    see that answer, and outside authentication, which it also bounds.
//! 8. `mirror` moves an upstream registry's names onto ECR repositories (`?ns=docker.io`, a
//!    default route; `[[mirror.routes]]`) and refuses pushes to them: before authentication and
//!    dispatch, so the access rules, the route noted for the log and the metrics, and the
//!    handlers all see the ECR name only; inside the request id, the access log and the metrics,
//!    so its refusals carry the id and are logged and counted like any other, and its DEBUG line
//!    (the client's name and registry) falls in the request's span, beside the line that names
//!    the ECR repository. Inside the timeout because it answers at once.
//! 9. `auth` authenticates the request and checks it against the access rules (401 with the
//!    token challenge, 403 DENIED): inside the request id, the access log, the metrics and the
//!    timeout, so each denial carries its id, is logged and counted, and a slow credential
//!    check (an issuer's keys being fetched) is bounded; before dispatch, which then sees only
//!    allowed requests, with their `auth::Subject`.
//! 10. `handlers::dispatch` parses the route, notes it in the span and the record, and answers
//!     (`/metrics`, `/healthz` and `/readyz` included).
//!
//! Connection limits (timers, the connection cap, accept errors, buffer sizes) are applied
//! around this stack, per connection, by `crate::listener`, not here.

mod access_log;
mod auth;
mod early_answer;
pub(super) mod mirror;
mod request_id;
mod request_metrics;
mod timeout;

use super::{handlers, App};
use crate::body::Body;
use crate::listener::{Accepted, Drained, Peer, Stop};
use crate::tls::Tls;
use http::{HeaderValue, Request, Response};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

pub async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    stop: Stop,
    tls: Option<Tls>,
) -> Drained {
    let limits = app.config.connections.clone();
    crate::listener::serve(listener, &limits, &stop, tls, move |conn: Accepted| {
        let app = app.clone();
        let service = ServiceBuilder::new()
            .map_response(api_version)
            .layer(early_answer::CloseIfBodyUnreadLayer)
            .map_request(move |req| with_connection(req, &conn))
            .layer(request_id::RequestIdLayer)
            .layer(access_log::AccessLogLayer::new(app.metrics.clone()))
            .layer(request_metrics::MetricsLayer::new(app.metrics.clone()))
            .layer(timeout::TimeoutLayer::new(app.config.request_timeout))
            .layer(mirror::MirrorLayer::new(app.clone()))
            .layer(auth::AuthLayer::new(app.clone()))
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

fn with_connection<B>(mut req: Request<B>, conn: &Accepted) -> Request<B> {
    req.extensions_mut().insert(Peer(conn.peer));
    if let Some(cert) = &conn.client_cert {
        req.extensions_mut().insert(cert.clone());
    }
    req
}
