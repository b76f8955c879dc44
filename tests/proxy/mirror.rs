//! Mirror routing (`[[mirror.routes]]`) over plain HTTP, against a proxy with the issue's
//! `[cache]` and `docker.io` → `docker-hub/` route: an image pushed by its ECR name
//! (`docker-hub/library/app`) pulled as `library/app` with `?ns=docker.io` (manifest by tag and
//! digest, blobs, bytes equal), pushes with `ns` refused as read-only, an unknown `ns` answered
//! NAME_UNKNOWN, a default route serving names without `ns`, and the access rules deciding on
//! the ECR name. `ctr` pulling through a `hosts.toml` mirror is in `mirror/ctr.rs`.

#[path = "mirror/ctr.rs"]
mod ctr;

use crate::support::*;
use bytes::Bytes;

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// The issue's cache and route, with `extra` after (a default flag, an `[auth]` section).
fn config(cache: &std::path::Path, extra: &str) -> String {
    format!(
        "[cache]\ndir = \"{}\"\nmax_size = \"1GiB\"\n[[mirror.routes]]\nregistry = \"docker.io\"\nprefix = \"docker-hub/\"\n{extra}",
        cache.display()
    )
}

/// A one-layer image for this machine's platform whose layer is a real tar archive (ctr unpacks
/// what it pulls).
pub struct Image {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
}

impl Image {
    pub fn new(seed: u64) -> Image {
        let layer = tar_layer("data.bin", &data(seed, 70_000));
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            digest(&layer)
        )
        .into_bytes();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
            digest(&config),
            config.len(),
            digest(&layer),
            layer.len()
        )
        .into_bytes();
        Image {
            manifest,
            config,
            layer,
        }
    }

    /// Push by the ECR name `repo` (no `ns`), tagged `tag`.
    pub async fn push(&self, s: &Stack, repo: &str, tag: &str) {
        crate::uploads::push_blob(s, repo, &self.config).await;
        crate::uploads::push_blob(s, repo, &self.layer).await;
        let r = put_manifest(s, &format!("/v2/{repo}/manifests/{tag}"), &self.manifest).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
}

async fn put_manifest(s: &Stack, path: &str, manifest: &[u8]) -> Resp {
    request(
        "PUT",
        &s.url(path),
        &[("Content-Type", OCI)],
        manifest.to_vec(),
    )
    .await
}

async fn get(s: &Stack, method: &str, path: &str) -> Resp {
    request(method, &s.url(path), &[("Accept", OCI)], Bytes::new()).await
}

/// The error body's detail, for what it names.
fn detail(r: &Resp) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    v["errors"][0]["detail"].as_str().unwrap_or("").to_string()
}

/// `name` pulled with `query` serves `img`: the manifest by tag and by digest, both blobs.
async fn pulls(s: &Stack, name: &str, query: &str, img: &Image) {
    let d = digest(&img.manifest);
    for reference in ["v1", d.as_str()] {
        let r = get(
            s,
            "GET",
            &format!("/v2/{name}/manifests/{reference}{query}"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.body, img.manifest);
        assert_eq!(r.header("docker-content-digest"), d);
        let h = get(
            s,
            "HEAD",
            &format!("/v2/{name}/manifests/{reference}{query}"),
        )
        .await;
        assert_eq!(
            (h.status, h.header("docker-content-digest")),
            (200, d.as_str())
        );
    }
    for blob in [&img.config, &img.layer] {
        let r = get(
            s,
            "GET",
            &format!("/v2/{name}/blobs/{}{query}", digest(blob)),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(digest(&r.body), digest(blob));
        assert_eq!(r.body.as_ref(), blob.as_slice());
    }
}

/// A push or delete of a mirrored name: 405 UNSUPPORTED, `Allow: GET, HEAD`, naming the registry.
fn assert_read_only(r: &Resp) {
    assert_eq!(
        (r.status, r.error_code().as_str(), r.header("allow")),
        (405, "UNSUPPORTED", "GET, HEAD"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        detail(r).contains("read-only mirror of docker.io"),
        "{}",
        detail(r)
    );
}

#[tokio::test]
async fn ns_docker_io_pulls_docker_hub_prefixed_repositories_read_only() {
    let cache = tempfile::tempdir().unwrap();
    let s = Stack::start_config(&config(cache.path(), ""), &[], &[]).await;
    let img = Image::new(1);
    img.push(&s, "docker-hub/library/app", "v1").await;

    pulls(&s, "library/app", "?ns=docker.io", &img).await;
    // containerd's version check carries ns too.
    assert_eq!(get(&s, "GET", "/v2/?ns=docker.io").await.status, 200);
    // Without ns and without a default route, `library/app` is a name of its own.
    let r = get(&s, "GET", "/v2/library/app/manifests/v1").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));

    // Read-only: a manifest PUT, an upload, a delete, all with ns.
    let r = put_manifest(
        &s,
        "/v2/library/app/manifests/v2?ns=docker.io",
        &img.manifest,
    )
    .await;
    assert_read_only(&r);
    assert!(
        detail(&r).contains("`docker-hub/library/app`"),
        "{}",
        detail(&r)
    );
    let r = request(
        "POST",
        &s.url("/v2/library/app/blobs/uploads/?ns=docker.io"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_read_only(&r);
    let d = digest(&img.manifest);
    let r = get(
        &s,
        "DELETE",
        &format!("/v2/library/app/manifests/{d}?ns=docker.io"),
    )
    .await;
    assert_read_only(&r);
    // Nothing was written: no v2 tag, the image still there by its ECR name.
    let r = get(&s, "GET", "/v2/docker-hub/library/app/manifests/v2").await;
    assert_eq!(r.error_code(), "MANIFEST_UNKNOWN");
    let r = get(
        &s,
        "GET",
        &format!("/v2/docker-hub/library/app/manifests/{d}"),
    )
    .await;
    assert_eq!((r.status, r.body.as_ref()), (200, img.manifest.as_slice()));

    // A registry without a route: NAME_UNKNOWN naming it and what is served.
    let r = get(&s, "GET", "/v2/prometheus/node/manifests/v1?ns=quay.io").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
    assert!(
        detail(&r).contains("quay.io") && detail(&r).contains("docker.io (as docker-hub/)"),
        "{}",
        detail(&r)
    );

    // The refusals were counted under their route, as any answer is.
    let m = String::from_utf8_lossy(&get(&s, "GET", "/metrics").await.body).into_owned();
    for line in [
        r#"ecr_proxy_http_requests_total{route="manifest",method="PUT",status="405"} 1"#,
        r#"ecr_proxy_http_requests_total{route="upload",method="POST",status="405"} 1"#,
    ] {
        assert!(m.contains(line), "{line} not in\n{m}");
    }
}

#[tokio::test]
async fn a_default_route_serves_docker_hub_names_without_ns() {
    let cache = tempfile::tempdir().unwrap();
    let s = Stack::start_config(&config(cache.path(), "default = true\n"), &[], &[]).await;
    let img = Image::new(2);
    // Names already under the prefix are ECR names, pushed as they are.
    img.push(&s, "docker-hub/library/app", "v1").await;

    // Docker's `registry-mirrors` asks for `library/app`; containerd still sends ns.
    pulls(&s, "library/app", "", &img).await;
    pulls(&s, "library/app", "?ns=docker.io", &img).await;
    pulls(&s, "docker-hub/library/app", "", &img).await;
    let r = put_manifest(&s, "/v2/library/app/manifests/v2", &img.manifest).await;
    assert_read_only(&r);
    // The catalog is untouched: ECR's names.
    let r = get(&s, "GET", "/v2/_catalog").await;
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v["repositories"],
        serde_json::json!(["docker-hub/library/app"])
    );
}

#[tokio::test]
async fn the_access_rules_decide_on_the_ecr_name() {
    let cache = tempfile::tempdir().unwrap();
    let toml = config(
        cache.path(),
        "[auth]\nanonymous_pull = [\"docker-hub/library/*\"]\n",
    );
    let s = Stack::start_config(&toml, &[], &[("ECR_PROXY_BLOB_MODE", "stream")]).await;
    // Anonymous pulls of docker-hub/library/* pass the rules: the answer is the registry's (no such
    // repository yet), not a challenge.
    let r = get(&s, "GET", "/v2/library/app/manifests/v1?ns=docker.io").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
    // The same name without ns is `library/app`, which anonymous clients may not pull.
    let r = get(&s, "GET", "/v2/library/app/manifests/v1").await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "UNAUTHORIZED"));
    assert!(
        r.header("www-authenticate")
            .contains("scope=\"repository:library/app:pull\""),
        "{}",
        r.header("www-authenticate")
    );
    // Outside the open names, the challenge asks for the ECR name's scope: the token a client
    // gets for it is then checked against the name its next request is moved to.
    let r = get(&s, "GET", "/v2/bitnami/redis/manifests/v1?ns=docker.io").await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .contains("scope=\"repository:docker-hub/bitnami/redis:pull\""),
        "{}",
        r.header("www-authenticate")
    );
}

/// Docker behind `registry-mirrors` with `[auth]`: it asks the token endpoint for its own name's
/// scope (`repository:library/app:pull`); the rules decide on the ECR name, and the token
/// works for the request the mirror moves.
#[tokio::test]
async fn a_token_for_a_docker_hub_name_works_through_a_default_route() {
    let cache = tempfile::tempdir().unwrap();
    let toml = config(
        cache.path(),
        "default = true\n[auth]\nanonymous_pull = [\"docker-hub/library/*\"]\n",
    );
    let s = Stack::start_config(&toml, &[], &[("ECR_PROXY_BLOB_MODE", "stream")]).await;
    let t = request(
        "GET",
        &s.url("/token?service=ecr-proxy&scope=repository%3Alibrary%2Fapp%3Apull"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(t.status, 200);
    let token: serde_json::Value = serde_json::from_slice(&t.body).unwrap();
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    // The manifest is not there yet: the answer is the registry's 404, not a refusal.
    let r = request(
        "GET",
        &s.url("/v2/library/app/manifests/v1"),
        &[("Authorization", &bearer), ("Accept", OCI)],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "NAME_UNKNOWN"),
        "{}",
        detail(&r)
    );
}

/// A prefix's stem (`docker-hub`, a repository of its own) is not a Docker Hub name the
/// default route moves: a token asked for it gets no alias of `docker-hub/docker-hub`'s rights.
#[tokio::test]
async fn a_token_for_a_prefix_s_stem_gets_no_mirrored_rights() {
    let cache = tempfile::tempdir().unwrap();
    let toml = config(
        cache.path(),
        "default = true\n[auth]\nanonymous_pull = [\"docker-hub/*\"]\n",
    );
    let s = Stack::start_config(&toml, &[], &[]).await;
    let t = request(
        "GET",
        &s.url("/token?service=ecr-proxy&scope=repository%3Adocker-hub%3Apull"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(t.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&t.body).unwrap();
    let payload = v["token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    let claims: serde_json::Value =
        serde_json::from_slice(&base64_simd::URL_SAFE_NO_PAD.decode_to_vec(payload).unwrap())
            .unwrap();
    assert_eq!(claims["access"], serde_json::json!([]), "{claims}");
}
