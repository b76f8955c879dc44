//! A scripted stand-in for ECR on loopback, so that any exception name, with any status, reaches
//! the proxy through aws-sdk-ecr exactly as ECR would send it (AWS JSON 1.1, `__type`,
//! `x-amzn-RequestId`). Each case gets its own repository name (`caseN/x`); the case's
//! operation fails with its exception (or, for a per-item failure, answers 200 with it in
//! `failures`), every other operation succeeds minimally. It checks no signatures and keeps no
//! data. Also starts a proxy in front of it.

use ecr_proxy::config::{self, Flags};
use ecr_proxy::ecr::Upstream;
use ecr_proxy::proxy::{self as registry, RunningProxy};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One scripted failure.
#[derive(Clone, Debug)]
pub struct Case {
    /// The ECR operation that fails.
    pub op: &'static str,
    pub code: String,
    pub status: u16,
    pub message: String,
    /// Answer 200 with the code as a per-item `failureCode` (batch operations).
    pub item_failure: bool,
}

#[derive(Default)]
struct Script {
    cases: Vec<Case>,
    /// For calls without a repository name (DescribeRepositories).
    catalog: Option<Case>,
    /// Every call: (operation, repositoryName).
    calls: Vec<(String, String)>,
}

pub struct FakeEcr {
    addr: std::net::SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEcr {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeEcr {
    pub async fn start() -> FakeEcr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake ECR");
        let addr = listener.local_addr().expect("address");
        let script = Arc::new(Mutex::new(Script::default()));
        let shared = script.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let script = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let script = script.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(&script, req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        FakeEcr { addr, script, task }
    }

    /// Add a case; returns the repository name that selects it.
    pub fn add(&self, case: Case) -> String {
        let mut s = self.script.lock().unwrap();
        s.cases.push(case);
        format!("case{}/x", s.cases.len() - 1)
    }

    /// Every call so far: (operation, repositoryName or "").
    pub fn calls(&self) -> Vec<(String, String)> {
        self.script.lock().unwrap().calls.clone()
    }

    pub fn set_catalog(&self, case: Option<Case>) {
        self.script.lock().unwrap().catalog = case;
    }

    /// A proxy (create-on-push on, defaults otherwise) in front of this fake.
    pub async fn proxy(&self) -> RunningProxy {
        proxy_to(&format!("http://{}", self.addr)).await
    }
}

/// A proxy whose ECR endpoint is `endpoint`.
pub async fn proxy_to(endpoint: &str) -> RunningProxy {
    let vars: HashMap<String, String> = [
        ("ECR_PROXY_CREATE_REPOSITORIES", "true"),
        ("ECR_PROXY_LISTEN", "127.0.0.1:0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut config = config::load(None, &vars, &Flags::default()).expect("valid test config");
    config.upstream = Upstream {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.to_string()),
        static_credentials: Some(("test".into(), "test".into())),
        registry_id: None,
    };
    registry::start(config).await.expect("proxy starts")
}

fn reply(status: u16, body: Value, request_id: &str) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-RequestId", request_id)
        // Retry at once: the SDK retries throttling and 5xx, and the test should not wait.
        .header("x-amz-retry-after", "0")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid reply")
}

async fn answer(
    script: &Mutex<Script>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let input: Value = body
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let index = input["repositoryName"]
        .as_str()
        .and_then(|r| r.strip_prefix("case"))
        .and_then(|r| r.split('/').next())
        .and_then(|n| n.parse::<usize>().ok());
    let case = {
        let mut s = script.lock().unwrap();
        let repo = input["repositoryName"].as_str().unwrap_or("").to_string();
        s.calls.push((op.clone(), repo));
        match index {
            Some(i) => s.cases.get(i).cloned(),
            None => s.catalog.clone(),
        }
    };
    let rid = format!(
        "req-{}-{op}",
        index.map_or("catalog".into(), |i| i.to_string())
    );
    if let Some(c) = &case {
        if c.op == op && c.item_failure {
            let failure = json!({ "imageId": input["imageIds"][0], "failureCode": c.code, "failureReason": c.message });
            return reply(200, json!({ "imageIds": [], "failures": [failure] }), &rid);
        }
        if c.op == op {
            return reply(
                c.status,
                json!({ "__type": c.code, "message": c.message }),
                &rid,
            );
        }
        if c.op == "CreateRepository" && op == "InitiateLayerUpload" {
            let e =
                json!({ "__type": "RepositoryNotFoundException", "message": "no such repository" });
            return reply(400, e, &rid);
        }
    }
    reply(200, success(&op, &input), &rid)
}

/// The least each operation answers on success.
fn success(op: &str, input: &Value) -> Value {
    match op {
        "InitiateLayerUpload" => {
            json!({ "uploadId": "6cb64b8a-9378-0e33-2ab1-b780fab8a9e9", "partSize": 10485760 })
        }
        "UploadLayerPart" => json!({ "lastByteReceived": input["partLastByte"] }),
        "CompleteLayerUpload" => json!({ "layerDigest": input["layerDigests"][0] }),
        "BatchCheckLayerAvailability" => json!({ "layers": [], "failures": [] }),
        "BatchGetImage" => json!({ "images": [], "failures": [{
            "imageId": input["imageIds"][0], "failureCode": "ImageNotFound",
            "failureReason": "Requested image not found" }] }),
        "BatchDeleteImage" => json!({ "imageIds": [input["imageIds"][0]], "failures": [] }),
        "ListImages" => json!({ "imageIds": [] }),
        "DescribeRepositories" => json!({ "repositories": [] }),
        "CreateRepository" => {
            json!({ "repository": { "repositoryName": input["repositoryName"] } })
        }
        "ListImageReferrers" => json!({ "referrers": [] }),
        _ => json!({}),
    }
}
