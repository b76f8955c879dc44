//! Counting and timing answers: `ecr_proxy_http_requests_total` (route kind, method, status) and
//! `ecr_proxy_http_request_duration_seconds` (route kind; to the answer's head: a streamed
//! body's transfer time is the client's). The route kind is the one the dispatcher noted in the
//! request's record (`metrics::request`), so this layer must run inside the access-log layer,
//! which makes that record. Owns those two families' recording; must not change the answer.

use crate::metrics::{request, Metrics};
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl MetricsLayer {
    pub fn new(metrics: Metrics) -> MetricsLayer {
        MetricsLayer { metrics }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = CountRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountRequests {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct CountRequests<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, RB> tower::Service<Request<B>> for CountRequests<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        Counted {
            started: Instant::now(),
            method: method_label(req.method()),
            inner: self.inner.call(req),
            metrics: self.metrics.clone(),
        }
    }
}

pin_project! {
    pub struct Counted<F> {
        #[pin]
        inner: F,
        started: Instant,
        method: &'static str,
        metrics: Metrics,
    }
}

impl<F, RB, E> Future for Counted<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            this.metrics.http_request(
                request::route(),
                this.method,
                response.status().as_u16(),
                this.started.elapsed(),
            );
        }
        Poll::Ready(result)
    }
}

/// A label for the method: the ones the registry API uses, anything else `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
