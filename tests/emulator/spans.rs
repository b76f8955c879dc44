//! Log lines carry their own request's span: calls that wait (injected latency) and calls that
//! fail at once run interleaved on one thread, as under `serve --local`, and every emulator line
//! must sit in exactly one `ecr` span, the one of the call that wrote it.

use crate::support::Env;
use crate::wire::api_post;
use serde_json::Value;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_log_line_carries_its_own_requests_span() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_span_list(true)
        .with_current_span(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let env = Env::start_with(|c| c.faults = "DescribeRepositories:latency=30ms".into()).await;
    let creds = Some(("test", "test"));
    let body = r#"{"repositoryName":"missing"}"#;
    let calls = |n: usize| {
        futures_util::future::join_all((0..n).map(|i| {
            let endpoint = env.endpoint();
            async move {
                if i % 2 == 0 {
                    api_post(&endpoint, "DescribeRepositories", "{}", creds).await
                } else {
                    api_post(&endpoint, "ListImages", body, creds).await
                }
            }
        }))
    };
    // Other tests of this binary run on other threads: once every log site has been reached,
    // make tracing recompute which subscribers want them, so this thread's one is counted.
    calls(2).await;
    tracing::callsite::rebuild_interest_cache();
    captured.0.lock().unwrap().clear();
    for resp in calls(16).await {
        assert!(resp.status == 200 || resp.status == 400, "{}", resp.status);
    }
    drop(env);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let (mut ok_lines, mut failed_lines) = (0, 0);
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("a JSON log line");
        if !v["target"]
            .as_str()
            .unwrap_or("")
            .starts_with("ecr_proxy::emulator")
        {
            continue;
        }
        let ecr: Vec<&Value> = v["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["name"] == "ecr")
            .collect();
        let want = match (
            v["fields"]["message"].as_str(),
            v["fields"]["code"].as_str(),
        ) {
            (Some("ok"), _) => {
                ok_lines += 1;
                "DescribeRepositories"
            }
            (_, Some("RepositoryNotFoundException")) => {
                failed_lines += 1;
                "ListImages"
            }
            _ => continue,
        };
        assert_eq!(ecr.len(), 1, "one request span per line: {line}");
        assert_eq!(ecr[0]["op"], want, "the line's own span: {line}");
    }
    assert_eq!(
        (ok_lines, failed_lines),
        (8, 8),
        "every call logged once:\n{text}"
    );
}
