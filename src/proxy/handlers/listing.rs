//! `/v2/<name>/tags/list` (ListImages, tagged, all pages) and `/v2/_catalog`
//! (DescribeRepositories): sorted lexically, `last` exclusive, `n` honoured, and a
//! `Link: <…>; rel="next"` header while more remain (never for `n=0`: an empty page, no link).
//! With `[auth]`, the catalog holds only what the subject may pull or see.

use crate::body::{self, Body};
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::route::query_param;
use crate::proxy::App;
use http::{header, Response, StatusCode};
use serde_json::json;

/// The page after `last` of at most `n` items, and whether more follow.
pub fn page(mut items: Vec<String>, last: Option<&str>, n: Option<usize>) -> (Vec<String>, bool) {
    items.sort();
    items.dedup();
    let start = last.map_or(0, |l| items.partition_point(|i| i.as_str() <= l));
    let rest = &items[start..];
    match n {
        // The spec: n=0 is an empty list and no `Link` (a link would name this same page).
        Some(0) => (Vec::new(), false),
        Some(n) if n < rest.len() => (rest[..n].to_vec(), true),
        _ => (rest.to_vec(), false),
    }
}

fn paging(query: Option<&str>) -> RegistryResult<(Option<String>, Option<usize>)> {
    let n =
        match query_param(query, "n") {
            None => None,
            Some(s) => Some(s.parse::<usize>().map_err(|_| {
                RegistryError::PaginationInvalid(format!("n=`{s}` is not a number"))
            })?),
        };
    Ok((query_param(query, "last"), n))
}

fn listing(
    path: &str,
    key: &str,
    extra: serde_json::Value,
    items: Vec<String>,
    query: Option<&str>,
) -> RegistryResult<Response<Body>> {
    let (last, n) = paging(query)?;
    let (page, more) = page(items, last.as_deref(), n);
    let mut out = extra;
    out[key] = json!(page);
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json");
    if more {
        let next_last = page.last().cloned().unwrap_or_default();
        let enc =
            percent_encoding::utf8_percent_encode(&next_last, percent_encoding::NON_ALPHANUMERIC);
        resp = resp.header(
            header::LINK,
            format!("<{path}?last={enc}&n={}>; rel=\"next\"", n.unwrap_or(0)),
        );
    }
    Ok(resp
        .body(body::full(out.to_string()))
        .expect("valid response"))
}

pub async fn tags(app: &App, name: &str, query: Option<&str>) -> RegistryResult<Response<Body>> {
    paging(query)?;
    let tags = app.ecr.list_tags(name).await?;
    listing(
        &format!("/v2/{name}/tags/list"),
        "tags",
        json!({ "name": name }),
        tags,
        query,
    )
}

/// With `[auth]`, only the repositories `subject` may pull or see are listed (and paged).
pub async fn catalog(
    app: &App,
    query: Option<&str>,
    subject: Option<&crate::auth::Subject>,
) -> RegistryResult<Response<Body>> {
    paging(query)?;
    let mut names = app.ecr.list_repositories().await?;
    if let Some(auth) = &app.auth {
        let anonymous = crate::auth::Subject::anonymous();
        let subject = subject.unwrap_or(&anonymous);
        names.retain(|n| auth.rules.lists(subject, n));
    }
    listing("/v2/_catalog", "repositories", json!({}), names, query)
}

#[cfg(test)]
mod tests {
    use super::page;

    #[test]
    fn pages() {
        let items: Vec<String> = ["b", "a", "d", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            page(items.clone(), None, None),
            (vec!["a".into(), "b".into(), "c".into(), "d".into()], false)
        );
        assert_eq!(
            page(items.clone(), None, Some(2)),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            page(items.clone(), Some("b"), Some(2)),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(
            page(items.clone(), Some("bb"), Some(1)),
            (vec!["c".into()], true)
        );
        assert_eq!(page(items.clone(), Some("d"), None), (vec![], false));
        assert_eq!(page(items.clone(), None, Some(0)), (vec![], false));
        assert_eq!(page(items, Some("a"), Some(0)), (vec![], false));
    }
}
