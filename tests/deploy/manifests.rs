//! The Kubernetes manifests as data: every YAML document under `deploy/kubernetes` (parsed with
//! yaml-rust2 and turned into `serde_json` values), the pods the workloads run, their containers,
//! and Kubernetes quantities. Reads files only; the assertions are in `kubernetes.rs` and
//! `pods.rs`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn kubernetes_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// One YAML document and the file it came from.
pub struct Doc {
    pub file: PathBuf,
    pub value: Value,
}

impl Doc {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }

    /// `kind/name in file`, for messages.
    pub fn describe(&self) -> String {
        format!("{}/{} in {}", self.kind(), self.name(), self.file.display())
    }
}

/// Every `.yaml`/`.yml` file under `dir`, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The documents of a YAML stream, as JSON values.
pub fn parse_yaml(text: &str) -> Result<Vec<Value>, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    docs.iter().map(to_json).collect()
}

fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => Value::from(r.parse::<f64>().map_err(|e| format!("`{r}`: {e}"))?),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err(format!("unsupported YAML node {y:?}")),
    })
}

/// Every document under `deploy/kubernetes`; panics naming the file that does not parse.
pub fn documents() -> Vec<Doc> {
    yaml_files(&kubernetes_dir())
        .into_iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(&file).expect("read manifest");
            let values = parse_yaml(&text)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", file.display()));
            values
                .into_iter()
                .filter(|v| !v.is_null())
                .map(move |value| Doc {
                    file: file.clone(),
                    value,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The pod spec a workload document runs, if it runs one.
pub fn pod_spec(doc: &Value) -> Option<&Value> {
    let spec = match doc["kind"].as_str()? {
        "Pod" => &doc["spec"],
        "Job" | "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            &doc["spec"]["template"]["spec"]
        }
        "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => return None,
    };
    spec.is_object().then_some(spec)
}

/// The pod metadata (labels, annotations) of a workload document.
pub fn pod_metadata(doc: &Value) -> &Value {
    match doc["kind"].as_str() {
        Some("Pod") => &doc["metadata"],
        Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"],
        _ => &doc["spec"]["template"]["metadata"],
    }
}

/// All containers of a pod spec (init containers first), with whether each is an init container.
pub fn containers(pod: &Value) -> Vec<(&Value, bool)> {
    let list = |key: &str, init: bool| {
        pod[key]
            .as_array()
            .map(|a| a.iter().map(move |c| (c, init)).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mut out = list("initContainers", true);
    out.extend(list("containers", false));
    out
}

/// Whether a container runs the ecr-proxy image (any registry, any tag).
pub fn is_proxy(container: &Value) -> bool {
    let image = container["image"].as_str().unwrap_or("");
    let name = image.split('@').next().unwrap_or("");
    let last = name.rsplit('/').next().unwrap_or("");
    last.split(':').next() == Some("ecr-proxy")
}

/// A Kubernetes quantity in bytes (`256Mi`, `1Gi`, `500M`, `1024`).
pub fn quantity(q: &str) -> u64 {
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (n, unit) = q.split_at(split);
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("quantity `{q}`"));
    let mult: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        other => panic!("quantity unit `{other}` in `{q}`"),
    };
    n * mult
}
