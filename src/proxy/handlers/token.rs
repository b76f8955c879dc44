//! The token endpoint (`/token`), the realm of the `WWW-Authenticate` challenges: Docker's token
//! protocol (GET with Basic credentials and `scope=` parameters; no credentials gets an
//! anonymous token) and its OAuth2 form (POST `grant_type=password`, which containerd tries
//! first). The token grants exactly what the rules allow of what was asked. Without `[auth]`
//! there is no such endpoint (404). Credential checks and grants are `auth`'s; this file reads
//! the request and writes the answer.

use crate::auth::{scope, Auth, Credentials, Failure, Kind, Subject};
use crate::body::{self, Body};
use crate::listener::ClientCert;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::App;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

/// The largest POST form read.
const FORM_MAX: usize = 64 * 1024;

/// Every value of `key` in a query string or form body.
fn values(query: &str, key: &str) -> Vec<String> {
    crate::proxy::route::query_params(query, key).collect()
}

pub async fn answer(app: &App, req: Request<Incoming>) -> RegistryResult<Response<Body>> {
    let Some(auth) = app.auth.as_deref() else {
        return Err(RegistryError::NotFound);
    };
    let (subject, form) = match *req.method() {
        Method::GET | Method::HEAD => {
            let query = req.uri().query().unwrap_or("").to_string();
            (basic_subject(app, auth, &req).await?, query)
        }
        Method::POST => {
            let cert = req.extensions().get::<ClientCert>().cloned();
            let bytes = Limited::new(req.into_body(), FORM_MAX)
                .collect()
                .await
                .map_err(|e| RegistryError::Refused(format!("the token request's form: {e}")))?
                .to_bytes();
            let form = String::from_utf8_lossy(&bytes).into_owned();
            let grant = values(&form, "grant_type");
            if grant.first().map(String::as_str) != Some("password") {
                return Err(RegistryError::Refused(
                    "only grant_type=password is supported here; or GET this endpoint with Basic credentials".into(),
                ));
            }
            let user = values(&form, "username").pop().unwrap_or_default();
            let password = values(&form, "password").pop().unwrap_or_default();
            let subject = if user.is_empty() && password.is_empty() {
                cert.map_or_else(Subject::anonymous, |c| {
                    Subject::new(&c.0, Kind::Certificate)
                })
            } else {
                checked(app, auth, auth.password(&user, &password).await)?
            };
            (subject, form)
        }
        _ => return Err(RegistryError::MethodNotAllowed),
    };
    if let Some(service) = values(&form, "service").first() {
        if *service != auth.service {
            return Err(RegistryError::Refused(format!(
                "this token endpoint signs for service `{}`, not `{service}`",
                auth.service
            )));
        }
    }
    let requested = scope::parse(values(&form, "scope").iter().map(String::as_str))
        .map_err(RegistryError::Refused)?;
    let granted = grant_mirrored(app, auth, &subject, requested);
    let issued = auth.tokens.issue(&subject, granted);
    app.metrics.token_issued();
    let issued_at = issued.issued_at_rfc3339();
    let payload = json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued_at,
    })
    .to_string();
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_LENGTH, payload.len())
        .body(body::full(payload))
        .expect("valid response"))
}

/// The subject of a GET's Basic credentials; a client certificate or no one without them.
async fn basic_subject(app: &App, auth: &Auth, req: &Request<Incoming>) -> RegistryResult<Subject> {
    let creds = Credentials::from_header(req.headers().get(header::AUTHORIZATION));
    match creds {
        Ok(Some(Credentials::Basic { user, password })) => {
            checked(app, auth, auth.password(&user, &password).await)
        }
        Ok(None) => Ok(req
            .extensions()
            .get::<ClientCert>()
            .map_or_else(Subject::anonymous, |c| {
                Subject::new(&c.0, Kind::Certificate)
            })),
        Ok(Some(Credentials::Bearer(_))) => checked(
            app,
            auth,
            Err(Failure::BadCredentials(
                "the token endpoint takes Basic credentials, not a bearer token".into(),
            )),
        ),
        Err(f) => checked(app, auth, Err(f)),
    }
}

/// A credential check's result as the endpoint answers it: 401 with a Basic challenge, or 503
/// when the check could not be made.
fn checked(app: &App, auth: &Auth, r: Result<Subject, Failure>) -> RegistryResult<Subject> {
    r.map_err(|f| {
        if let Failure::Unavailable(why) = f {
            return RegistryError::Unavailable(why);
        }
        app.metrics.auth_denial(match f {
            Failure::Expired => "expired",
            _ => "bad_credentials",
        });
        tracing::debug!(why = %f, "token refused: credentials not accepted");
        RegistryError::Unauthorized {
            why: f.to_string(),
            challenge: format!("Basic realm=\"{}\"", auth.service),
        }
    })
}

/// `Auth::grant`, with names a default mirror route moves (Docker's `registry-mirrors` asks for
/// `repository:library/nginx:pull` and then requests `/v2/library/nginx/…`, which the proxy serves
/// from `docker-hub/library/nginx`): the rules decide on the ECR name, and the token holds the
/// grant under both names, so the request passes whichever name the auth layer sees.
fn grant_mirrored(
    app: &App,
    auth: &Auth,
    subject: &Subject,
    requested: Vec<scope::Access>,
) -> Vec<scope::Access> {
    use crate::proxy::server::mirror::rewrite::default_route;
    let routes = &app.config.mirror_routes;
    let mut moved = Vec::new();
    let requested = requested
        .into_iter()
        .map(|mut a| {
            if a.kind == scope::REPOSITORY {
                // Asked as the mirror layer asks it: the name followed by the rest of a path (a
                // name that is a prefix's stem, `docker-hub`, is not moved, so gets no alias).
                if let Some(route) = default_route(routes, &format!("{}/", a.name)) {
                    let ecr = format!("{}{}", route.prefix, a.name);
                    moved.push((ecr.clone(), a.name.clone()));
                    a.name = ecr;
                }
            }
            a
        })
        .collect();
    let mut granted = auth.grant(subject, requested);
    let aliases: Vec<scope::Access> = granted
        .iter()
        .filter_map(|a| {
            let (_, client_name) = moved.iter().find(|(ecr, _)| *ecr == a.name)?;
            let mut alias = a.clone();
            alias.name = client_name.clone();
            Some(alias)
        })
        .collect();
    granted.extend(aliases);
    granted
}
