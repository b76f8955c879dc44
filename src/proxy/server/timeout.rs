//! The request timeout: a request without a body (GET, HEAD, DELETE) whose answer has not begun
//! within `server.request_timeout_secs` is answered 503 UNAVAILABLE with Retry-After (through
//! `RegistryError::into_response`), and the work behind it is dropped. Only the head is timed: a
//! blob streaming to a slow client is not cut. Uploads (POST, PATCH, PUT) are not timed here, as a
//! large layer takes as long as its bytes take: a body that sends nothing for
//! `uploads.body_timeout_secs` ends the request instead (`handlers::uploads::feed`). Owns only
//! that deadline.

use crate::body::Body;
use crate::proxy::error::RegistryError;
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer {
    limit: Duration,
}

impl TimeoutLayer {
    pub fn new(limit: Duration) -> TimeoutLayer {
        TimeoutLayer { limit }
    }
}

impl<S> tower::Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> tower::Service<Request<B>> for Timeout<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Deadline<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let timed = matches!(*req.method(), Method::GET | Method::HEAD | Method::DELETE);
        let head = req.method() == Method::HEAD;
        Deadline {
            inner: self.inner.call(req),
            sleep: timed.then(|| tokio::time::sleep(self.limit)),
            limit: self.limit,
            head,
        }
    }
}

pin_project! {
    pub struct Deadline<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        limit: Duration,
        head: bool,
    }
}

impl<F, E> Future for Deadline<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Ok(
                RegistryError::TimedOut(*this.limit).into_response(*this.head)
            )),
            _ => Poll::Pending,
        }
    }
}
