//! The answers for orchestrators and Prometheus: `/healthz` (the process serves), `/readyz` (ECR
//! answers with the proxy's credentials; 503 `draining` once a drain began) and `/metrics` (the
//! Prometheus text format). Shared by the registry's dispatcher (`handlers::dispatch`) and the
//! admin listener (`proxy::admin`), which each decide methods, paths and how a failed scrape is
//! answered (an OCI error body on the registry port, plain text on the admin port). Must not
//! parse registry routes nor build OCI error bodies.

use super::super::App;
use crate::body::{self, Body};
use crate::metrics;
use http::{header, Response, StatusCode};
use std::sync::atomic::Ordering;

/// A `text/plain` answer.
pub fn plain(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body::full(text.to_string()))
        .expect("valid response")
}

/// `/healthz`: 200 `ok` while the process serves (liveness must not depend on ECR).
pub fn healthz() -> Response<Body> {
    plain(StatusCode::OK, "ok")
}

/// `/readyz`: 503 `draining` once a drain began (out of the load balancer at once, without
/// asking ECR); otherwise 200 `ready` if ECR answers one DescribeRepositories call with the
/// proxy's credentials, 503 with the reason if not. Concurrent probes share one call
/// (`proxy::readiness`).
pub async fn readyz(app: &App) -> Response<Body> {
    if app.draining.load(Ordering::SeqCst) {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    let probe = || async { app.ecr.probe().await.map_err(|e| e.to_string()) };
    match app.readiness.check(probe).await {
        Ok(()) => plain(StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!("not ready: {e}");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("ECR is not reachable: {e}"),
            )
        }
    }
}

/// `/metrics`: every metric in the Prometheus text format; no body for a HEAD (`head`), the
/// same `Content-Length`. Fails only if the text cannot be encoded.
pub fn scrape(app: &App, head: bool) -> Result<Response<Body>, std::fmt::Error> {
    let text = app.metrics.encode()?;
    let len = text.len();
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, metrics::CONTENT_TYPE)
        .header(header::CONTENT_LENGTH, len)
        .body(if head {
            body::empty()
        } else {
            body::full(text)
        })
        .expect("valid response"))
}
