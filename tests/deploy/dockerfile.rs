//! The image as `deploy/Dockerfile` defines it, for the manifest tests: the final stage's
//! exec-form ENTRYPOINT and CMD and the files it copies from the build context. Reads the
//! Dockerfile only; building the image is `image.rs`.

use crate::manifests::repo;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The final stage of `deploy/Dockerfile`: its exec-form ENTRYPOINT and CMD, and the files it
/// copies from the build context (destination → source in the repository).
pub struct Image {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub files: BTreeMap<String, PathBuf>,
}

pub fn image() -> Image {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).expect("read Dockerfile");
    // Continuation lines joined; comments dropped; only the stage after the last FROM counts.
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let lines: Vec<&str> = joined.lines().collect();
    let from = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with("FROM "))
        .expect("a FROM line");
    let last_stage = &lines[from + 1..];
    let exec_form = |instr: &str| -> Vec<String> {
        let line = last_stage
            .iter()
            .rev()
            .find_map(|l| l.trim().strip_prefix(instr))
            .unwrap_or_else(|| panic!("the final stage has no {instr}"));
        serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("{instr} must be in exec (JSON) form: {line}: {e}"))
    };
    let files = last_stage
        .iter()
        .filter_map(|l| l.trim().strip_prefix("COPY "))
        .filter(|rest| !rest.trim_start().starts_with("--from"))
        .map(|rest| {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            assert_eq!(parts.len(), 2, "COPY with one source: {rest}");
            (parts[1].to_string(), repo().join(parts[0]))
        })
        .collect();
    Image {
        entrypoint: exec_form("ENTRYPOINT "),
        cmd: exec_form("CMD "),
        files,
    }
}
