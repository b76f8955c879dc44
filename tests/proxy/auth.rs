//! Authentication and access rules over plain HTTP, against a proxy configured with the issue's
//! example `[auth]` (alice owns `team-a/*`, every signed-in subject may pull, `public/*` is open
//! to anyone): the challenge on every route, Basic and token credentials, 401 and 403, the
//! catalog filter, htpasswd edits, the per-subject upload cap, and refusing to serve a public
//! address without auth. Users are written by Debian's `htpasswd -B` (apache2-utils).

#[path = "auth/denials.rs"]
mod denials;
#[path = "auth/flood.rs"]
mod flood;
#[path = "auth/grants.rs"]
mod grants;
#[path = "auth/logged.rs"]
mod logged;
#[path = "auth/safety.rs"]
mod safety;

use crate::support::*;
use bytes::Bytes;

pub const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// The issue's `[auth]` example, as written, plus a signing key file and a public pattern.
pub const EXAMPLE: &str = r#"
[auth]
htpasswd = "users.htpasswd"
token_key_file = "token.key"
anonymous_pull = ["public/*"]
[[auth.rules]]
subjects = ["alice"]
repositories = ["team-a/*"]
actions = ["pull", "push", "delete"]
[[auth.rules]]
subjects = ["*"]
repositories = ["*"]
actions = ["pull"]
"#;

pub const KEY: &[u8] = b"test-signing-key-0123456789abcdef0123456789";

/// An htpasswd line for `user`, written by `htpasswd -nbB` (bcrypt); `None` when the tool is
/// missing outside CI.
pub fn htpasswd_line(user: &str, password: &str) -> Option<String> {
    if !tool_on_path("htpasswd") {
        return None;
    }
    let out = std::process::Command::new("htpasswd")
        .args(["-nbB", user, password])
        .output()
        .expect("htpasswd runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
}

/// A stack with `toml` and alice/bob in its htpasswd file (`None`: htpasswd is missing), blobs
/// streamed (so a GET's body is the blob).
pub async fn stack_with(toml: &str, env: &[(&str, &str)]) -> Option<Stack> {
    let mut env = env.to_vec();
    env.push(("ECR_PROXY_BLOB_MODE", "stream"));
    let users = format!(
        "{}\n{}\n",
        htpasswd_line("alice", "alice-pw")?,
        htpasswd_line("bob", "bob-pw")?
    );
    Some(
        Stack::start_config(
            toml,
            &[("users.htpasswd", users.as_bytes()), ("token.key", KEY)],
            &env,
        )
        .await,
    )
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64_simd::STANDARD.encode_to_string(format!("{user}:{password}"))
    )
}

/// A token from the proxy's token endpoint for `scopes`, with `authorization` (or none).
pub async fn token(s: &Stack, authorization: Option<&str>, scopes: &[&str]) -> String {
    let query: Vec<String> = scopes
        .iter()
        .map(|sc| format!("scope={}", sc.replace(':', "%3A").replace('/', "%2F")))
        .collect();
    let url = s.url(&format!("/token?service=ecr-proxy&{}", query.join("&")));
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let r = request("GET", &url, &headers, Bytes::new()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["token"], v["access_token"]);
    assert!(v["expires_in"].as_u64().unwrap() >= 60);
    v["token"].as_str().unwrap().to_string()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Push a one-layer image to `repo:tag` with `authorization` on every request; the manifest and
/// the layer.
pub async fn push_image(
    s: &Stack,
    repo: &str,
    tag: &str,
    auth: &str,
    seed: u64,
) -> (String, Vec<u8>) {
    let cfg = format!(r#"{{"seed":{seed}}}"#);
    let layer = data(seed, 3000);
    let mut digests = Vec::new();
    for blob in [cfg.as_bytes(), layer.as_slice()] {
        let d = digest(blob);
        let r = request(
            "POST",
            &s.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")),
            &[("Authorization", auth)],
            blob.to_vec(),
        )
        .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        digests.push(d);
    }
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        digests[0],
        cfg.len(),
        digests[1],
        layer.len()
    );
    let r = request(
        "PUT",
        &s.url(&format!("/v2/{repo}/manifests/{tag}")),
        &[("Content-Type", OCI), ("Authorization", auth)],
        m.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    (m, layer)
}
