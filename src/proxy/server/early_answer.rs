//! `Connection: close` on HTTP/1 answers that may have come before the request body was read.
//! It owns only that header; it must not read, drain or replace bodies, nor change statuses.
//!
//! When a handler answers without reading the whole body (a 416 for a bad `Content-Range`, a 404
//! for an unknown upload, a 429 when the budget stays spent), hyper cannot reuse the connection
//! (the rest of the body is still coming) and closes it after the answer; without the header the
//! client learns that only when its next request on the connection fails. The handlers take
//! hyper's `Incoming` body, so this layer cannot see whether the body was read; it marks every
//! error answer (4xx, 5xx) to a request that declared a non-empty body. When the body had in fact
//! been read, that costs the client one reconnect after an error, nothing more. HTTP/2 has no
//! such header (it resets the stream instead), so HTTP/2 answers are left alone.

use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderValue, Request, Response, Version};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[derive(Clone, Copy, Debug)]
pub struct CloseIfBodyUnreadLayer;

impl<S> tower::Layer<S> for CloseIfBodyUnreadLayer {
    type Service = CloseIfBodyUnread<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CloseIfBodyUnread { inner }
    }
}

#[derive(Clone, Debug)]
pub struct CloseIfBodyUnread<S> {
    inner: S,
}

type Answer<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

impl<S, ReqB, B> tower::Service<Request<ReqB>> for CloseIfBodyUnread<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Answer<B, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let may_leave_body = carries_body(&req);
        let answer = self.inner.call(req);
        Box::pin(async move {
            let mut response = answer.await?;
            let status = response.status();
            if may_leave_body && (status.is_client_error() || status.is_server_error()) {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}

/// An HTTP/1 request that declared a body: a `Content-Length` above 0, or any transfer coding.
fn carries_body<B>(req: &Request<B>) -> bool {
    if !matches!(req.version(), Version::HTTP_10 | Version::HTTP_11) {
        return false;
    }
    let h = req.headers();
    h.contains_key(TRANSFER_ENCODING)
        || h.get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}
