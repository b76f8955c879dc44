//! The error table, walked: every exception name and failure code the emulator can emit (read
//! from `src/emulator`) and every one `shared/reference/ecr-api.md` lists must be classified by
//! the proxy and reach a registry client as the OCI code and status written here, by what it
//! means (client error, not found, denied, throttled, transient). Each is checked through the
//! library's table and, for the operations the proxy calls, end to end: a scripted ECR answers
//! with the exception, aws-sdk-ecr parses it, the proxy answers over HTTP.

#[path = "error_table/cases.rs"]
mod cases;
#[path = "error_table/fake_ecr.rs"]
mod fake_ecr;
#[path = "error_table/referenced.rs"]
mod referenced;
#[path = "error_table/sources.rs"]
mod sources;

use crate::support::*;
use bytes::Bytes;
use cases::{expected, ops_of, All};
use ecr_proxy::ecr::errors;
use ecr_proxy::ecr::EcrError;
use ecr_proxy::proxy::error::RegistryError;
use fake_ecr::{Case, FakeEcr};
use std::time::Duration;

/// Every code from both sources, with where it was found.
fn all_codes() -> All {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let emulator = sources::emulator_codes(&root.join("src/emulator"));
    let reference = sources::reference_codes(&sources::reference_file());
    // The readers must find what is known to be there, or they have stopped reading.
    for c in [
        "ServerException",
        "InvalidParameterException",
        "ImageReferencedByManifestList",
    ] {
        assert!(emulator.contains_key(c), "{c} not found in src/emulator");
    }
    for c in [
        "UnableToGetUpstreamLayerException",
        "InternalFailure",
        "RequestTimeout",
        "KmsError",
        "MissingLayerDigest",
    ] {
        assert!(
            reference.exceptions.contains_key(c) || reference.failure_codes.contains_key(c),
            "{c} not found in the reference"
        );
    }
    All::new(emulator, reference)
}

#[test]
fn every_code_the_emulator_and_reference_name_is_classified() {
    let all = all_codes();
    let mut problems = Vec::new();
    for (code, source) in all.codes() {
        if errors::known(code).is_none() {
            problems.push(format!(
                "{code} ({source}) is not in src/ecr/errors/table.rs"
            ));
            continue;
        }
        for op in ops_of(&all, code) {
            let Some(want) = expected(code, op) else {
                problems.push(format!(
                    "{code} ({source}): say in error_table/cases.rs what a client must see"
                ));
                break;
            };
            let e = RegistryError::from(EcrError::new(errors::classify(code), op, code, "m"));
            let (c, s) = e.code_and_status();
            if (c, s.as_u16()) != want {
                problems.push(format!("{code} from {op}: {c} {s}, want {want:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        all.codes().count() > 60,
        "only {} codes found",
        all.codes().count()
    );
}

/// Sends `case`'s registry request and compares the answer with `want`; a problem, if any.
async fn check(
    base: String,
    case: Case,
    repo: String,
    want: (&'static str, u16),
) -> Option<String> {
    let what = format!("{} from {} (HTTP {})", case.code, case.op, case.status);
    let r = tokio::time::timeout(Duration::from_secs(60), cases::drive(&base, case.op, &repo))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 60 s"));
    let head = cases::is_head(case.op);
    let got = (r.error_code(), r.status);
    if r.status != want.1 || (!head && want.1 >= 400 && got.0 != want.0) {
        return Some(format!(
            "{what}: got {got:?}, want {want:?}: {}",
            String::from_utf8_lossy(&r.body)
        ));
    }
    if head || want.1 < 400 {
        return None;
    }
    let detail = detail_of(&r);
    let retry = r.header("retry-after");
    // An ImageNotFound failure is the handler's own 404; other per-item failures carry the
    // batch call's request id like exceptions do.
    let names = if case.item_failure {
        case.code == "ImageNotFound"
            || (detail.starts_with(&format!("{} from {} (", case.code, case.op))
                && detail.contains(" (request id req-"))
    } else {
        // Where a handler acted on the exception (see `cases::end_to_end`), the answer is
        // about the call that followed.
        let acted = Some(want) != expected(&case.code, case.op);
        detail.contains(" (request id req-")
            && (acted || detail.starts_with(&format!("{} from {} (", case.code, case.op)))
    };
    if !names
        || ["ServiceError", "raw:", "source:"]
            .iter()
            .any(|d| detail.contains(d))
    {
        return Some(format!(
            "{what}: detail {detail:?} should name the exception and request id, no SDK dump"
        ));
    }
    if [429, 503].contains(&r.status) == retry.is_empty() {
        return Some(format!("{what}: {} with Retry-After {retry:?}", r.status));
    }
    None
}

fn detail_of(r: &Resp) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    v["errors"][0]["detail"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exception_reaches_the_client_through_the_sdk_and_the_proxy() {
    let all = all_codes();
    let fake = FakeEcr::start().await;
    let proxy = fake.proxy().await;
    let base = format!("http://{}", proxy.addr());
    let mut runs = Vec::new();
    let mut catalog = Vec::new();
    for (code, _) in all.codes() {
        for op in cases::ops_of(&all, code) {
            let case = Case {
                op,
                code: code.to_string(),
                status: cases::status_of(code),
                message: format!("scripted {code}"),
                item_failure: all.is_failure_code(code),
            };
            let Some(want) = cases::end_to_end(code, op) else {
                continue; // reported by the test above
            };
            if op == "DescribeRepositories" {
                catalog.push((case, want)); // the catalog names no repository: one at a time
                continue;
            }
            let repo = fake.add(case.clone());
            runs.push(check(base.clone(), case, repo, want));
        }
    }
    // A code in no table is sorted by the status ECR answered with, never a blanket 503.
    for (status, want) in [
        (400, ("UNSUPPORTED", 400)),
        (404, ("UNSUPPORTED", 400)),
        (429, ("TOOMANYREQUESTS", 429)),
        (500, ("UNAVAILABLE", 503)),
    ] {
        let case = Case {
            op: "ListImages",
            code: "BrandNewException".into(),
            status,
            message: "new".into(),
            item_failure: false,
        };
        let repo = fake.add(case.clone());
        runs.push(check(base.clone(), case, repo, want));
    }
    let count = runs.len() + catalog.len();
    let mut problems: Vec<String> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    for (case, want) in catalog {
        fake.set_catalog(Some(case.clone()));
        problems.extend(check(base.clone(), case, String::new(), want).await);
    }
    assert!(
        problems.is_empty(),
        "{} of {count} cases wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(count > 100, "only {count} cases");
}

#[tokio::test]
async fn tags_list_on_a_name_ecr_refuses_is_name_invalid() {
    let fake = FakeEcr::start().await;
    let proxy = fake.proxy().await;
    let message = "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression'";
    let case = Case {
        op: "ListImages",
        code: "InvalidParameterException".into(),
        status: 400,
        message: message.into(),
        item_failure: false,
    };
    let repo = fake.add(case);
    let r = request(
        "GET",
        &format!("http://{}/v2/{repo}/tags/list", proxy.addr()),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "NAME_INVALID"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let detail = detail_of(&r);
    assert!(
        detail.starts_with("InvalidParameterException from ListImages (request id req-"),
        "{detail}"
    );
    assert!(detail.ends_with(message), "{detail}");
}

#[tokio::test]
async fn an_unreachable_ecr_is_unavailable_without_an_sdk_dump() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = fake_ecr::proxy_to(&format!("http://127.0.0.1:{port}")).await;
    let r = request(
        "GET",
        &format!("http://{}/v2/ab/tags/list", proxy.addr()),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (503, "UNAVAILABLE"));
    assert_eq!(r.header("retry-after"), "5");
    let detail = detail_of(&r);
    assert_eq!(
        detail,
        "DispatchFailure from ListImages: could not reach ECR (connection failed)"
    );
}

#[tokio::test]
async fn a_name_ecr_cannot_hold_never_reaches_ecr() {
    let fake = FakeEcr::start().await;
    let proxy = fake.proxy().await;
    let long = "a".repeat(257);
    for name in ["a", long.as_str(), "ab/C"] {
        for (method, path) in [
            ("POST", "blobs/uploads/"),
            ("GET", "manifests/latest"),
            ("GET", "tags/list"),
        ] {
            let url = format!("http://{}/v2/{name}/{path}", proxy.addr());
            let r = request(method, &url, &[], Bytes::new()).await;
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (400, "NAME_INVALID"),
                "{method} {name}/{path}"
            );
        }
    }
    let calls = fake.calls();
    assert!(
        calls.iter().all(|(_, repo)| repo.is_empty()),
        "ECR was called: {calls:?}"
    );
}
