//! Authentication and authorization: who is asking (`subject`; checked by `htpasswd`, `oidc`,
//! our own signed `token`s, or a client certificate the TLS layer verified), and what they may
//! do (`rules`, and `scope`: the token protocol's `repository:NAME:ACTIONS`). `Auth` ties them
//! together for the proxy's auth layer and token endpoint. This module decides; it must not
//! answer HTTP requests (the proxy does, through `RegistryError`) nor call ECR.

pub mod credentials;
pub mod htpasswd;
pub mod oidc;
pub mod rules;
pub mod scope;
pub mod subject;
pub mod token;

pub use crate::config::Action;
pub use credentials::Credentials;
pub use rules::{Decided, Rules};
pub use scope::Access;
pub use subject::{Failure, Kind, Subject};

use crate::config::AuthSettings;

/// Why `[auth]` cannot be put to use at start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Htpasswd(#[from] crate::watch::LoadError),
    #[error(transparent)]
    Oidc(#[from] oidc::SetupError),
    #[error(transparent)]
    TokenKey(#[from] token::KeyError),
}

/// Everything the auth layer and the token endpoint ask.
pub struct Auth {
    pub service: String,
    /// `auth.realm`, when set.
    pub realm: Option<String>,
    pub rules: Rules,
    pub tokens: token::Tokens,
    htpasswd: Option<htpasswd::Htpasswd>,
    oidc: Option<oidc::Oidc>,
}

impl Auth {
    pub fn new(s: &AuthSettings) -> Result<Auth, SetupError> {
        let htpasswd = match &s.htpasswd {
            Some(p) => Some(htpasswd::Htpasswd::load(p, s.max_password_checks)?),
            None => None,
        };
        if let Some(h) = &htpasswd {
            if h.is_empty() {
                tracing::warn!("the htpasswd file has no bcrypt users yet: nobody can sign in with a password until it does");
            }
        }
        if htpasswd.is_some() && s.issuers.iter().any(|i| i.subject_prefix.is_empty()) {
            tracing::warn!(
                "htpasswd users and OIDC subjects without a subject_prefix share one namespace: \
                 a token whose subject is `alice` gets alice's rules; give each issuer a prefix"
            );
        }
        let oidc = if s.issuers.is_empty() {
            None
        } else {
            Some(oidc::Oidc::new(&s.issuers)?)
        };
        Ok(Auth {
            service: s.service.clone(),
            realm: s.realm.clone(),
            rules: Rules::new(s.rules.clone(), s.anonymous_pull.clone()),
            tokens: token::Tokens::new(s.token_key_file.as_deref(), &s.service, s.token_ttl)?,
            htpasswd,
            oidc,
        })
    }

    /// The subject a user name and password prove: an OIDC JWT (any user name) when issuers
    /// are configured and the password is shaped like one, else an htpasswd user.
    pub async fn password(&self, user: &str, password: &str) -> Result<Subject, Failure> {
        if oidc::looks_like_jwt(password) {
            if let Some(o) = &self.oidc {
                match o.verify(password).await {
                    // Not one of our issuers' tokens: it may still be an htpasswd password
                    // that happens to look like one.
                    Err(Failure::BadCredentials(why)) if self.htpasswd.is_some() => {
                        let h = self.htpasswd.as_ref().expect("checked");
                        return h
                            .check(user, password)
                            .await
                            .map_err(|_| Failure::BadCredentials(why));
                    }
                    other => return other,
                }
            }
        }
        match &self.htpasswd {
            Some(h) => h.check(user, password).await,
            None => Err(Failure::BadCredentials(
                "this registry takes only OIDC tokens as passwords, and this is not one".into(),
            )),
        }
    }

    /// Of the access `requested`, what `subject` gets: for each repository the actions the
    /// rules allow among those asked; the catalog for anyone signed in (it lists only what
    /// they may see), never for anonymous clients. Entries with nothing granted are left out.
    pub fn grant(&self, subject: &Subject, requested: Vec<Access>) -> Vec<Access> {
        requested
            .into_iter()
            .filter_map(|mut a| {
                if a.is_catalog() {
                    return (!subject.is_anonymous()).then(Access::catalog);
                }
                if a.kind != scope::REPOSITORY {
                    return None;
                }
                let (allowed, _) = self.rules.granted(subject, &a.name);
                a.actions.retain(|name| {
                    Action::parse(name)
                        .is_some_and(|act| act != Action::Catalog && allowed.contains(&act))
                });
                a.actions.sort();
                a.actions.dedup();
                (!a.actions.is_empty()).then_some(a)
            })
            .collect()
    }
}
