//! Who is asking: the `Subject` every credential check ends in, and `Failure`, why a check
//! did not end in one. Plain data, shared by the credential checks (`htpasswd`, `oidc`,
//! `token`), the rules and the proxy's auth layer; no I/O here.

use std::collections::BTreeMap;
use std::sync::Arc;

/// How a subject proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No credentials: may do only what `anonymous_pull` allows.
    Anonymous,
    /// A user of the htpasswd file.
    Password,
    /// An OIDC JWT given as a password.
    Oidc,
    /// A client certificate verified by `[tls] client_ca`.
    Certificate,
}

/// An authenticated (or anonymous) client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The htpasswd user, the mapped OIDC claim (with its issuer's prefix), the certificate's
    /// common name; `anonymous` for no one.
    pub name: Arc<str>,
    pub kind: Kind,
    /// An OIDC subject's claims whose values are strings, numbers or booleans (as text), for
    /// rules that match on claims; empty for other kinds.
    pub claims: Arc<BTreeMap<String, String>>,
    /// When the credential itself expires (an OIDC JWT's `exp`, seconds since the epoch): a
    /// token the proxy signs for this subject expires no later.
    pub expires: Option<u64>,
}

impl Subject {
    pub fn anonymous() -> Subject {
        Subject {
            name: Arc::from("anonymous"),
            kind: Kind::Anonymous,
            claims: Arc::default(),
            expires: None,
        }
    }

    pub fn new(name: &str, kind: Kind) -> Subject {
        Subject {
            name: Arc::from(name),
            kind,
            claims: Arc::default(),
            expires: None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.kind == Kind::Anonymous
    }
}

/// Why credentials were not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Wrong password, unknown user, bad signature, wrong issuer or audience, malformed: the
    /// text says which (it reaches the client's error `detail` and the DEBUG log).
    #[error("{0}")]
    BadCredentials(String),
    /// A token (ours or an OIDC JWT) past its `exp`.
    #[error("the token has expired")]
    Expired,
    /// The credentials cannot be checked right now (an issuer's keys cannot be fetched): 503,
    /// worth retrying, never read as a wrong password.
    #[error("{0}")]
    Unavailable(String),
}
