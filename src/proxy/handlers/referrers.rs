//! `/v2/<name>/referrers/<digest>[?artifactType=]` via ListImageReferrers: an OCI image index of
//! the manifests whose `subject` is that digest (empty, not 404, when there are none, also when
//! the repository does not exist: the spec forbids 404 here).

use crate::body::{self, Body};
use crate::digest::Digest;
use crate::ecr::ErrorKind;
use crate::proxy::error::RegistryResult;
use crate::proxy::holder::HOLDER_ARTIFACT_TYPE;
use crate::proxy::route::query_param;
use crate::proxy::App;
use http::{header, Response, StatusCode};
use serde_json::{json, Map, Value};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub async fn list(
    app: &App,
    name: &str,
    digest: &Digest,
    query: Option<&str>,
) -> RegistryResult<Response<Body>> {
    let artifact_type = query_param(query, "artifactType").filter(|t| !t.is_empty());
    let referrers = match app
        .ecr
        .list_referrers(name, digest.as_str(), artifact_type.as_deref())
        .await
    {
        Err(e) if e.kind == ErrorKind::RepositoryNotFound => Vec::new(),
        other => other?,
    };
    let manifests: Vec<Value> = referrers
        .into_iter()
        .filter(|r| r.artifact_type.as_deref() != Some(HOLDER_ARTIFACT_TYPE))
        .map(|r| {
            let mut d = json!({ "mediaType": r.media_type, "digest": r.digest, "size": r.size });
            if let Some(t) = r.artifact_type {
                d["artifactType"] = json!(t);
            }
            if !r.annotations.is_empty() {
                let a: Map<String, Value> = r
                    .annotations
                    .into_iter()
                    .map(|(k, v)| (k, json!(v)))
                    .collect();
                d["annotations"] = Value::Object(a);
            }
            d
        })
        .collect();
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, OCI_INDEX);
    if artifact_type.is_some() {
        resp = resp.header("OCI-Filters-Applied", "artifactType");
    }
    Ok(resp
        .body(body::full(index.to_string()))
        .expect("valid response"))
}
