//! Request dispatch: parse the route, note it in the request's span and record (the access log
//! and the metrics read it there), call the resource's handler, and hand any error to
//! `RegistryError::into_response`; also `/healthz`, `/readyz` and `/metrics` (answered by
//! `health`, which the admin listener shares). One file per resource under `handlers/`. Handlers must not build error bodies themselves, nor call
//! `aws_sdk_ecr` (they use `ecr::Ecr`), nor log each request (the access-log layer does, once).

mod blobs;
pub(super) mod health;
mod listing;
mod manifests;
mod referrers;
mod token;
mod uploads;

use super::error::{RegistryError, RegistryResult};
use super::route::{self, Route, RouteError};
use super::App;
use crate::body::{self, Body};
use crate::metrics::request;
use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::sync::Arc;

pub async fn dispatch(
    app: Arc<App>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let head = req.method() == Method::HEAD;
    match req.uri().path() {
        "/healthz" => {
            note_route("health", None);
            return Ok(health::healthz());
        }
        "/readyz" => {
            note_route("health", None);
            return Ok(health::readyz(&app).await);
        }
        "/metrics" => {
            note_route("metrics", None);
            return Ok(scrape(&app, req.method()).unwrap_or_else(|e| e.into_response(head)));
        }
        "/token" => {
            note_route("token", None);
            return Ok(token::answer(&app, req)
                .await
                .unwrap_or_else(|e| e.into_response(head)));
        }
        _ => {}
    }
    // Parsed once: the auth layer, when it runs, leaves the route it parsed for the request.
    let parsed = match req.extensions_mut().remove::<Route>() {
        Some(r) => Ok(r),
        None => route::parse(req.uri().path()),
    };
    let route = match parsed {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, RouteError::UnstoredBlob(_)) {
                note_route("blob", None);
            }
            return Ok(route_error(e, req.method()).into_response(head));
        }
    };
    note(&route);
    let method = req.method().clone();
    let result = handle(&app, method, route, req).await;
    Ok(result.unwrap_or_else(|e| e.into_response(head)))
}

/// `route`'s kind and repository, into the request's record and span (the auth layer notes
/// them too, so a refused request is logged and counted with its route).
pub(super) fn note(route: &Route) {
    note_route(route_kind(route), route_name(route));
}

/// The route's kind and repository, into the request's record and span.
fn note_route(kind: &'static str, repository: Option<&str>) {
    request::set_route(kind, repository);
    let span = tracing::Span::current();
    span.record("route", kind);
    if let Some(name) = repository {
        span.record("repository", name);
    }
}

/// `GET /metrics`: every metric, in the Prometheus text format.
fn scrape(app: &App, method: &Method) -> RegistryResult<Response<Body>> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Err(RegistryError::MethodNotAllowed);
    }
    health::scrape(app, *method == Method::HEAD)
        .map_err(|e| RegistryError::Unavailable(format!("the metrics could not be encoded: {e}")))
}

async fn handle(
    app: &Arc<App>,
    method: Method,
    route: Route,
    req: Request<Incoming>,
) -> RegistryResult<Response<Body>> {
    match (method, route) {
        (Method::GET | Method::HEAD, Route::Base) => Ok(empty(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body::full("{}"))
            .expect("valid")),
        (Method::POST, Route::UploadStart { name }) => uploads::start(app, &name, req).await,
        (Method::PATCH, Route::Upload { name, id }) => uploads::patch(app, &name, &id, req).await,
        (Method::PUT, Route::Upload { name, id }) => uploads::put(app, &name, &id, req).await,
        (Method::GET, Route::Upload { name, id }) => uploads::status(app, &name, &id).await,
        (Method::DELETE, Route::Upload { name, id }) => uploads::cancel(app, &name, &id).await,
        (Method::HEAD, Route::Blob { name, digest }) => blobs::head(app, &name, &digest).await,
        (Method::GET, Route::Blob { name, digest }) => {
            let range = req
                .headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            blobs::get(app, &name, &digest, range.as_deref()).await
        }
        (m @ (Method::GET | Method::HEAD), Route::Manifest { name, reference }) => {
            manifests::get(app, &name, &reference, req.headers(), m == Method::HEAD).await
        }
        (Method::DELETE, Route::Manifest { name, reference }) => {
            manifests::delete(app, &name, &reference).await
        }
        (Method::GET, Route::Tags { name }) => listing::tags(app, &name, req.uri().query()).await,
        (Method::GET, Route::Catalog) => {
            let subject = req.extensions().get::<crate::auth::Subject>();
            listing::catalog(app, req.uri().query(), subject).await
        }
        (Method::GET, Route::Referrers { name, digest }) => {
            referrers::list(app, &name, &digest, req.uri().query()).await
        }
        (Method::DELETE, Route::Blob { .. }) => Err(RegistryError::Unsupported(
            "ECR cannot delete a layer; delete the manifests that use it".into(),
        )),
        (Method::PUT, Route::Manifest { name, reference }) => {
            manifests::put(app, &name, &reference, req).await
        }
        _ => Err(RegistryError::MethodNotAllowed),
    }
}

fn route_error(e: RouteError, method: &Method) -> RegistryError {
    match e {
        // No blob of another algorithm can exist here: reading one finds nothing, and deleting
        // one is what ECR cannot do for any blob.
        RouteError::UnstoredBlob(d) if *method == Method::DELETE => {
            RegistryError::Unsupported(format!("ECR cannot delete a layer (and stores no `{d}`)"))
        }
        RouteError::UnstoredBlob(d) if matches!(*method, Method::GET | Method::HEAD) => {
            RegistryError::BlobUnknown(format!("`{d}`: ECR stores only sha256 digests"))
        }
        RouteError::UnstoredBlob(d) => {
            RegistryError::DigestInvalid(format!("`{d}` is not a sha256 digest"))
        }
        RouteError::NotFound => RegistryError::NotFound,
        RouteError::NameInvalid(n, why) => {
            RegistryError::NameInvalid(format!("`{n}` cannot be a repository here: {why}"))
        }
        RouteError::DigestInvalid(d) => {
            RegistryError::DigestInvalid(format!("`{d}` is not a sha256 digest"))
        }
        RouteError::TagInvalid(t) => RegistryError::TagInvalid(format!("`{t}` is not a valid tag")),
    }
}

fn route_kind(r: &Route) -> &'static str {
    match r {
        Route::Base => "base",
        Route::Catalog => "catalog",
        Route::Tags { .. } => "tags",
        Route::Manifest { .. } => "manifest",
        Route::Blob { .. } => "blob",
        Route::UploadStart { .. } | Route::Upload { .. } => "upload",
        Route::Referrers { .. } => "referrers",
    }
}

fn route_name(r: &Route) -> Option<&str> {
    match r {
        Route::Base | Route::Catalog => None,
        Route::Tags { name } | Route::Manifest { name, .. } | Route::Blob { name, .. } => {
            Some(name)
        }
        Route::UploadStart { name }
        | Route::Upload { name, .. }
        | Route::Referrers { name, .. } => Some(name),
    }
}

/// A response builder with `status`.
fn empty(status: StatusCode) -> http::response::Builder {
    Response::builder().status(status)
}

/// 201 for a blob now in the repository.
fn blob_created(name: &str, digest: &crate::digest::Digest) -> Response<Body> {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/blobs/{digest}"))
        .header("Docker-Content-Digest", digest.as_str())
        .header(header::CONTENT_LENGTH, 0)
        .body(body::empty())
        .expect("valid response")
}
