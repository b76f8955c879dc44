//! The admin listener (`server.admin_listen`, off unless set): `GET` (or `HEAD`) `/healthz`,
//! `/readyz` and `/metrics` on a port of their own, so that the registry can stay on loopback
//! while the kubelet's probes and Prometheus reach the pod's IP (as linkerd's admin port and
//! Envoy's admin listener do). Any other path is 404 and any other method 405, in plain text:
//! nothing here reaches a registry route, an upload or ECR beyond `/readyz`'s one probe call.
//!
//! It speaks plain HTTP even when the registry port has `[tls]`: probes and scrapes come from
//! inside the pod or cluster network, and its answers carry no secrets.
//!
//! It runs on `crate::listener`'s accept loop with small limits of its own (`LIMITS`), apart
//! from the registry's connection cap, so probes still get in while the registry is full. On a
//! drain it keeps serving (`/readyz` answers 503 `draining` instead of connections being
//! refused, `/metrics` can be scraped) until `RunningProxy::drain` stops it at the end.
//!
//! Its requests go through none of the registry's tower layers: no access line (probes every few
//! seconds would drown the log) and no count in `ecr_proxy_http_requests_total`. The answers
//! themselves are `handlers::health`'s; this module must not answer anything else.

use super::handlers::health::{self, plain};
use super::{App, StartError};
use crate::body::Body;
use crate::config::ConnectionLimits;
use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Probes and scrapes are short requests from a few clients: 64 connections, 5 s for a request
/// head, 60 s idle (Prometheus keeps its connection between scrapes, 15–60 s apart).
const LIMITS: ConnectionLimits = ConnectionLimits {
    header_read_timeout: Duration::from_secs(5),
    keep_alive_idle: Duration::from_secs(60),
    max_connections: 64,
    // Unused: the listener is stopped at once, after the registry's own drain.
    drain_period: Duration::from_secs(1),
};

const PATHS: &str = "/healthz, /readyz and /metrics";

/// The admin listener, serving on its own task until `stop` (or until dropped).
pub(super) struct Admin {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// Bind `addr` (before anything else of the proxy starts, so a taken port fails the start).
pub(super) async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::AdminBind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

impl Admin {
    /// Serve `listener` (bound at `addr`) on its own task.
    pub(super) fn spawn(listener: TcpListener, addr: SocketAddr, app: Arc<App>) -> Admin {
        tracing::info!(%addr, "admin listening: {PATHS} (the registry port serves them too)");
        let task = tokio::spawn(async move {
            crate::listener::accept_loop(listener, &LIMITS, move |_| {
                let app = app.clone();
                service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(answer(&app, &req).await) }
                })
            })
            .await
        });
        Admin { addr, task }
    }

    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Close the listening socket and every admin connection, at once: its requests take no
    /// time worth waiting for, and the process is about to exit.
    pub(super) async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        tracing::info!(addr = %self.addr, "admin listener stopped");
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return plain(
            StatusCode::NOT_FOUND,
            &format!("not found: the admin port serves only {PATHS}"),
        );
    }
    let method = req.method();
    if !matches!(*method, Method::GET | Method::HEAD) {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} is not allowed here: use GET"),
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/healthz" => health::healthz(),
        "/readyz" => health::readyz(app).await,
        _ => health::scrape(app, *method == Method::HEAD).unwrap_or_else(|e| {
            tracing::warn!("the metrics could not be encoded: {e}");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the metrics could not be encoded: {e}"),
            )
        }),
    }
}
