//! Architecture invariants from README § Architecture, checked over the source tree: only the
//! ECR client module imports `aws_sdk_ecr` (or the SDK's runtime crates); the module arrows run
//! one way (the proxy never starts the emulator, config never reaches into the proxy, the
//! emulator knows neither the proxy nor the ECR client, `auth` knows neither the proxy nor ECR); only `main.rs` exits the process or
//! prints; the IAM policies in `deploy/` list exactly the ECR actions the client needs (the
//! read-only one exactly those a pull needs), scoped to a repository prefix.

use std::collections::BTreeSet;
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

/// Code without its comments, so a doc comment may name what the code must not use.
fn code_of(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `code` names the crate's top-level `module`: `crate::module…`, or `module` among the
/// items of a `crate::{…}` group.
fn names_module(code: &str, module: &str) -> bool {
    if code.contains(&format!("crate::{module}")) {
        return true;
    }
    code.match_indices("crate::{").any(|(at, open)| {
        let mut depth = 0;
        let mut item = String::new();
        let mut items = Vec::new();
        for c in code[at + open.len()..].chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                _ if depth == 0 => item.push(c),
                _ => {}
            }
        }
        items.push(item);
        items.iter().any(|i| {
            let first = i.trim().split("::").next().unwrap_or("");
            first == module || first.starts_with(&format!("{module} "))
        })
    })
}

#[test]
fn module_arrow_check_sees_grouped_imports() {
    assert!(names_module("use crate::emulator::X;", "emulator"));
    assert!(names_module(
        "use crate::{config, emulator::{self, Y}};",
        "emulator"
    ));
    assert!(names_module(
        "use crate::{ecr::{A, B}, emulator as e};",
        "emulator"
    ));
    assert!(!names_module(
        "use crate::{ecr::{emulator, B}, config};",
        "emulator"
    ));
    assert!(!names_module("use crate::ecr::Ecr;", "emulator"));
}

#[test]
fn module_arrows_run_one_way() {
    // (files under this prefix, what they must not name): the product never imports its test
    // double (`--local` is wired in `cli`), config is plain values, the emulator stands alone;
    // `auth` decides and never answers requests or calls ECR; files watched know no one.
    let rules = [
        ("src/proxy", &["emulator"][..]),
        ("src/config", &["proxy", "auth"][..]),
        ("src/emulator", &["proxy", "ecr", "auth"][..]),
        ("src/auth", &["proxy", "ecr", "emulator"][..]),
        ("src/watch", &["proxy", "ecr", "auth", "emulator"][..]),
        ("src/cache", &["proxy", "ecr", "auth", "emulator"][..]),
        ("src/shared", &["proxy", "ecr", "auth", "emulator"][..]),
    ];
    let sources = all_sources();
    for (prefix, forbidden) in rules {
        let files: Vec<&(String, String)> = sources
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .collect();
        assert!(!files.is_empty(), "no sources under {prefix}");
        for (path, text) in files {
            let code = code_of(text);
            for module in forbidden {
                assert!(!names_module(&code, module), "{path} names crate::{module}");
            }
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

/// The ECR operations `src/ecr*` calls (`self.client.<operation>()`), as API names.
fn operations_called() -> BTreeSet<String> {
    let client: String = all_sources()
        .into_iter()
        .filter(|(path, _)| path == "src/ecr.rs" || path.starts_with("src/ecr/"))
        .map(|(_, text)| text)
        .collect();
    let compact: String = client.chars().filter(|c| !c.is_whitespace()).collect();
    compact
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
        .collect()
}

/// The IAM action that authorizes an ECR operation (Service Authorization Reference for ECR).
/// ListImageReferrers has no action of its own: ECR authorizes it as `ecr:BatchGetImage` (API
/// reference, ListImageReferrers), so `ecr:ListImageReferrers` in a policy is an unknown action.
fn iam_action(operation: &str) -> String {
    match operation {
        "ListImageReferrers" => "ecr:BatchGetImage".into(),
        op => format!("ecr:{op}"),
    }
}

/// Access levels from the Service Authorization Reference: what a pull needs (Read, List) and
/// what changes the registry (Write). Every action the client needs must be in exactly one.
const READ: [&str; 5] = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer",
    "ecr:ListImages",
];
const WRITE: [&str; 6] = [
    "ecr:BatchDeleteImage",
    "ecr:CompleteLayerUpload",
    "ecr:CreateRepository",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
];

/// The only action the policies grant on `"*"`: DescribeRepositories without repository names
/// (the catalog, and the `/readyz` probe) names no repository a prefix could match.
const UNSCOPED: [&str; 1] = ["ecr:DescribeRepositories"];
const SCOPED_RESOURCE: &str = "arn:aws:ecr:REGION:ACCOUNT_ID:repository/PREFIX*";

fn needed_actions() -> BTreeSet<String> {
    let ops = operations_called();
    assert!(ops.len() >= 10, "found only {ops:?}");
    ops.iter().map(|op| iam_action(op)).collect()
}

/// The statements of `deploy/<file>` as (actions, resource).
fn statements(file: &str) -> Vec<(BTreeSet<String>, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(policy["Version"], "2012-10-17", "{file}");
    policy["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("{file} has no Statement list"))
        .iter()
        .map(|s| {
            assert_eq!(s["Effect"], "Allow", "{file}: {s}");
            let actions = s["Action"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: Action must be a list: {s}"))
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            let resource = s["Resource"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: Resource must be one string: {s}"))
                .to_string();
            (actions, resource)
        })
        .collect()
}

fn all_actions(file: &str) -> BTreeSet<String> {
    statements(file).into_iter().flat_map(|(a, _)| a).collect()
}

#[test]
fn every_action_the_client_needs_has_an_access_level() {
    for action in needed_actions() {
        let read = READ.contains(&action.as_str());
        let write = WRITE.contains(&action.as_str());
        assert!(
            read != write,
            "classify {action} as READ or WRITE (Service Authorization Reference)"
        );
    }
}

#[test]
fn iam_policy_lists_exactly_the_actions_called() {
    assert_eq!(all_actions("iam-policy.json"), needed_actions());
}

#[test]
fn readonly_policy_lists_exactly_the_read_actions_and_no_write() {
    let listed = all_actions("iam-policy-readonly.json");
    let reads: BTreeSet<String> = needed_actions()
        .into_iter()
        .filter(|a| READ.contains(&a.as_str()))
        .collect();
    assert_eq!(listed, reads);
    for write in WRITE {
        assert!(!listed.contains(write), "read-only policy grants {write}");
    }
}

#[test]
fn policies_are_scoped_to_a_repository_prefix() {
    for file in ["iam-policy.json", "iam-policy-readonly.json"] {
        for (actions, resource) in statements(file) {
            if resource == "*" {
                for a in &actions {
                    assert!(
                        UNSCOPED.contains(&a.as_str()),
                        "{file}: {a} is granted on every repository; scope it to {SCOPED_RESOURCE}"
                    );
                }
            } else {
                assert_eq!(resource, SCOPED_RESOURCE, "{file}: {actions:?}");
            }
        }
    }
}
