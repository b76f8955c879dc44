//! How the auth layer refuses: the `WWW-Authenticate` challenge (realm, service, the scope the
//! request needs, the RFC 6750 error), the `auth_denials` count by reason, and the DEBUG line
//! with the subject and the rule that decided. Builds `RegistryError`s; decides nothing.

use super::needs::Needs;
use crate::auth::{Auth, Failure, Subject};
use crate::proxy::error::RegistryError;
use crate::proxy::App;
use http::header;
use http::request::Parts;

/// The token endpoint's URL for challenges: `auth.realm`, or this server's scheme and the
/// request's host (when it is a plain host name or address; otherwise the listening address).
fn realm(app: &App, auth: &Auth, req: &Parts) -> String {
    if let Some(r) = &auth.realm {
        return r.clone();
    }
    let scheme = if app.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| app.config.listen.to_string());
    format!("{scheme}://{host}/token")
}

/// Builds refusals: the challenge, the count and the DEBUG line.
pub(super) struct Refuse<'a> {
    pub app: &'a App,
    pub auth: &'a Auth,
    /// The request (its host makes the realm, only when a refusal needs one).
    pub req: &'a Parts,
    pub need: Option<&'a Needs>,
}

impl Refuse<'_> {
    fn challenge(&self, error: Option<&str>) -> String {
        let mut c = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            realm(self.app, self.auth, self.req),
            self.auth.service
        );
        if let Some(scope) = self.scope() {
            c.push_str(&format!(",scope=\"{scope}\""));
        }
        if let Some(e) = error {
            c.push_str(&format!(",error=\"{e}\""));
        }
        c
    }

    /// The scope a client should ask for to make this request.
    fn scope(&self) -> Option<String> {
        use crate::auth::Action::*;
        match self.need? {
            Needs::SignedIn => None,
            Needs::Catalog => Some("registry:catalog:*".into()),
            Needs::Repository { name, action, .. } => Some(match action {
                Push => format!("repository:{name}:pull,push"),
                a => format!("repository:{name}:{}", a.as_str()),
            }),
        }
    }

    pub(super) fn unauthenticated(&self) -> RegistryError {
        self.app.metrics.auth_denial("unauthenticated");
        tracing::debug!(scope = self.scope().as_deref(), "denied: no credentials");
        RegistryError::Unauthorized {
            why: "sign in (docker login) to use this registry".into(),
            challenge: self.challenge(None),
        }
    }

    pub(super) fn unauthorized(&self, f: &Failure, bearer: bool) -> RegistryError {
        let reason = match f {
            Failure::Expired => "expired",
            _ => "bad_credentials",
        };
        self.app.metrics.auth_denial(reason);
        tracing::debug!(why = %f, "denied: credentials not accepted");
        RegistryError::Unauthorized {
            why: f.to_string(),
            challenge: self.challenge(bearer.then_some("invalid_token")),
        }
    }

    pub(super) fn insufficient_scope(&self, subject: &Subject) -> RegistryError {
        self.app.metrics.auth_denial("insufficient_scope");
        let scope = self.scope().unwrap_or_default();
        tracing::debug!(subject = %subject.name, %scope, "denied: the token does not grant it");
        RegistryError::Forbidden {
            why: format!("the token does not grant `{scope}`; ask the token endpoint for it"),
            challenge: Some(self.challenge(Some("insufficient_scope"))),
        }
    }

    pub(super) fn forbidden(
        &self,
        subject: &Subject,
        repository: &str,
        action: crate::auth::Action,
        decided: Option<crate::auth::Decided>,
    ) -> RegistryError {
        self.app.metrics.auth_denial("forbidden");
        let rule = decided.map(|d| d.to_string()).unwrap_or_default();
        tracing::debug!(subject = %subject.name, repository, action = action.as_str(), %rule, "denied by the access rules");
        RegistryError::Forbidden {
            why: format!(
                "`{}` may not {} `{repository}`",
                subject.name,
                match action {
                    crate::auth::Action::Pull => "pull from",
                    crate::auth::Action::Push => "push to",
                    crate::auth::Action::Delete => "delete in",
                    crate::auth::Action::Catalog => "list",
                }
            ),
            challenge: None,
        }
    }
}
