//! The `[auth]` and `[tls]` sections: who may do what, and the server's certificate. Values only,
//! checked here with messages that say what to fix (a rule with an unknown action, an issuer
//! without a way to get its keys); `crate::auth` and `crate::tls` enforce them. Relative paths
//! are resolved against the config file's folder, so a config and its htpasswd file travel
//! together.

use super::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a rule may grant on a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
    /// See the repository's name in `/v2/_catalog` (pull shows it too).
    Catalog,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::Catalog => "catalog",
        }
    }

    /// The action a token scope names (`pull`, `push`, `delete`; `*` is every one).
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            "catalog" => Some(Action::Catalog),
            _ => None,
        }
    }
}

/// One access rule. The first rule whose subjects and repositories match a request decides it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Subject names or globs (`*` is any authenticated subject; `repo:org/*` a pattern).
    pub subjects: Vec<String>,
    /// Claims an OIDC subject must also carry: claim name → glob over its string value.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// Repository globs (`*` matches `/` too).
    pub repositories: Vec<String>,
    /// What the subject may do there; empty denies.
    pub actions: Vec<Action>,
}

/// An OIDC issuer whose JWTs are accepted as passwords.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// The `iss` claim, exactly (`https://token.actions.githubusercontent.com`).
    pub issuer: String,
    /// Accepted `aud` values; a token must carry one of them.
    pub audiences: Vec<String>,
    /// Where the keys are; without it (and without `jwks_file`) they are found through
    /// `{issuer}/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// A local JWKS file (air-gapped sites), re-read when it changes.
    pub jwks_file: Option<PathBuf>,
    /// The claim that names the subject (`sub` unless set).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// Put before the claim's value, so subjects of different issuers cannot collide
    /// (`github:`); empty unless set.
    #[serde(default)]
    pub subject_prefix: String,
}

fn default_subject_claim() -> String {
    "sub".into()
}

/// `[auth]`, checked.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub htpasswd: Option<PathBuf>,
    pub issuers: Vec<Issuer>,
    pub rules: Vec<Rule>,
    /// Repository globs anyone may pull without credentials.
    pub anonymous_pull: Vec<String>,
    /// The token endpoint's absolute URL for `WWW-Authenticate`; without it, built from the
    /// request's `Host` (`http(s)://HOST/token`).
    pub realm: Option<String>,
    /// The `service` of challenges and tokens.
    pub service: String,
    /// HMAC key for the tokens the proxy signs (replicas must share it); generated at start if
    /// unset.
    pub token_key_file: Option<PathBuf>,
    pub token_ttl: Duration,
    /// Concurrent bcrypt checks (each costs milliseconds of CPU); more wait.
    pub max_password_checks: usize,
}

/// `[tls]`, checked.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA bundle for client certificates (mTLS); a verified certificate's subject CN is an
    /// identity.
    pub client_ca: Option<PathBuf>,
    /// Refuse connections without a client certificate (only with `client_ca`).
    pub client_cert_required: bool,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthFile {
    htpasswd: Option<PathBuf>,
    #[serde(default)]
    issuers: Vec<Issuer>,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    anonymous_pull: Vec<String>,
    realm: Option<String>,
    service: Option<String>,
    token_key_file: Option<PathBuf>,
    token_ttl_secs: Option<u64>,
    max_password_checks: Option<usize>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    client_cert_required: Option<bool>,
}

fn invalid(msg: String) -> ConfigError {
    ConfigError::Invalid(msg)
}

fn under(base: &Path, p: PathBuf) -> PathBuf {
    if p.is_relative() {
        base.join(p)
    } else {
        p
    }
}

/// `[auth]` as given, or `None` when the section is absent.
pub(super) fn auth(f: Option<AuthFile>, base: &Path) -> Result<Option<AuthSettings>, ConfigError> {
    let Some(f) = f else { return Ok(None) };
    if f.htpasswd.is_none() && f.issuers.is_empty() && f.anonymous_pull.is_empty() {
        return Err(invalid(
            "auth: give `htpasswd`, at least one `[[auth.issuers]]` or `anonymous_pull` \
             (an [auth] section with none of them admits nobody)"
                .into(),
        ));
    }
    for (i, r) in f.rules.iter().enumerate() {
        let n = i + 1;
        if r.subjects.is_empty() {
            return Err(invalid(format!(
                "auth.rules #{n}: `subjects` is empty (use [\"*\"] for any signed-in subject)"
            )));
        }
        if r.repositories.is_empty() {
            return Err(invalid(format!(
                "auth.rules #{n}: `repositories` is empty (use [\"*\"] for every repository)"
            )));
        }
    }
    for i in &f.issuers {
        if i.audiences.is_empty() {
            return Err(invalid(format!(
                "auth.issuers `{}`: `audiences` is empty; name the audience your tokens are \
                 minted for (GitHub Actions: the `audience` input of the token request)",
                i.issuer
            )));
        }
        if i.jwks_url.is_some() && i.jwks_file.is_some() {
            return Err(invalid(format!(
                "auth.issuers `{}`: give `jwks_url` or `jwks_file`, not both",
                i.issuer
            )));
        }
    }
    let unprefixed = f
        .issuers
        .iter()
        .filter(|i| i.subject_prefix.is_empty())
        .count();
    if unprefixed > 1 {
        return Err(invalid(
            "auth.issuers: more than one issuer without a `subject_prefix`: their subjects \
             would share one namespace (another issuer could mint a subject your rules name); \
             give each a prefix such as \"github:\""
                .into(),
        ));
    }
    let ttl = f.token_ttl_secs.unwrap_or(300);
    if !(10..=86_400).contains(&ttl) {
        return Err(invalid(format!(
            "auth.token_ttl_secs: {ttl} must be between 10 and 86400"
        )));
    }
    Ok(Some(AuthSettings {
        htpasswd: f.htpasswd.map(|p| under(base, p)),
        issuers: f
            .issuers
            .into_iter()
            .map(|mut i| {
                i.jwks_file = i.jwks_file.map(|p| under(base, p));
                i
            })
            .collect(),
        rules: f.rules,
        anonymous_pull: f.anonymous_pull,
        realm: f.realm,
        service: f.service.unwrap_or_else(|| "ecr-proxy".into()),
        token_key_file: f.token_key_file.map(|p| under(base, p)),
        token_ttl: Duration::from_secs(ttl),
        max_password_checks: f.max_password_checks.unwrap_or(4).max(1),
    }))
}

/// `[tls]` as given, or `None` when the section is absent.
pub(super) fn tls(f: Option<TlsFile>, base: &Path) -> Result<Option<TlsSettings>, ConfigError> {
    let Some(f) = f else { return Ok(None) };
    let (Some(cert), Some(key)) = (f.cert, f.key) else {
        return Err(invalid(
            "tls: give both `cert` (a PEM certificate chain) and `key` (its PEM private key)"
                .into(),
        ));
    };
    let required = f.client_cert_required.unwrap_or(false);
    if required && f.client_ca.is_none() {
        return Err(invalid(
            "tls.client_cert_required: needs `client_ca`, the CA that signs client certificates"
                .into(),
        ));
    }
    Ok(Some(TlsSettings {
        cert: under(base, cert),
        key: under(base, key),
        client_ca: f.client_ca.map(|p| under(base, p)),
        client_cert_required: required,
    }))
}
