//! The auth layer: with `[auth]` configured, every registry request is authenticated (a Bearer
//! token we signed, Basic credentials checked by `auth::Auth`, a verified client certificate,
//! or nothing: the anonymous subject) and checked against what its route needs (`needs`). It
//! answers 401 UNAUTHORIZED with the `WWW-Authenticate: Bearer realm=…,service=…,scope=…`
//! challenge clients follow to the token endpoint, or 403 DENIED for a known subject without
//! the right; either is counted (`auth_denials`) and logged at DEBUG with the subject and the
//! rule that decided. An allowed request goes on with its `auth::Subject` in its extensions
//! (the catalog filter and the per-client upload cap read it). `/healthz`, `/readyz`,
//! `/metrics` and `/token` pass untouched (the token endpoint checks its own credentials).
//! Without `[auth]` the layer passes everything. It decides nothing itself: `auth` does.

mod needs;
mod refuse;

use crate::auth::{Auth, Credentials, Failure, Kind, Subject};
use crate::body::Body;
use crate::listener::ClientCert;
use crate::proxy::error::RegistryError;
use crate::proxy::{handlers, route, App};
use futures_util::future::{BoxFuture, Either};
use http::request::Parts;
use http::{header, Method, Request, Response};
use needs::{needs, without_mount, Needs};
use refuse::Refuse;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Clone)]
pub struct AuthLayer {
    app: Arc<App>,
}

impl AuthLayer {
    pub fn new(app: Arc<App>) -> AuthLayer {
        AuthLayer { app }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            app: self.app.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    app: Arc<App>,
}

impl<S, B> tower::Service<Request<B>> for AuthService<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + Unpin + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response<Body>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(auth) = self.app.auth.clone() else {
            return Either::Left(self.inner.call(req));
        };
        // The clone is ready only if polled; the ready one goes with this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let app = self.app.clone();
        Either::Right(Box::pin(async move {
            // The head alone crosses the awaits (the body need not be `Sync`).
            let (mut parts, body) = req.into_parts();
            let head = parts.method == Method::HEAD;
            match authorize(&app, &auth, &mut parts).await {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(e) => {
                    // A client that waits for `100 Continue` has sent no body yet: reading it
                    // would invite it (hyper sends the 100 when the body is first polled).
                    let expects_continue = parts
                        .headers
                        .get(header::EXPECT)
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
                    if !expects_continue {
                        drain_small(body).await;
                    }
                    Ok(e.into_response(head))
                }
            }
        }))
    }
}

/// Most of a refused request's body read before the refusal goes out.
const DRAIN_MAX: usize = 256 * 1024;
/// How long reading it may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Read (and drop) up to `DRAIN_MAX` bytes of a refused request's body, for at most
/// `DRAIN_TIME`. A client that streams its body through a pipe (containerd's `ctr push` sends a
/// manifest so) stops reading once the answer comes and would block forever writing a body
/// nobody reads; Go's servers (distribution) read up to 256 KiB for the same reason. A larger
/// or slower body is left: the answer then closes the connection (`early_answer`).
async fn drain_small<B: http_body::Body + Unpin>(mut body: B) {
    use http_body_util::BodyExt;
    let mut read = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while read <= DRAIN_MAX {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(d) = frame.data_ref() {
                        read += bytes::Buf::remaining(d);
                    }
                }
                _ => break,
            }
        }
    })
    .await;
}

/// Who sent the request.
enum Who {
    /// A token we signed, with what it grants.
    Token(Arc<crate::auth::token::Verified>),
    /// Basic credentials, a client certificate, or no one.
    Subject(Subject),
}

async fn identify(auth: &Auth, req: &Parts) -> Result<Who, Failure> {
    match Credentials::from_header(req.headers.get(header::AUTHORIZATION))? {
        Some(Credentials::Bearer(token)) => auth.tokens.verify(&token).map(Who::Token),
        Some(Credentials::Basic { user, password }) => {
            auth.password(&user, &password).await.map(Who::Subject)
        }
        None => Ok(Who::Subject(match req.extensions.get::<ClientCert>() {
            Some(cert) => Subject::new(&cert.0, Kind::Certificate),
            None => Subject::anonymous(),
        })),
    }
}

async fn authorize(app: &App, auth: &Auth, req: &mut Parts) -> Result<(), RegistryError> {
    let path = req.uri.path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics" | "/token") {
        return Ok(());
    }
    let route = route::parse(path).ok();
    if let Some(r) = &route {
        handlers::note(r);
    }
    let need = route
        .as_ref()
        .map(|r| needs(r, &req.method, req.uri.query()));
    let refuse = Refuse {
        app,
        auth,
        req,
        need: need.as_ref(),
    };
    let who = match identify(auth, req).await {
        Ok(who) => who,
        Err(Failure::Unavailable(why)) => return Err(RegistryError::Unavailable(why)),
        Err(f) => {
            let bearer = req
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("bearer"));
            return Err(refuse.unauthorized(&f, bearer));
        }
    };
    let subject = match &who {
        Who::Token(t) => t.subject.clone(),
        Who::Subject(s) => s.clone(),
    };
    let anonymous = subject.is_anonymous();
    if !anonymous {
        crate::metrics::request::set_subject(&subject.name);
    }
    match (need.as_ref(), &who) {
        (None | Some(Needs::SignedIn), _) if anonymous && matches!(who, Who::Subject(_)) => {
            return Err(refuse.unauthenticated());
        }
        (None | Some(Needs::SignedIn), _) => {}
        (Some(Needs::Catalog), Who::Token(t)) => {
            if !t.access.iter().any(|a| a.is_catalog()) {
                return Err(if anonymous {
                    refuse.unauthenticated()
                } else {
                    refuse.insufficient_scope(&subject)
                });
            }
        }
        (Some(Needs::Catalog), Who::Subject(_)) => {
            if anonymous {
                return Err(refuse.unauthenticated());
            }
        }
        (
            Some(Needs::Repository {
                name,
                action,
                mount_from,
            }),
            _,
        ) => {
            let (allowed, decided) = match &who {
                Who::Token(t) => (t.access.iter().any(|a| a.allows(name, *action)), None),
                Who::Subject(s) => {
                    let (ok, d) = auth.rules.allows(s, name, *action);
                    (ok, Some(d))
                }
            };
            if !allowed {
                // Anonymous (no credentials, or a token got without them): 401, so the client
                // asks its user to sign in; a known subject: 403.
                return Err(match (&who, decided) {
                    (_, _) if anonymous => refuse.unauthenticated(),
                    (Who::Token(_), _) => refuse.insufficient_scope(&subject),
                    (_, d) => refuse.forbidden(&subject, name, *action, d),
                });
            }
            if let Some(from) = mount_from {
                let may_read = match &who {
                    Who::Token(t) => t
                        .access
                        .iter()
                        .any(|a| a.allows(from, crate::auth::Action::Pull)),
                    Who::Subject(s) => auth.rules.allows(s, from, crate::auth::Action::Pull).0,
                };
                if !may_read {
                    drop_mount(req);
                }
            }
        }
    }
    req.extensions.insert(subject);
    if let Some(r) = route {
        // Dispatch uses it rather than parse the path again (a mount dropped above changed
        // only the query).
        req.extensions.insert(r);
    }
    Ok(())
}

/// Turn a mount from a repository the subject may not read into a plain upload.
fn drop_mount(req: &mut Parts) {
    let uri = &req.uri;
    let query = without_mount(uri.query().unwrap_or(""));
    let path_and_query = if query.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{query}", uri.path())
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(u) = http::Uri::from_parts(parts) {
            req.uri = u;
        }
    }
}
