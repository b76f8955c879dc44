//! What a request needs to be allowed: for each route and method, the repository actions (or
//! the catalog, or only to be signed in). Pure; the layer asks it and the rules answer.

use crate::auth::Action;
use crate::proxy::route::{query_param, Route};
use http::Method;

/// What a request must be allowed to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Needs {
    /// `/v2/`: only to be signed in (the version check clients use to find the challenge).
    SignedIn,
    /// `/v2/_catalog`.
    Catalog,
    /// Actions on repositories. A cross-repository mount also names the source, which needs
    /// pull; without it the mount is dropped and the upload starts plain (`optional`).
    Repository {
        name: String,
        action: Action,
        mount_from: Option<String>,
    },
}

/// What `route` needs under `method` (`query` for a mount's `from`).
pub fn needs(route: &Route, method: &Method, query: Option<&str>) -> Needs {
    let action = match *method {
        Method::GET | Method::HEAD => Action::Pull,
        Method::DELETE => Action::Delete,
        _ => Action::Push,
    };
    match route {
        Route::Base => Needs::SignedIn,
        Route::Catalog => Needs::Catalog,
        // An upload's status (GET) and cancel (DELETE) are part of pushing it.
        Route::UploadStart { name } | Route::Upload { name, .. } => Needs::Repository {
            name: name.clone(),
            action: Action::Push,
            mount_from: matches!(route, Route::UploadStart { .. })
                .then(|| query_param(query, "mount").and(query_param(query, "from")))
                .flatten(),
        },
        Route::Tags { name }
        | Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::Referrers { name, .. } => Needs::Repository {
            name: name.clone(),
            action,
            mount_from: None,
        },
    }
}

/// The query without `mount` and `from`: a mount the subject may not read from becomes a plain
/// upload, as the spec allows a registry to do with any mount.
pub fn without_mount(query: &str) -> String {
    query
        .split('&')
        .filter(|kv| {
            let k = kv.split_once('=').map_or(*kv, |(k, _)| k);
            k != "mount" && k != "from"
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::route::parse;

    fn of(method: Method, path: &str, query: Option<&str>) -> Needs {
        needs(&parse(path).unwrap(), &method, query)
    }

    fn repo(name: &str, action: Action, from: Option<&str>) -> Needs {
        Needs::Repository {
            name: name.into(),
            action,
            mount_from: from.map(str::to_string),
        }
    }

    #[test]
    fn each_route_needs_its_action() {
        let d = "sha256:".to_string() + &"a".repeat(64);
        assert_eq!(of(Method::GET, "/v2/", None), Needs::SignedIn);
        assert_eq!(of(Method::GET, "/v2/_catalog", None), Needs::Catalog);
        assert_eq!(
            of(Method::HEAD, &format!("/v2/a/b/blobs/{d}"), None),
            repo("a/b", Action::Pull, None)
        );
        assert_eq!(
            of(Method::PUT, "/v2/ab/manifests/v1", None),
            repo("ab", Action::Push, None)
        );
        assert_eq!(
            of(Method::DELETE, "/v2/ab/manifests/v1", None),
            repo("ab", Action::Delete, None)
        );
        assert_eq!(
            of(Method::GET, "/v2/ab/blobs/uploads/xyz", None),
            repo("ab", Action::Push, None)
        );
        assert_eq!(
            of(Method::DELETE, "/v2/ab/blobs/uploads/xyz", None),
            repo("ab", Action::Push, None)
        );
        assert_eq!(
            of(
                Method::POST,
                "/v2/ab/blobs/uploads/",
                Some(&format!("mount={d}&from=team-b%2Fbase"))
            ),
            repo("ab", Action::Push, Some("team-b/base"))
        );
        assert_eq!(
            without_mount(&format!("mount={d}&from=b&digest=x")),
            "digest=x"
        );
    }
}
