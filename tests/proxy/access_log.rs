//! The access log of a real `ecr-proxy serve --local` process (`--log-format json`): one line
//! per request with its status, latency, bytes, client, request id and the ECR request ids it
//! caused; the ordinary 404s of a push only at DEBUG; and `x-request-id` taken or made.

use crate::support::*;
use bytes::Bytes;
use serde_json::Value;
use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const ACCESS: &str = "ecr_proxy::access";

/// A proxy process whose JSON log lines are collected as they come.
pub(crate) struct Served {
    child: std::process::Child,
    addr: String,
    lines: Arc<Mutex<Vec<Value>>>,
    _dir: tempfile::TempDir,
}

impl Served {
    /// `ecr-proxy serve --local` on an ephemeral port with `RUST_LOG` set to `filter`.
    fn start(filter: &str) -> Served {
        Served::start_with(filter, &[])
    }

    /// The same, with more arguments (`--config FILE`).
    pub(crate) fn start_with(filter: &str, args: &[&std::ffi::OsStr]) -> Served {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ecr-proxy"))
            .arg("serve")
            .arg("--local")
            .arg(dir.path())
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env("RUST_LOG", filter)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ecr-proxy starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
                sink.lock().unwrap().push(v);
            }
        });
        let mut served = Served {
            child,
            addr: String::new(),
            lines,
            _dir: dir,
        };
        let listening = served.wait_for("the `registry listening` line", |l| {
            l["fields"]["message"] == "registry listening"
        });
        served.addr = listening["fields"]["addr"].as_str().unwrap().to_string();
        served
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The first line `matches` accepts, waiting up to 20 s for it.
    pub(crate) fn wait_for(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| matches(l)) {
                return l.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ecr-proxy exited ({status}) before logging {what}");
            }
            assert!(Instant::now() < deadline, "no log line for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The access lines of request `id` (after its one line has had time to be written).
    pub(crate) fn access_lines(&mut self, id: &str) -> Vec<Value> {
        self.wait_for(&format!("request {id}"), |l| is_access(l, id));
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|l| is_access(l, id)).cloned().collect()
    }

    /// Every access line written so far.
    fn all_access_lines(&self) -> Vec<Value> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l["target"] == ACCESS)
            .cloned()
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_access(l: &Value, id: &str) -> bool {
    l["target"] == ACCESS && l["fields"]["request_id"] == id
}

/// Send a request with `x-request-id: id`; the answer echoes it.
async fn send(
    p: &Served,
    id: &str,
    method: &str,
    path: &str,
    h: &[(&str, &str)],
    body: Vec<u8>,
) -> Resp {
    let mut headers = vec![("x-request-id", id)];
    headers.extend_from_slice(h);
    let r = request(method, &p.url(path), &headers, body).await;
    assert_eq!(r.header("x-request-id"), id, "{method} {path}");
    r
}

/// The single line of request `id`, checked for the fields every line has.
fn line(p: &mut Served, id: &str, status: u64) -> serde_json::Map<String, Value> {
    let lines = p.access_lines(id);
    assert_eq!(lines.len(), 1, "one line for request {id}: {lines:?}");
    let f = lines[0]["fields"].as_object().unwrap().clone();
    assert_eq!(f["status"], status, "{id}: {f:?}");
    assert!(
        f["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{f:?}"
    );
    assert!(f["total_ms"].as_f64().is_some(), "{f:?}");
    assert!(
        f["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:")),
        "{f:?}"
    );
    assert_eq!(f["complete"], true, "{f:?}");
    f
}

fn ecr_ids(f: &serde_json::Map<String, Value>) -> Vec<String> {
    f.get("ecr_request_ids")
        .and_then(Value::as_str)
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn one_line_per_request_with_what_it_caused() {
    let mut p = Served::start("info");
    let repo = "logs/app";
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let cd = digest(&config);
    let path = format!("/v2/{repo}/blobs/uploads/?digest={cd}");
    let r = send(&p, "push-config", "POST", &path, &[], config.clone()).await;
    assert_eq!(r.status, 201);
    // The check a client makes before pushing a layer: an ordinary 404.
    let layer = data(61, 11 * MIB);
    let ld = digest(&layer);
    let blob = format!("/v2/{repo}/blobs/{ld}");
    let r = send(&p, "head-missing", "HEAD", &blob, &[], vec![]).await;
    assert_eq!(r.status, 404);
    let path = format!("/v2/{repo}/blobs/uploads/?digest={ld}");
    let r = send(&p, "push-layer", "POST", &path, &[], layer.clone()).await;
    assert_eq!(r.status, 201);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let tag = format!("/v2/{repo}/manifests/v1");
    let ct = [("Content-Type", OCI)];
    let r = send(
        &p,
        "push-manifest",
        "PUT",
        &tag,
        &ct,
        manifest.clone().into_bytes(),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = send(&p, "pull-manifest", "GET", &tag, &[("Accept", OCI)], vec![]).await;
    assert_eq!(r.body, manifest.as_bytes());
    let r = send(&p, "pull-layer", "GET", &blob, &[], vec![]).await;
    assert!(
        r.status == 200 && r.body == layer,
        "layer GET: {}",
        r.status
    );
    let r = send(
        &p,
        "get-missing",
        "GET",
        "/v2/logs/none/tags/list",
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404);
    let missing = format!("/v2/{repo}/manifests/nope");
    let r = send(&p, "manifest-missing", "GET", &missing, &[], vec![]).await;
    assert_eq!(r.status, 404);
    let r = send(&p, "bad-method", "DELETE", "/v2/", &[], vec![]).await;
    assert_eq!(r.status, 405);

    let f = line(&mut p, "push-config", 201);
    assert_eq!(
        (f["method"].as_str(), f["route"].as_str()),
        (Some("POST"), Some("upload"))
    );
    assert_eq!(f["repository"], repo);
    assert_eq!(f["bytes_in"], config.len() as u64);
    // InitiateLayerUpload (refused: no repository yet), CreateRepository, InitiateLayerUpload,
    // UploadLayerPart, CompleteLayerUpload: failed calls have request ids too.
    let ids = ecr_ids(&f);
    assert_eq!(ids.len(), 5, "{f:?}");
    assert!(
        ids.iter().all(|i| uuid::Uuid::parse_str(i).is_ok()),
        "{ids:?}"
    );
    let f = line(&mut p, "push-layer", 201);
    assert_eq!(f["bytes_in"], layer.len() as u64);
    // InitiateLayerUpload, two UploadLayerParts (one sent from its own task), Complete.
    assert_eq!(ecr_ids(&f).len(), 4, "{f:?}");
    let f = line(&mut p, "push-manifest", 201);
    assert_eq!(f["route"], "manifest");
    assert_eq!(f["bytes_in"], manifest.len() as u64);
    assert_eq!(ecr_ids(&f).len(), 1, "PutImage: {f:?}");
    let f = line(&mut p, "pull-manifest", 200);
    assert_eq!(f["bytes_out"], manifest.len() as u64);
    let f = line(&mut p, "pull-layer", 200);
    assert_eq!(
        (f["bytes_out"].as_u64(), f["bytes_in"].as_u64()),
        (Some(layer.len() as u64), Some(0))
    );
    assert_eq!(ecr_ids(&f).len(), 1, "GetDownloadUrlForLayer: {f:?}");
    let f = line(&mut p, "bad-method", 405);
    assert_eq!(
        (f["code"].as_str(), f["route"].as_str()),
        (Some("UNSUPPORTED"), Some("base"))
    );
    // A 404 outside a pull's lookups is INFO, with its code and the error's text.
    let f = line(&mut p, "get-missing", 404);
    assert_eq!(
        (f["code"].as_str(), f["route"].as_str()),
        (Some("NAME_UNKNOWN"), Some("tags"))
    );
    let error = f["error"].as_str().unwrap_or_default();
    assert!(error.contains("repository name not known"), "{f:?}");
    assert_eq!(p.access_lines("get-missing")[0]["level"], "INFO");
    // The lookups of a blob or manifest not there (yet) are not logged at INFO.
    for id in ["head-missing", "manifest-missing"] {
        assert!(p
            .all_access_lines()
            .iter()
            .all(|l| l["fields"]["request_id"] != id));
    }
    assert!(p.all_access_lines().iter().all(|l| l["level"] == "INFO"));
}

#[tokio::test]
async fn the_ordinary_404s_of_a_push_are_logged_at_debug() {
    let mut p = Served::start("debug");
    let d = digest(b"not pushed");
    let r = send(
        &p,
        "head-no-repo",
        "HEAD",
        &format!("/v2/logs/none/blobs/{d}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 404);
    let r = send(&p, "health", "GET", "/healthz", &[], vec![]).await;
    assert_eq!(r.status, 200);
    let r = send(&p, "scrape", "GET", "/metrics", &[], vec![]).await;
    assert_eq!(r.status, 200);
    for (id, status) in [("head-no-repo", 404), ("health", 200), ("scrape", 200)] {
        let l = &p.access_lines(id)[0];
        assert_eq!(l["level"], "DEBUG", "{l}");
        assert_eq!(l["fields"]["status"], status, "{l}");
    }
    assert_eq!(
        p.access_lines("head-no-repo")[0]["fields"]["code"],
        "NAME_UNKNOWN"
    );
}

#[tokio::test]
async fn request_ids_are_taken_or_made_and_returned() {
    let s = Stack::start().await;
    let given = request(
        "GET",
        &s.url("/v2/"),
        &[("x-request-id", "abc-123")],
        Bytes::new(),
    )
    .await;
    assert_eq!(given.header("x-request-id"), "abc-123");
    let mut made = Vec::new();
    for headers in [
        &[][..],
        &[("x-request-id", "has space")][..],
        &[("x-request-id", &*"x".repeat(129))][..],
    ] {
        // On errors too: an unknown repository's manifest.
        let r = request(
            "GET",
            &s.url("/v2/no/such/manifests/v1"),
            headers,
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 404);
        let id = r.header("x-request-id").to_string();
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "a made id is a UUID: {id:?}"
        );
        made.push(id);
    }
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 3, "each request gets its own id");
}
