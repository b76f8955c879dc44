//! What the deploy tests read, parsed: every YAML document under `deploy/kubernetes` (yaml-rust2,
//! turned into `serde_json` values), the image's ENTRYPOINT, CMD and baked files from
//! `deploy/Dockerfile`, and each ecr-proxy container with its pod, its argv under Kubernetes'
//! rules and the configuration it would run with (`ecr_proxy::config::load`). Reads files only;
//! the assertions are in `kubernetes.rs`.

use clap::Parser as _;
use ecr_proxy::cli::{BlobModeArg, Cli, Command};
use ecr_proxy::config::{self, BlobMode, Flags, ProxyConfig};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
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

/// An ecr-proxy container of a workload.
pub struct ProxyContainer<'a> {
    pub doc: &'a Doc,
    pub pod: &'a Value,
    pub container: &'a Value,
    pub init: bool,
}

pub fn proxy_containers(docs: &[Doc]) -> Vec<ProxyContainer<'_>> {
    docs.iter()
        .filter_map(|doc| Some((doc, pod_spec(&doc.value)?)))
        .flat_map(|(doc, pod)| {
            containers(pod)
                .into_iter()
                .filter(|(c, _)| is_proxy(c))
                .map(move |(container, init)| ProxyContainer {
                    doc,
                    pod,
                    container,
                    init,
                })
        })
        .collect()
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .map(|s| s.as_str().expect("a string argument").to_string())
            .collect()
    })
}

impl ProxyContainer<'_> {
    pub fn name(&self) -> String {
        format!(
            "container {} of {}",
            self.container["name"].as_str().unwrap_or("?"),
            self.doc.describe()
        )
    }

    /// The process's argv under Kubernetes' rules: `command` replaces the ENTRYPOINT (and then
    /// the image's CMD is dropped), `args` replaces the CMD.
    pub fn argv(&self, image: &Image) -> Vec<String> {
        let command = strings(&self.container["command"]);
        let args = strings(&self.container["args"]);
        match (command, args) {
            (None, None) => [image.entrypoint.clone(), image.cmd.clone()].concat(),
            (None, Some(args)) => [image.entrypoint.clone(), args].concat(),
            (Some(command), None) => command,
            (Some(command), Some(args)) => [command, args].concat(),
        }
    }

    /// The literal `env` values of the container (`valueFrom` entries cannot be known here).
    pub fn env(&self) -> HashMap<String, String> {
        self.container["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| {
                        Some((
                            e["name"].as_str()?.to_string(),
                            e["value"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The volume mounted at the longest mount path that holds `path`, and `path` inside it.
    pub fn mount_for(&self, path: &Path) -> Option<(&Value, PathBuf)> {
        let mounts = self.container["volumeMounts"].as_array()?;
        let (mount, inside) = mounts
            .iter()
            .filter_map(|m| {
                let inside = path.strip_prefix(m["mountPath"].as_str()?).ok()?;
                Some((m, inside.to_path_buf()))
            })
            .max_by_key(|(m, _)| m["mountPath"].as_str().map_or(0, str::len))?;
        let volume = self.pod["volumes"]
            .as_array()?
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("{}: no volume {}", self.name(), mount["name"]));
        Some((volume, inside))
    }

    /// The text of the configuration file `path` as this container sees it: from the ConfigMap
    /// mounted over it (found among `docs` in the same directory), or baked into the image.
    pub fn config_text(&self, docs: &[Doc], image: &Image, path: &Path) -> String {
        if let Some((volume, inside)) = self.mount_for(path) {
            let map_name = volume["configMap"]["name"].as_str().unwrap_or_else(|| {
                panic!(
                    "{}: {} is on a volume that is not a ConfigMap",
                    self.name(),
                    path.display()
                )
            });
            let key = inside.to_string_lossy().into_owned();
            let key = volume["configMap"]["items"]
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .find(|i| i["path"] == key.as_str())
                        .and_then(|i| i["key"].as_str().map(str::to_string))
                })
                .unwrap_or(key);
            let dir = self.doc.file.parent().expect("manifest directory");
            let map = docs
                .iter()
                .find(|d| {
                    d.kind() == "ConfigMap" && d.name() == map_name && d.file.parent() == Some(dir)
                })
                .unwrap_or_else(|| panic!("{}: no ConfigMap {map_name} beside it", self.name()));
            return map.value["data"][&key]
                .as_str()
                .unwrap_or_else(|| panic!("ConfigMap {map_name} has no key {key}"))
                .to_string();
        }
        let source = image
            .files
            .get(&path.to_string_lossy().into_owned())
            .unwrap_or_else(|| {
                panic!(
                    "{}: {} is neither mounted nor baked into the image",
                    self.name(),
                    path.display()
                )
            });
        std::fs::read_to_string(source).expect("read baked config")
    }

    /// The configuration the container would serve with: its argv parsed by the real CLI, the
    /// config file it names, its literal environment.
    pub fn effective_config(&self, docs: &[Doc], image: &Image) -> Result<ProxyConfig, String> {
        let argv = self.argv(image);
        let cli = Cli::try_parse_from(&argv).map_err(|e| format!("{argv:?}: {e}"))?;
        let Command::Serve(args) = cli.command else {
            return Err(format!("{argv:?} does not run `serve`"));
        };
        let env = self.env();
        let path = args
            .config
            .clone()
            .or_else(|| env.get("ECR_PROXY_CONFIG").map(PathBuf::from));
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = path.map(|p| {
            let local = dir.path().join("config.toml");
            std::fs::write(&local, self.config_text(docs, image, &p)).expect("write config");
            local
        });
        let flags = Flags {
            listen: args.listen,
            local: args.local.clone(),
            blob_mode: args.blob_mode.map(|m| match m {
                BlobModeArg::Stream => BlobMode::Stream,
                BlobModeArg::Redirect => BlobMode::Redirect,
            }),
        };
        config::load(file.as_deref(), &env, &flags).map_err(|e| e.to_string())
    }
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
