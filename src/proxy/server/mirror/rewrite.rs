//! The mirror's rewriting as a pure function: a request's method, path and query, and the
//! configured `[[mirror.routes]]`, become "untouched", a new path and query (the name moved under
//! its route's prefix, `ns` dropped), or a refusal. No I/O, no logging: the layer does those.
//!
//! The name is the path's leading segments after `/v2/`, so a route's prefix goes right after
//! `/v2/` without parsing the rest; whether the result is a route (and a name ECR can hold) is
//! `route::parse`'s to say, later, as for any request.

use crate::config::MirrorRoute;
use crate::proxy::error::RegistryError;
use crate::proxy::route::query_param;
use http::Method;

/// A request to go on with another path and query.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten<'r> {
    /// The new path and query (`ns` removed; other parameters as sent, in order).
    pub path_and_query: String,
    /// The route that moved the name, if one did (`/v2/?ns=…` only loses its `ns`).
    pub route: Option<&'r MirrorRoute>,
}

/// A request answered here.
#[derive(Debug)]
pub struct Refused {
    pub error: RegistryError,
    /// The path with the name moved, when a route moved it (the log and metrics name it).
    pub path: Option<String>,
}

/// The route a name sent without `ns` belongs to: Docker's `registry-mirrors` sends Docker Hub
/// names so, for the default route, unless the name is already an ECR name under a route's
/// prefix (the mirrored repositories, named as they are).
pub fn default_route<'r>(routes: &'r [MirrorRoute], name: &str) -> Option<&'r MirrorRoute> {
    routes
        .iter()
        .find(|r| r.default)
        .filter(|_| !routes.iter().any(|r| name.starts_with(&r.prefix)))
}

/// What the mirror does with `method path?query`: `Ok(None)` leaves it untouched.
pub fn rewrite<'r>(
    routes: &'r [MirrorRoute],
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Result<Option<Rewritten<'r>>, Refused> {
    let Some(rest) = path.strip_prefix("/v2") else {
        return Ok(None);
    };
    let ns = query_param(query, "ns");
    if rest.is_empty() || rest == "/" {
        // The version check: `ns` means nothing to it, and is dropped.
        return Ok(ns.map(|_| Rewritten {
            path_and_query: with_query(path, query),
            route: None,
        }));
    }
    let Some(name_on) = rest.strip_prefix('/') else {
        return Ok(None);
    };
    if name_on == "_catalog" {
        return Ok(None);
    }
    let route = match ns {
        Some(registry) => Some(
            routes
                .iter()
                .find(|r| r.registry.eq_ignore_ascii_case(&registry))
                .ok_or_else(|| Refused {
                    error: unknown_registry(&registry, routes),
                    path: None,
                })?,
        ),
        None => default_route(routes, name_on),
    };
    let Some(route) = route else {
        return Ok(None);
    };
    let path = format!("/v2/{}{name_on}", route.prefix);
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Err(Refused {
            error: read_only(method, route, &path),
            path: Some(path),
        });
    }
    Ok(Some(Rewritten {
        path_and_query: with_query(&path, query),
        route: Some(route),
    }))
}

/// `path` with `query`'s parameters other than `ns`.
fn with_query(path: &str, query: Option<&str>) -> String {
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && kv.split_once('=').map_or(*kv, |(k, _)| k) != "ns")
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// The registries this mirror serves, for messages: `docker.io (as docker-hub/), …`.
fn served(routes: &[MirrorRoute]) -> String {
    routes
        .iter()
        .map(|r| format!("{} (as {})", r.registry, r.prefix))
        .collect::<Vec<_>>()
        .join(", ")
}

/// 404 NAME_UNKNOWN: no route for `registry`. NAME_UNKNOWN because a mirror-aware client
/// (containerd) then goes on to its next host, as for a repository this mirror lacks.
fn unknown_registry(registry: &str, routes: &[MirrorRoute]) -> RegistryError {
    RegistryError::NameUnknown(if routes.is_empty() {
        format!("this proxy mirrors no registry (ns={registry}; no [[mirror.routes]] configured)")
    } else {
        format!(
            "this mirror does not serve {registry} (ns={registry}); it serves {}",
            served(routes)
        )
    })
}

/// 405 UNSUPPORTED: a push or delete on a mirrored name. Not 403 DENIED: clients read 403 as
/// "sign in (again)" or "ask for a wider token", and no credentials make this possible; 405 says
/// the method is not allowed on this resource, and UNSUPPORTED the operation, whoever asks.
/// The mirrored repository itself is filled by its ECR name (without `ns`, under the prefix).
fn read_only(method: &Method, route: &MirrorRoute, path: &str) -> RegistryError {
    use crate::proxy::route::{parse, Route::*};
    let repository = match parse(path) {
        Ok(
            Tags { name }
            | Manifest { name, .. }
            | Blob { name, .. }
            | UploadStart { name }
            | Upload { name, .. }
            | Referrers { name, .. },
        ) => name,
        _ => path.trim_start_matches("/v2/").to_string(),
    };
    let name = repository
        .strip_prefix(&route.prefix)
        .unwrap_or(&repository);
    RegistryError::Unsupported(format!(
        "{method} refused: this is a read-only mirror of {} (`{name}` is served from ECR repository `{repository}`); only GET and HEAD are allowed",
        route.registry
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(registry: &str, prefix: &str, default: bool) -> MirrorRoute {
        MirrorRoute {
            registry: registry.into(),
            prefix: prefix.into(),
            default,
        }
    }

    fn routes(default: bool) -> Vec<MirrorRoute> {
        vec![
            route("docker.io", "docker-hub/", default),
            route("ghcr.io", "github/", false),
        ]
    }

    /// The new path and query and the route's registry, or `None` for untouched.
    fn to(routes: &[MirrorRoute], method: Method, uri: &str) -> Option<(String, Option<String>)> {
        let (path, query) = uri
            .split_once('?')
            .map_or((uri, None), |(p, q)| (p, Some(q)));
        rewrite(routes, &method, path, query)
            .expect("not refused")
            .map(|r| (r.path_and_query, r.route.map(|r| r.registry.clone())))
    }

    fn moved(path_and_query: &str, registry: &str) -> Option<(String, Option<String>)> {
        Some((path_and_query.into(), Some(registry.into())))
    }

    fn refused(routes: &[MirrorRoute], method: Method, uri: &str) -> (&'static str, u16, String) {
        let (path, query) = uri
            .split_once('?')
            .map_or((uri, None), |(p, q)| (p, Some(q)));
        let e = rewrite(routes, &method, path, query).expect_err("refused");
        let e = e.error;
        let (code, status) = e.code_and_status();
        (code, status.as_u16(), e.to_string())
    }

    #[test]
    fn ns_moves_the_name_under_the_prefix_and_is_dropped() {
        let r = routes(false);
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for (from, into, registry) in [
            (
                "/v2/library/nginx/manifests/latest?ns=docker.io",
                "/v2/docker-hub/library/nginx/manifests/latest",
                "docker.io",
            ),
            (
                &format!("/v2/library/nginx/blobs/{d}?ns=docker.io"),
                &format!("/v2/docker-hub/library/nginx/blobs/{d}"),
                "docker.io",
            ),
            (
                "/v2/org/tool/tags/list?n=10&ns=ghcr.io&last=a",
                "/v2/github/org/tool/tags/list?n=10&last=a",
                "ghcr.io",
            ),
            (
                "/v2/org/tool/manifests/v1?ns=GHCR.io",
                "/v2/github/org/tool/manifests/v1",
                "ghcr.io",
            ),
            // With `ns` the name is the upstream's, even when it looks like a prefixed one.
            (
                "/v2/docker-hub/x/manifests/v1?ns=docker.io",
                "/v2/docker-hub/docker-hub/x/manifests/v1",
                "docker.io",
            ),
        ] {
            assert_eq!(to(&r, Method::GET, from), moved(into, registry), "{from}");
        }
        assert_eq!(
            to(&r, Method::HEAD, "/v2/library/a/manifests/v1?ns=docker.io"),
            moved("/v2/docker-hub/library/a/manifests/v1", "docker.io")
        );
    }

    #[test]
    fn an_unknown_ns_is_name_unknown_naming_what_is_served() {
        let (code, status, text) = refused(
            &routes(true),
            Method::GET,
            "/v2/prometheus/node/manifests/v1?ns=quay.io",
        );
        assert_eq!((code, status), ("NAME_UNKNOWN", 404));
        assert!(text.contains("quay.io"), "{text}");
        assert!(
            text.contains("docker.io (as docker-hub/), ghcr.io (as github/)"),
            "{text}"
        );
        let (code, _, text) = refused(&[], Method::GET, "/v2/a/b/manifests/v1?ns=docker.io");
        assert_eq!(code, "NAME_UNKNOWN");
        assert!(text.contains("no [[mirror.routes]]"), "{text}");
    }

    #[test]
    fn the_default_route_takes_names_not_under_a_prefix() {
        let r = routes(true);
        assert_eq!(
            to(&r, Method::GET, "/v2/library/nginx/manifests/latest"),
            moved("/v2/docker-hub/library/nginx/manifests/latest", "docker.io")
        );
        for own in [
            "/v2/docker-hub/library/nginx/manifests/latest",
            "/v2/github/org/tool/manifests/v1",
        ] {
            assert_eq!(to(&r, Method::GET, own), None, "{own}");
            assert_eq!(to(&r, Method::PUT, own), None, "{own}");
        }
        // A prefix matches whole segments only.
        assert_eq!(
            to(&r, Method::GET, "/v2/docker-hubby/x/manifests/v1"),
            moved("/v2/docker-hub/docker-hubby/x/manifests/v1", "docker.io")
        );
    }

    #[test]
    fn without_ns_or_default_nothing_changes() {
        let r = routes(false);
        for uri in [
            "/v2/library/nginx/manifests/latest",
            "/v2/team/app/blobs/uploads/",
            "/v2/team/app/tags/list?n=5",
        ] {
            assert_eq!(to(&r, Method::GET, uri), None, "{uri}");
            assert_eq!(to(&r, Method::POST, uri), None, "{uri}");
        }
    }

    #[test]
    fn mirrored_names_are_read_only() {
        for (r, uri) in [
            (routes(false), "/v2/library/app/manifests/v1?ns=docker.io"),
            (routes(false), "/v2/library/app/blobs/uploads/?ns=docker.io"),
            (routes(true), "/v2/library/app/manifests/v1"),
        ] {
            for m in [Method::PUT, Method::POST, Method::PATCH, Method::DELETE] {
                let (code, status, text) = refused(&r, m.clone(), uri);
                assert_eq!((code, status), ("UNSUPPORTED", 405), "{m} {uri}");
                assert!(text.contains(&format!("{m} refused")), "{text}");
                assert!(text.contains("read-only mirror of docker.io"), "{text}");
                assert!(
                    text.contains(
                        "`library/app` is served from ECR repository `docker-hub/library/app`"
                    ),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn base_catalog_and_other_paths_pass() {
        let r = routes(true);
        assert_eq!(
            to(&r, Method::GET, "/v2/?ns=docker.io"),
            Some(("/v2/".into(), None))
        );
        assert_eq!(
            to(&r, Method::GET, "/v2?ns=quay.io&x=1"),
            Some(("/v2?x=1".into(), None))
        );
        for uri in [
            "/v2/",
            "/v2",
            "/v2/_catalog",
            "/v2/_catalog?n=10&ns=docker.io",
            "/healthz",
            "/metrics?ns=docker.io",
            "/token?service=x",
            "/v2x/library/app/manifests/v1",
        ] {
            assert_eq!(to(&r, Method::GET, uri), None, "{uri}");
        }
    }

    #[test]
    fn other_parameters_keep_their_order_and_encoding() {
        assert_eq!(
            with_query("/p", Some("a=1&ns=docker.io&b=%2F&ns=x&")),
            "/p?a=1&b=%2F"
        );
        assert_eq!(with_query("/p", Some("ns=docker.io")), "/p");
        assert_eq!(with_query("/p", None), "/p");
        assert_eq!(with_query("/p", Some("nsx=1&ns")), "/p?nsx=1");
    }

    #[test]
    fn a_prefix_s_stem_is_not_moved_and_its_token_gets_no_alias() {
        let routes = vec![MirrorRoute {
            registry: "docker.io".into(),
            prefix: "docker-hub/".into(),
            default: true,
        }];
        // The layer sees the name with the rest of its path: not moved.
        assert_eq!(
            rewrite(&routes, &Method::GET, "/v2/docker-hub/manifests/v1", None).unwrap(),
            None
        );
        // The token endpoint asks the same way, so it adds no alias for `docker-hub`.
        assert!(default_route(&routes, "docker-hub/").is_none());
        assert!(default_route(&routes, "library/nginx/").is_some());
    }
}
