//! The mirror layer: `[[mirror.routes]]` map an upstream registry's names onto ECR repositories.
//! containerd's `hosts.toml` mirrors send `?ns=REGISTRY` on every request; with a route for it
//! the name becomes `prefix + name` (`library/nginx`, `ns=docker.io` → `docker-hub/library/nginx`)
//! and `ns` is dropped; without one the answer is 404 NAME_UNKNOWN naming what is served. Without
//! `ns`, a `default = true` route takes names not already under a prefix (Docker's
//! `registry-mirrors` sends bare Docker Hub names). Names moved by a route are read-only (405
//! UNSUPPORTED with `Allow: GET, HEAD`; why not 403 in `rewrite`). `/v2/_catalog`, `/v2/` (but
//! for its `ns`) and everything outside `/v2` pass untouched.
//!
//! Owns the request's path and query, nothing else: what is routed is decided by the pure
//! `rewrite::rewrite`; it must not look at credentials or call ECR. Layers inside it (auth,
//! dispatch) see only the ECR name; the client's name and registry are in its DEBUG line.

pub(in crate::proxy) mod rewrite;

use crate::body::Body;
use crate::proxy::error::RegistryError;
use crate::proxy::{handlers, route, App};
use futures_util::future::{BoxFuture, Either};
use http::uri::PathAndQuery;
use http::{header, HeaderValue, Method, Request, Response, Uri};
use rewrite::Refused;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Reads the routes from the app's configuration (`mirror_routes`), not copied per connection.
#[derive(Clone)]
pub struct MirrorLayer {
    app: Arc<App>,
}

impl MirrorLayer {
    pub fn new(app: Arc<App>) -> MirrorLayer {
        MirrorLayer { app }
    }
}

impl<S> tower::Layer<S> for MirrorLayer {
    type Service = Mirror<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Mirror {
            inner,
            app: self.app.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Mirror<S> {
    inner: S,
    app: Arc<App>,
}

impl<S, B> tower::Service<Request<B>> for Mirror<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    /// Untouched requests go on as they are; moved and refused ones in a future, so what it
    /// logs and notes lands in the request's span and record, which are set while it is polled.
    type Future = Either<S::Future, BoxFuture<'static, Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let head = req.method() == Method::HEAD;
        let uri = req.uri();
        let decided = rewrite::rewrite(
            &self.app.config.mirror_routes,
            req.method(),
            uri.path(),
            uri.query(),
        );
        let to = match decided {
            Ok(None) => return Either::Left(self.inner.call(req)),
            Ok(Some(to)) => to,
            Err(refused) => {
                return Either::Right(Box::pin(async move { Ok(refuse(refused, head)) }))
            }
        };
        let Some(new) = with_path_and_query(uri, &to.path_and_query) else {
            // Not reached: a checked prefix keeps the path valid. Refused rather than passed
            // on with the upstream's name.
            let refused = Refused {
                error: RegistryError::NotFound,
                path: None,
            };
            return Either::Right(Box::pin(async move { Ok(refuse(refused, head)) }));
        };
        let moved = to
            .route
            .map(|r| (r.registry.clone(), r.prefix.clone(), uri.path().to_string()));
        *req.uri_mut() = new;
        let answer = self.inner.call(req);
        Either::Right(Box::pin(async move {
            if let Some((registry, prefix, requested)) = moved {
                tracing::debug!(%registry, %requested, "mirror: the name moved under {prefix}");
            }
            answer.await
        }))
    }
}

/// The answer to a refused request, noted with the ECR name it would have had (as a request
/// that went on is, by the dispatcher), so its log line and metrics name the route.
fn refuse(refused: Refused, head: bool) -> Response<Body> {
    if let Some(r) = refused.path.and_then(|p| route::parse(&p).ok()) {
        handlers::note(&r);
    }
    let method_refused = matches!(refused.error, RegistryError::Unsupported(_));
    let mut answer = refused.error.into_response(head);
    if method_refused {
        answer
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    answer
}

/// `uri` with another path and query (scheme and authority kept, as HTTP/2 sends them).
fn with_path_and_query(uri: &Uri, path_and_query: &str) -> Option<Uri> {
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
    Uri::from_parts(parts).ok()
}
