//! Architecture invariants from README § Architecture, checked over the source tree: only the
//! ECR client module imports `aws_sdk_ecr` (or the SDK's runtime crates); the module arrows run
//! one way (the proxy never starts the emulator, config never reaches into the proxy, the
//! emulator knows neither the proxy nor the ECR client); only `main.rs` exits the process or
//! prints; the IAM policy in `deploy/` lists exactly the ECR actions the client
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
    // double (`--local` is wired in `cli`), config is plain values, the emulator stands alone.
    let rules = [
        ("src/proxy", &["emulator"][..]),
        ("src/config", &["proxy"][..]),
        ("src/emulator", &["proxy", "ecr"][..]),
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
