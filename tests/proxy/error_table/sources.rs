//! Where the error table test gets its list of codes, read at test time so that a new exception
//! or failure code anywhere shows up by itself: the emulator's source (`src/emulator/**.rs`) and
//! the ECR reference (`shared/reference/ecr-api.md`, found beside the checkout). Reading only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Codes found, each with where it was found (for failure messages).
pub type Found = BTreeMap<String, String>;

/// `SomethingException`, not the bare word.
fn is_exception(s: &str) -> bool {
    s.len() > "Exception".len() && s.ends_with("Exception") && is_camel(s)
}

fn is_camel(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().any(|c| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read emulator source") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether the text before a string literal makes it an error code the emulator sends:
/// a match arm's value (`=> "X"`, as in `fn code`), an `Auth("X", …)` error, a `__type` or
/// `failureCode` member, a per-item failure (`failure(id, "X"`, `Err(("X"`).
fn emitted_after(before: &str) -> bool {
    let b: String = before.chars().filter(|c| !c.is_whitespace()).collect();
    if b.ends_with("=>")
        || b.ends_with("Auth(")
        || b.ends_with("\"__type\":")
        || b.ends_with("\"failureCode\":")
        || b.ends_with("Err((")
    {
        return true;
    }
    // `failure(<identifier>,`
    b.strip_suffix(',')
        .and_then(|b| b.rsplit_once("failure("))
        .is_some_and(|(_, arg)| {
            arg.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '&')
        })
}

/// Exception names and failure codes the emulator can emit: every CamelCase string literal that
/// ends in `Exception`, or that stands where an error code goes (see `emitted_after`).
pub fn emulator_codes(src: &Path) -> Found {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Found::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read emulator file");
        let name = file.display().to_string();
        let mut offset = 0;
        for part in text.split('"') {
            let at = offset;
            offset += part.len() + 1;
            if !is_camel(part) {
                continue;
            }
            let mut from = at.saturating_sub(61);
            while !text.is_char_boundary(from) {
                from += 1;
            }
            let before = &text[from..at.saturating_sub(1)];
            if is_exception(part) || emitted_after(before) {
                found
                    .entry(part.to_string())
                    .or_insert_with(|| name.clone());
            }
        }
    }
    found
}

/// `shared/reference/ecr-api.md` beside the checkout (or its parent, for worktrees).
pub fn reference_file() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    root.ancestors()
        .map(|a| a.join("shared/reference/ecr-api.md"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "shared/reference/ecr-api.md not found beside {}",
                root.display()
            )
        })
}

/// Backticked CamelCase words in `text`.
fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2).filter(|t| is_camel(t))
}

/// The lines of the bullet that starts with `start` (up to the next bullet of its level).
fn bullet<'a>(text: &'a str, start: &str) -> Vec<&'a str> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(start));
    let Some(first) = lines.next() else {
        panic!("the reference has no bullet starting {start:?}")
    };
    let indent = first.len() - first.trim_start().len();
    let mut out = vec![first];
    out.extend(lines.take_while(|l| {
        let i = l.len() - l.trim_start().len();
        !l.trim().is_empty() && (i > indent || !l.trim_start().starts_with("- "))
    }));
    out
}

/// What the reference lists: exceptions (every `…Exception` word but its `FooException`
/// placeholder), the common and retry error codes of §1, and the failure codes of
/// `ImageFailure` and `LayerFailure`. Also, per operation of §4, the exceptions its `Errors:`
/// line names.
pub struct Reference {
    pub exceptions: Found,
    pub failure_codes: Found,
    pub raised_by: BTreeMap<String, BTreeSet<String>>,
}

pub fn reference_codes(path: &Path) -> Reference {
    let text = std::fs::read_to_string(path).expect("read the ECR reference");
    let mut exceptions = Found::new();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        if is_exception(word) && word != "FooException" {
            exceptions.insert(word.to_string(), "an exception name".into());
        }
    }
    for start in ["- Common errors", "- Rust SDK retries"] {
        for line in bullet(&text, start) {
            for w in backticked(line) {
                exceptions.insert(w.to_string(), format!("§1 {start:?}"));
            }
        }
    }
    let mut failure_codes = Found::new();
    for start in ["- **ImageFailure**", "- **LayerFailure**"] {
        for line in bullet(&text, start) {
            let codes = line.split("failureCode: ").skip(1).flat_map(|rest| {
                let list = rest.split([',', '}']).next().unwrap_or("");
                list.split('|').map(str::trim).collect::<Vec<_>>()
            });
            for w in backticked(line).chain(codes.filter(|c| is_camel(c))) {
                failure_codes.insert(w.to_string(), format!("§2 {start:?}"));
            }
        }
    }
    let mut raised_by = BTreeMap::new();
    let mut op = None;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(h) = line.strip_prefix("### 4.") {
            op = h.split_whitespace().nth(1).map(str::to_string);
        } else if line.starts_with("## ") {
            op = None;
        }
        let Some(op) = &op else { continue };
        if !line.trim_start().starts_with("- Errors:") {
            continue;
        }
        // The line and its continuations (up to the next bullet).
        let more = lines[i + 1..]
            .iter()
            .take_while(|l| !l.trim().is_empty() && !l.trim_start().starts_with("- "));
        let set: &mut BTreeSet<String> = raised_by.entry(op.clone()).or_default();
        for l in std::iter::once(line).chain(more) {
            for w in l.split(|c: char| !c.is_ascii_alphanumeric()) {
                if is_exception(w) {
                    set.insert(w.to_string());
                }
            }
        }
    }
    assert!(raised_by.len() >= 10, "§4 Errors: lines not found");
    Reference {
        exceptions,
        failure_codes,
        raised_by,
    }
}

/// The source reader finds a code added in any of the emulator's ways of raising one, so the
/// walk above fails until the code is classified.
#[test]
fn a_code_added_to_the_emulator_is_found() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let src = r#"
        fn code(&self) -> &'static str { match self { Fresh(_) => "FreshlyAddedException", Odd => "RequestOddity" } }
        fn f() { failures.push(failure(id, "FreshFailureCode", reason)); let x = Err(("OtherFreshCode", "r")); }
        fn g() { EcrError::Auth("FreshAuthCode", m); json!({ "failureCode": "FreshLayerCode" }); let m = "NotACode"; }
    "#;
    std::fs::create_dir(dir.path().join("ops")).unwrap();
    std::fs::write(dir.path().join("ops/fresh.rs"), src).unwrap();
    let found = emulator_codes(dir.path());
    let names: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "FreshAuthCode",
            "FreshFailureCode",
            "FreshLayerCode",
            "FreshlyAddedException",
            "OtherFreshCode",
            "RequestOddity"
        ]
    );
    assert!(names
        .iter()
        .all(|c| ecr_proxy::ecr::errors::known(c).is_none()));
}
