//! One request's access line: what it holds, at which level it is written, and the body wrapper
//! that counts the bytes taken for sending and writes the line when the body ends or is dropped.
//!
//! Levels: WARN for 5xx; DEBUG for `/healthz`, `/readyz` and `/metrics` (probes and scrapes, every
//! few seconds) and for the ordinary 404s of a push or pull (a HEAD or GET of a blob or manifest
//! answered BLOB_UNKNOWN, MANIFEST_UNKNOWN, or NAME_UNKNOWN for a repository not created yet:
//! clients ask before they push); INFO for the rest.

use super::RequestId;
use crate::body::Body;
use crate::metrics::request::Record;
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tracing::Level;

/// The lines' target, for filters: `RUST_LOG=info,ecr_proxy::access=debug`.
pub const TARGET: &str = "ecr_proxy::access";

/// What the line says, gathered from the request's arrival to the end of its answer.
pub struct Line {
    started: Instant,
    method: Method,
    id: Option<RequestId>,
    peer: Option<SocketAddr>,
    record: Arc<Record>,
}

impl Line {
    pub fn new(
        started: Instant,
        method: Method,
        id: Option<RequestId>,
        peer: Option<SocketAddr>,
        record: Arc<Record>,
    ) -> Line {
        Line {
            started,
            method,
            id,
            peer,
            record,
        }
    }

    /// The answer's head is out: write the line now when it has no body, else when the body ends.
    pub fn answered(self, response: Response<Body>) -> Response<Body> {
        let head = self.started.elapsed();
        let status = response.status();
        if response.body().is_end_stream() {
            self.write(Some(status), head, 0, true);
            return response;
        }
        response.map(|inner| {
            Counted {
                inner,
                line: Some((self, status, head)),
                sent: 0,
            }
            .boxed()
        })
    }

    /// The request ended without an answer (the client went away).
    pub fn abandoned(self) {
        let elapsed = self.started.elapsed();
        self.write(None, elapsed, 0, false);
    }

    fn write(self, status: Option<StatusCode>, head: Duration, bytes_out: u64, complete: bool) {
        let facts = self.record.facts();
        let code = facts.error.as_ref().map(|e| e.0);
        let level = level(&self.method, facts.route, status, code);
        let ecr_ids = (!facts.ecr_request_ids.is_empty()).then(|| facts.ecr_request_ids.join(","));
        macro_rules! line {
            ($event:ident) => {
                tracing::$event!(
                    target: TARGET,
                    method = %self.method,
                    route = facts.route,
                    repository = facts.repository.as_deref(),
                    status = status.map(|s| s.as_u16()),
                    code,
                    error = facts.error.as_ref().map(|e| e.1.as_str()),
                    latency_ms = millis(head),
                    total_ms = millis(self.started.elapsed()),
                    bytes_in = self.record.bytes_in(),
                    bytes_out,
                    complete,
                    client = self.peer.map(tracing::field::display),
                    subject = facts.subject.as_deref(),
                    request_id = self.id.as_ref().map(RequestId::as_str),
                    ecr_request_ids = ecr_ids.as_deref(),
                    ecr_calls = facts.ecr_calls,
                    "{}",
                    if status.is_some() { "answered" } else { "abandoned before an answer" }
                )
            };
        }
        match level {
            Level::WARN => line!(warn),
            Level::DEBUG => line!(debug),
            _ => line!(info),
        }
    }
}

/// Milliseconds, to the microsecond.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

fn level(method: &Method, route: &str, status: Option<StatusCode>, code: Option<&str>) -> Level {
    if matches!(route, "health" | "metrics") {
        return Level::DEBUG;
    }
    let Some(status) = status else {
        return Level::INFO;
    };
    if status.is_server_error() {
        return Level::WARN;
    }
    let lookup =
        matches!(*method, Method::GET | Method::HEAD) && matches!(route, "blob" | "manifest");
    let unknown = matches!(
        code,
        Some("BLOB_UNKNOWN" | "MANIFEST_UNKNOWN" | "NAME_UNKNOWN")
    );
    if lookup && status == StatusCode::NOT_FOUND && unknown {
        Level::DEBUG
    } else {
        Level::INFO
    }
}

/// An answer's body, counting the bytes hyper takes; writes the line when it ends.
struct Counted {
    inner: Body,
    line: Option<(Line, StatusCode, Duration)>,
    sent: u64,
}

impl Counted {
    fn finish(&mut self, complete: bool) {
        if let Some((line, status, head)) = self.line.take() {
            line.write(Some(status), head, self.sent, complete);
        }
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Ready(None) => this.finish(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        let nf = Some(StatusCode::NOT_FOUND);
        let ok = Some(StatusCode::OK);
        let get = &Method::GET;
        let head = &Method::HEAD;
        assert_eq!(level(head, "blob", nf, Some("BLOB_UNKNOWN")), Level::DEBUG);
        assert_eq!(
            level(get, "manifest", nf, Some("MANIFEST_UNKNOWN")),
            Level::DEBUG
        );
        assert_eq!(level(head, "blob", nf, Some("NAME_UNKNOWN")), Level::DEBUG);
        assert_eq!(level(get, "health", ok, None), Level::DEBUG);
        assert_eq!(level(get, "metrics", ok, None), Level::DEBUG);
        assert_eq!(
            level(get, "health", Some(StatusCode::SERVICE_UNAVAILABLE), None),
            Level::DEBUG
        );
        // Not the lookups of a push: a 404 elsewhere, or another code, is worth reading.
        assert_eq!(
            level(&Method::DELETE, "manifest", nf, Some("MANIFEST_UNKNOWN")),
            Level::INFO
        );
        assert_eq!(
            level(get, "upload", nf, Some("BLOB_UPLOAD_UNKNOWN")),
            Level::INFO
        );
        assert_eq!(level(get, "tags", nf, Some("NAME_UNKNOWN")), Level::INFO);
        assert_eq!(level(get, "unknown", nf, Some("NOT_FOUND")), Level::INFO);
        assert_eq!(level(get, "blob", ok, None), Level::INFO);
        assert_eq!(level(get, "blob", None, None), Level::INFO);
        let unavailable = Some(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            level(get, "blob", unavailable, Some("UNAVAILABLE")),
            Level::WARN
        );
    }
}
