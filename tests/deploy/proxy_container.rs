//! One ecr-proxy container of a workload, as Kubernetes would run it: its argv (`command`/`args`
//! over the image's ENTRYPOINT/CMD), its literal environment, the volumes over its paths, and the
//! configuration it would serve with (the real CLI parser and `ecr_proxy::config::load` on the
//! baked file or the ConfigMap it mounts). Reads manifests only.

use crate::dockerfile::Image;
use crate::manifests::{containers, is_proxy, pod_spec, Doc};
use ecr_proxy::cli::{BlobModeArg, Cli, Command};
use ecr_proxy::config::{self, BlobMode, Flags, ProxyConfig};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The proxy containers, at least the two shipped (sidecar and shared), or the tests below
/// would check nothing.
pub fn proxies(docs: &[Doc]) -> Vec<ProxyContainer<'_>> {
    let found = proxy_containers(docs);
    assert!(
        found.len() >= 2,
        "expected the sidecar and the shared proxy, found {}",
        found.len()
    );
    found
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
        let cli = Cli::parse_layered(&argv).map_err(|e| format!("{argv:?}: {e}"))?;
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
