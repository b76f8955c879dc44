//! Architecture invariants from README § Architecture, checked over the source tree: only the
//! ECR client module imports `aws_sdk_ecr` (or the SDK's runtime crates); only `main.rs` exits
//! the process or prints; the IAM policy in `deploy/` lists exactly the ECR actions the client
//! calls.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn all_sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn only_the_ecr_module_imports_the_sdk() {
    for (path, text) in all_sources() {
        let allowed = path == "src/ecr.rs" || path.starts_with("src/ecr/");
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        for krate in ["aws_sdk_ecr", "aws_config", "aws_runtime", "aws_smithy"] {
            assert!(allowed || !code.contains(krate), "{path} uses {krate}");
        }
    }
}

#[test]
fn only_main_exits_or_prints() {
    for (path, text) in all_sources() {
        if path == "src/main.rs" {
            continue;
        }
        for bad in ["process::exit", "println!", "eprintln!", "dbg!("] {
            assert!(!text.contains(bad), "{path} contains {bad}");
        }
    }
}

#[test]
fn every_module_says_what_it_owns() {
    for (path, text) in all_sources() {
        assert!(
            text.trim_start().starts_with("//!"),
            "{path} has no //! module comment"
        );
    }
}

#[test]
fn iam_policy_lists_exactly_the_actions_called() {
    let client: String = all_sources()
        .into_iter()
        .filter(|(path, _)| path == "src/ecr.rs" || path.starts_with("src/ecr/"))
        .map(|(_, text)| text)
        .collect();
    let compact: String = client.chars().filter(|c| !c.is_whitespace()).collect();
    let mut called: Vec<String> = compact
        .split("self.client.")
        .skip(1)
        .filter_map(|rest| rest.split("()").next())
        .filter(|op| op.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .filter(|op| *op != "config")
        .map(|op| {
            op.split('_')
                .map(|w| w[..1].to_uppercase() + &w[1..])
                .collect::<String>()
        })
        .map(|op| format!("ecr:{op}"))
        .collect();
    called.sort();
    called.dedup();
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/iam-policy.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut listed: Vec<String> = policy["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert!(called.len() >= 10, "found only {called:?}");
    assert_eq!(listed, called);
}
