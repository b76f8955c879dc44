//! ECR's input constraints as botocore's model states them, turned into requests.
//!
//! Owns: loading `botocore/data/ecr/2015-09-21/service-2.json` through the Python that has
//! botocore (the one the AWS CLI v1 brings), a valid input for each operation, and for every
//! constraint of every input member (required, min/max length, pattern, enum, numeric min/max,
//! list size) one input that breaks exactly that constraint. Pure: no emulator, no network.
//! Must not hold expectations about answers; `constraints` does.

use base64_simd::STANDARD;
use serde_json::{json, Map, Value};
use std::process::Command;

/// botocore's ECR model.
pub struct Model {
    pub botocore_version: String,
    pub json: Value,
}

/// One request that breaks one constraint: `label` says which (`member.path: constraint`).
pub struct Case {
    pub label: String,
    pub input: Value,
}

/// Loads the model through `botocore`, or through the copy newer AWS CLI v1 releases vendor as
/// `awscli.botocore` (awscli 1.46 no longer depends on a separate botocore).
const LOAD: &str = "import json,sys\ntry:\n import botocore\n from botocore.loaders import Loader\n\
except ImportError:\n import awscli.botocore as botocore\n from awscli.botocore.loaders import Loader\n\
json.dump({'version':botocore.__version__,'model':Loader().load_service_model('ecr','service-2','2015-09-21')},sys.stdout)";

/// Interpreters to try: `python3`, `python`, and the one named on the `aws` script's `#!` line.
fn pythons() -> Vec<String> {
    let mut out = vec!["python3".to_string(), "python".to_string()];
    let aws = Command::new("sh")
        .args(["-c", "command -v aws"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(first) = aws
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
    {
        if let Some(interp) = first.strip_prefix("#!").filter(|l| l.contains("python")) {
            out.push(interp.trim().to_string());
        }
    }
    out
}

/// The model, or why it could not be loaded.
pub fn load() -> Result<Model, String> {
    let mut tried = Vec::new();
    for py in pythons() {
        let mut words = py.split_whitespace();
        let Some(program) = words.next() else {
            continue;
        };
        match Command::new(program)
            .args(words)
            .args(["-c", LOAD])
            .output()
        {
            Ok(o) if o.status.success() => {
                let v: Value = serde_json::from_slice(&o.stdout)
                    .map_err(|e| format!("{py} printed no JSON model: {e}"))?;
                return Ok(Model {
                    botocore_version: v["version"].as_str().unwrap_or("?").to_string(),
                    json: v["model"].clone(),
                });
            }
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let last = err.trim().lines().last().unwrap_or("failed").to_string();
                tried.push(format!("{py}: {last}"));
            }
            Err(e) => tried.push(format!("{py}: {e}")),
        }
    }
    Err(format!("no Python with botocore: {}", tried.join("; ")))
}

/// Valid values for shapes whose pattern or meaning a filler cannot satisfy. A shape whose
/// pattern rejects its sample fails the test (the model changed: add or fix a sample here).
fn sample(shape: &str) -> Option<String> {
    let digest = format!("sha256:{}", "ab".repeat(32));
    Some(match shape {
        "RegistryId" => "123456789012".into(),
        "RepositoryName" => "model-check".into(),
        "UploadId" => "00000000-0000-4000-8000-000000000000".into(),
        "ImageDigest" | "LayerDigest" | "BatchedOperationLayerDigest" => digest,
        "ImageTag" => "latest".into(),
        "MediaType" => "application/vnd.oci.image.manifest.v1+json".into(),
        "ImageManifest" => format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":2}},"layers":[]}}"#
        ),
        _ => return None,
    })
}

/// Whether `value` matches the model's (unanchored, applied as a full match) `pattern`.
fn full_match(pattern: &str, value: &str) -> bool {
    let re = regex_lite::Regex::new(&format!("^(?:{pattern})$"))
        .unwrap_or_else(|e| panic!("the model's pattern {pattern:?} does not compile: {e}"));
    re.is_match(value)
}

fn num(shape: &Value, key: &str) -> Option<i64> {
    shape.get(key).and_then(Value::as_i64)
}

impl Model {
    pub fn operations(&self) -> Vec<String> {
        let ops = self.json["operations"].as_object().expect("operations");
        ops.keys().cloned().collect()
    }

    fn shape(&self, name: &str) -> &Value {
        let s = &self.json["shapes"][name];
        assert!(s.is_object(), "the model has no shape {name}");
        s
    }

    fn input_shape(&self, op: &str) -> Option<&str> {
        self.json["operations"][op]["input"]["shape"].as_str()
    }

    /// A string of `len` copies of `c`.
    fn filler(c: char, len: i64) -> String {
        std::iter::repeat_n(c, len.max(0) as usize).collect()
    }

    fn valid_string(&self, name: &str, s: &Value) -> String {
        if let Some(first) = s["enum"].as_array().and_then(|e| e.first()) {
            return first.as_str().expect("enum values are strings").to_string();
        }
        let value = sample(name).unwrap_or_else(|| {
            let len = num(s, "min").unwrap_or(1).max(1);
            Self::filler('a', len.min(num(s, "max").unwrap_or(len)))
        });
        if let Some(p) = s["pattern"].as_str() {
            assert!(
                full_match(p, &value),
                "botocore's shape {name} has pattern {p:?}, which the sample {value:?} breaks: fix `sample`"
            );
        }
        value
    }

    /// A valid value of shape `name` (structures get their required members only).
    pub fn valid(&self, name: &str) -> Value {
        let s = self.shape(name);
        match s["type"].as_str().unwrap_or_default() {
            "string" => json!(self.valid_string(name, s)),
            "integer" | "long" => json!(num(s, "min")
                .unwrap_or(1)
                .min(num(s, "max").unwrap_or(i64::MAX))),
            "boolean" => json!(false),
            "timestamp" => json!(0),
            "blob" => {
                json!(STANDARD
                    .encode_to_string(vec![b'x'; num(s, "min").unwrap_or(1).max(1) as usize]))
            }
            "list" => {
                let n = num(s, "min")
                    .unwrap_or(1)
                    .max(1)
                    .min(num(s, "max").unwrap_or(1));
                let member = s["member"]["shape"].as_str().expect("list member");
                Value::Array((0..n).map(|_| self.valid(member)).collect())
            }
            "map" => json!({}),
            "structure" => {
                let mut obj = Map::new();
                for r in s["required"].as_array().into_iter().flatten() {
                    let m = r.as_str().expect("member name");
                    obj.insert(m.into(), self.valid(self.member_shape(s, m)));
                }
                Value::Object(obj)
            }
            other => panic!("shape {name} has a type this generator does not know: {other}"),
        }
    }

    fn member_shape<'a>(&self, s: &'a Value, member: &str) -> &'a str {
        s["members"][member]["shape"]
            .as_str()
            .expect("member shape")
    }

    /// The valid input of `op`.
    pub fn valid_input(&self, op: &str) -> Value {
        self.input_shape(op).map_or(json!({}), |s| self.valid(s))
    }

    /// Every input of `op` that breaks one constraint.
    pub fn broken_inputs(&self, op: &str) -> Vec<Case> {
        let Some(shape) = self.input_shape(op) else {
            return Vec::new();
        };
        self.breaks(shape, &self.valid(shape), "")
            .into_iter()
            .map(|(label, input)| Case { label, input })
            .collect()
    }

    /// Values of shape `name` that each break one constraint, made from the valid `value`.
    fn breaks(&self, name: &str, value: &Value, path: &str) -> Vec<(String, Value)> {
        let s = self.shape(name);
        let at = |what: &str| format!("{path}: {what}");
        let (min, max) = (num(s, "min"), num(s, "max"));
        let mut out = Vec::new();
        match s["type"].as_str().unwrap_or_default() {
            "string" => {
                if s["enum"].is_array() {
                    out.push((at("enum"), json!("NOT_A_MEMBER_OF_THE_ENUM")));
                }
                let fill = value.as_str().and_then(|v| v.chars().next()).unwrap_or('a');
                if let Some(n) = min.filter(|n| *n > 0) {
                    out.push((at("min length"), json!(Self::filler(fill, n - 1))));
                }
                if let Some(n) = max {
                    out.push((at("max length"), json!(Self::filler(fill, n + 1))));
                }
                if let Some(p) = s["pattern"].as_str() {
                    let v = value.as_str().unwrap_or_default();
                    let mut bad = v.to_string();
                    bad.pop();
                    bad.push('!');
                    assert!(!full_match(p, &bad), "cannot break pattern {p:?} of {name}");
                    out.push((at("pattern"), json!(bad)));
                }
            }
            "integer" | "long" => {
                if let Some(n) = min {
                    out.push((at("min value"), json!(n - 1)));
                }
                if let Some(n) = max {
                    out.push((at("max value"), json!(n + 1)));
                }
            }
            "blob" => {
                if let Some(n) = min.filter(|n| *n > 0) {
                    out.push((
                        at("min length"),
                        json!(STANDARD.encode_to_string(vec![b'x'; n as usize - 1])),
                    ));
                }
                if let Some(n) = max {
                    out.push((
                        at("max length"),
                        json!(STANDARD.encode_to_string(vec![b'x'; n as usize + 1])),
                    ));
                }
            }
            "list" => {
                let member = s["member"]["shape"].as_str().expect("list member");
                let items = value.as_array().expect("a list value");
                let one = self.valid(member);
                if let Some(n) = min.filter(|n| *n > 0) {
                    out.push((at("min size"), json!(vec![one.clone(); n as usize - 1])));
                }
                if let Some(n) = max {
                    out.push((at("max size"), json!(vec![one.clone(); n as usize + 1])));
                }
                let base = if items.is_empty() {
                    vec![one.clone()]
                } else {
                    items.clone()
                };
                for (label, bad) in self.breaks(member, &base[0], &format!("{path}[]")) {
                    let mut list = base.clone();
                    list[0] = bad;
                    out.push((label, Value::Array(list)));
                }
            }
            "structure" => {
                let obj = value.as_object().expect("a structure value");
                let required: Vec<&str> = s["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let members = s["members"].as_object().expect("members");
                for (m, r) in members {
                    let sub = if path.is_empty() {
                        m.clone()
                    } else {
                        format!("{path}.{m}")
                    };
                    if required.contains(&m.as_str()) {
                        let mut without = obj.clone();
                        without.remove(m);
                        out.push((format!("{sub}: required"), Value::Object(without)));
                    }
                    let shape = r["shape"].as_str().expect("member shape");
                    let current = obj.get(m).cloned().unwrap_or_else(|| self.valid(shape));
                    for (label, bad) in self.breaks(shape, &current, &sub) {
                        let mut with = obj.clone();
                        with.insert(m.clone(), bad);
                        out.push((label, Value::Object(with)));
                    }
                }
            }
            _ => {}
        }
        out
    }
}
