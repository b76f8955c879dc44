//! The request's tracing span and its one access line. For each request this layer opens the
//! `request` span (with the request id; the dispatcher records the route and repository into
//! it), runs the request in a fresh `metrics::request::Record` (so the handlers, the error
//! response and the ECR client can note what the request caused without it being passed
//! around), and writes one line per request (`line`) with the method, route kind, repository,
//! status, OCI error code, latency, bytes in and out, the client's address, the request id and
//! the request ids of the ECR calls it made.
//!
//! The line is written when the answer's body has been handed to hyper whole (or was dropped
//! unfinished: `complete=false`), so `bytes_out` counts the bytes actually taken for sending, a
//! streamed blob included; `latency_ms` is the time to the answer's head, `total_ms` to the end
//! of its body. A request dropped before its answer (the client went away) is logged without a
//! status. Owns the span and the line; it must not change the answer.

mod line;

use super::request_id::RequestId;
use crate::body::Body;
use crate::listener::Peer;
use crate::metrics::request::{self, Record};
use crate::metrics::Metrics;
use http::{Request, Response};
use line::Line;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;
use tokio::task::futures::TaskLocalFuture;
use tracing::instrument::Instrumented;
use tracing::Instrument;

#[derive(Clone, Debug)]
pub struct AccessLogLayer {
    metrics: Metrics,
}

impl AccessLogLayer {
    /// `metrics`: where what a request records through its `Record` is counted.
    pub fn new(metrics: Metrics) -> AccessLogLayer {
        AccessLogLayer { metrics }
    }
}

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLog {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AccessLog<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B> tower::Service<Request<B>> for AccessLog<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Logged<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let started = Instant::now();
        let id = req.extensions().get::<RequestId>().cloned();
        let peer = req.extensions().get::<Peer>().map(|p| p.0);
        let method = req.method().clone();
        let span = tracing::info_span!(
            "request",
            request_id = id.as_ref().map(RequestId::as_str),
            method = %method,
            route = tracing::field::Empty,
            repository = tracing::field::Empty,
        );
        let record = Record::new(self.metrics.clone());
        let inner = request::scope(record.clone(), self.inner.call(req).instrument(span));
        Logged {
            inner,
            line: Some(Line::new(started, method, id, peer, record)),
        }
    }
}

pin_project! {
    /// The inner answer; its body is wrapped to write the line when it ends.
    pub struct Logged<F> {
        #[pin]
        inner: TaskLocalFuture<Arc<Record>, Instrumented<F>>,
        line: Option<Line>,
    }

    impl<F> PinnedDrop for Logged<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(line) = this.project().line.take() {
                line.abandoned();
            }
        }
    }
}

impl<F, E> Future for Logged<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(line) = this.line.take() else {
            return Poll::Ready(result);
        };
        Poll::Ready(match result {
            Ok(response) => Ok(line.answered(response)),
            Err(e) => {
                line.abandoned();
                Err(e)
            }
        })
    }
}
