//! `x-request-id`: each request gets one, taken from the client when it sent a sane token
//! (1 to 128 visible ASCII characters, no spaces) and otherwise made (a UUID v4), put into the
//! request's extensions (`RequestId`) for the layers and handlers inside, and returned on its
//! answer, whatever layer produced it. Owns only that header; it must not change anything else.

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id taken from a client.
const MAX_LEN: usize = 128;

/// The request's id.
#[derive(Clone, Debug)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Always visible ASCII: checked when taken, a UUID when made.
        self.0.to_str().unwrap_or_default()
    }
}

/// The client's id when it is a sane token, else a new one.
fn take_or_make(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&HEADER) {
        Some(v) if sane(v.as_bytes()) => v.clone(),
        _ => {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
            HeaderValue::from_str(id).expect("a UUID is a valid header value")
        }
    }
}

fn sane(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

#[derive(Clone, Copy, Debug)]
pub struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = SetRequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetRequestId { inner }
    }
}

#[derive(Clone, Debug)]
pub struct SetRequestId<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<Request<B>> for SetRequestId<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Echo<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = take_or_make(req.headers());
        req.extensions_mut().insert(RequestId(id.clone()));
        Echo {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

pin_project! {
    /// The inner answer, with the request's id.
    pub struct Echo<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, RB, E> Future for Echo<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(HEADER, id);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_others_replaced() {
        let mut h = HeaderMap::new();
        for keep in ["abc-123", "x", &"a".repeat(128), "trace=1;span=2"] {
            h.insert(&HEADER, HeaderValue::from_str(keep).unwrap());
            assert_eq!(take_or_make(&h), keep);
        }
        for replace in ["", "has space", &"a".repeat(129), "tab\there"] {
            h.insert(&HEADER, HeaderValue::from_str(replace).unwrap());
            let made = take_or_make(&h);
            assert_ne!(made, replace);
            assert!(uuid::Uuid::parse_str(made.to_str().unwrap()).is_ok());
        }
        h.insert(&HEADER, HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        assert_ne!(take_or_make(&h).as_bytes(), b"caf\xc3\xa9");
        let a = take_or_make(&HeaderMap::new());
        let b = take_or_make(&HeaderMap::new());
        assert_ne!(a, b);
    }
}
