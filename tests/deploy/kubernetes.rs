//! The Kubernetes manifests checked against the code they deploy: every file parses and is in its
//! kustomization; each ecr-proxy container's argv (command/args over the Dockerfile's
//! ENTRYPOINT/CMD) parses with the real CLI and its config loads; probes ask paths the proxy
//! serves on the port it listens on; memory covers the upload budget plus the stated overhead;
//! the grace period covers the drain; AWS credentials reach only the proxy; a proxy on the pod
//! network is behind a NetworkPolicy.

use crate::manifests::*;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What `proxy::handlers` answers for orchestrators.
const HEALTH_PATHS: [&str; 2] = ["/healthz", "/readyz"];
/// `server.drain_secs` when neither the file nor ECR_PROXY_DRAIN_SECS sets it.
const DEFAULT_DRAIN_SECS: u64 = 25;
/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECS: u64 = 30;

/// The proxy containers, at least the two shipped (sidecar and shared), or the tests below
/// would check nothing.
fn proxies(docs: &[Doc]) -> Vec<ProxyContainer<'_>> {
    let found = proxy_containers(docs);
    assert!(
        found.len() >= 2,
        "expected the sidecar and the shared proxy, found {}",
        found.len()
    );
    found
}

#[test]
fn every_manifest_parses_as_kubernetes_objects() {
    let files = yaml_files(&kubernetes_dir());
    assert!(files.len() >= 8, "found only {files:?}");
    let docs = documents();
    for doc in &docs {
        assert!(
            doc.value["apiVersion"].is_string() && !doc.kind().is_empty(),
            "{}: a document without apiVersion and kind",
            doc.file.display()
        );
        if doc.kind() != "Kustomization" {
            assert!(
                !doc.name().is_empty(),
                "{}: no metadata.name",
                doc.describe()
            );
        }
    }
    // The parser does reject broken YAML (so "parses" above means something).
    assert!(parse_yaml("a: [1, 2\nb: }").is_err());
}

#[test]
fn each_kustomization_lists_exactly_the_manifests_beside_it() {
    let docs = documents();
    let kustomizations: Vec<&Doc> = docs
        .iter()
        .filter(|d| d.kind() == "Kustomization")
        .collect();
    assert!(kustomizations.len() >= 2, "one per directory");
    for k in kustomizations {
        let dir = k.file.parent().unwrap();
        let listed: BTreeSet<PathBuf> = k.value["resources"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no resources", k.file.display()))
            .iter()
            .map(|r| dir.join(r.as_str().expect("a resource path")))
            .collect();
        let beside: BTreeSet<PathBuf> = yaml_files(dir)
            .into_iter()
            .filter(|f| f.parent() == Some(dir) && f != &k.file)
            .collect();
        assert_eq!(listed, beside, "{}", k.file.display());
    }
    let dirs: BTreeSet<&Path> = docs.iter().filter_map(|d| d.file.parent()).collect();
    for dir in dirs {
        assert!(
            dir.join("kustomization.yaml").exists(),
            "{} has no kustomization.yaml",
            dir.display()
        );
    }
}

#[test]
fn proxy_argv_parses_with_the_real_cli_and_its_config_loads() {
    let docs = documents();
    let image = image();
    assert_eq!(image.entrypoint.len(), 1, "ENTRYPOINT is the binary alone");
    for p in proxies(&docs) {
        assert!(
            p.container["command"].is_null(),
            "{}: leave `command` (the ENTRYPOINT) alone, set `args`",
            p.name()
        );
        if let Err(e) = p.effective_config(&docs, &image) {
            panic!("{}: {e}", p.name());
        }
    }
    // The image's own default (no args) serves with the baked config.
    let baked = image
        .files
        .get("/etc/ecr-proxy/ecr-proxy.toml")
        .expect("baked config");
    assert_eq!(baked, &repo().join("config/sidecar.toml"));
    assert_eq!(
        image.cmd,
        ["serve", "--config", "/etc/ecr-proxy/ecr-proxy.toml"]
    );
}

#[test]
fn baked_config_is_safe_for_a_sidecar() {
    let path = repo().join("config/sidecar.toml");
    let env = std::collections::HashMap::new();
    let c = ecr_proxy::config::load(Some(&path), &env, &Default::default()).expect("loads");
    assert!(c.listen.ip().is_loopback(), "listens on {}", c.listen);
    assert!(!c.create.enabled, "create-on-push is on");
    assert_eq!(c.blob_mode, ecr_proxy::config::BlobMode::Stream);
}

/// The port a probe names, resolved through the container's named ports.
fn probe_port(p: &ProxyContainer<'_>, port: &serde_json::Value) -> u16 {
    if let Some(n) = port.as_u64() {
        return n as u16;
    }
    let name = port.as_str().expect("a probe port");
    p.container["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|q| q["name"] == name))
        .and_then(|q| q["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("{}: no port named {name}", p.name())) as u16
}

#[test]
fn probes_ask_served_paths_on_the_listen_port() {
    let docs = documents();
    let image = image();
    for p in proxies(&docs) {
        let config = p.effective_config(&docs, &image).unwrap();
        for kind in ["livenessProbe", "readinessProbe"] {
            assert!(p.container[kind].is_object(), "{}: no {kind}", p.name());
        }
        for kind in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let probe = &p.container[kind];
            if probe.is_null() {
                continue;
            }
            let get = &probe["httpGet"];
            assert!(get.is_object(), "{}: {kind} is not an HTTP GET", p.name());
            let path = get["path"].as_str().unwrap_or("/");
            assert!(
                HEALTH_PATHS.contains(&path),
                "{}: {kind} asks {path}",
                p.name()
            );
            assert_eq!(
                probe_port(&p, &get["port"]),
                config.listen.port(),
                "{}: {kind} port",
                p.name()
            );
            assert!(get["host"].is_null(), "{}: {kind} sets a host", p.name());
            // The kubelet connects to the pod's IP: a proxy bound to loopback would fail them.
            assert!(
                config.listen.ip().is_unspecified(),
                "{}: {kind} cannot reach a proxy listening on {}",
                p.name(),
                config.listen
            );
        }
        assert_eq!(
            p.container["livenessProbe"]["httpGet"]["path"],
            "/healthz",
            "{}: liveness must not depend on ECR",
            p.name()
        );
    }
}

/// The `overhead = NMiB` the manifest's comment states for the memory limit.
fn stated_overhead(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    let stated: Vec<u64> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('#'))
        .filter_map(|l| l.split("overhead = ").nth(1))
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            assert!(
                rest[digits.len()..].starts_with("MiB"),
                "write the overhead in MiB: {rest}"
            );
            digits.parse::<u64>().unwrap() << 20
        })
        .collect();
    assert_eq!(
        stated.len(),
        1,
        "{}: state the memory overhead once",
        file.display()
    );
    stated[0]
}

#[test]
fn memory_limit_covers_the_budget_and_the_stated_overhead() {
    let docs = documents();
    let image = image();
    for p in proxies(&docs) {
        let config = p.effective_config(&docs, &image).unwrap();
        let overhead = stated_overhead(&p.doc.file);
        assert!(
            overhead >= 64 << 20,
            "{}: an overhead under the measured 64 MiB",
            p.name()
        );
        let limit = p.container["resources"]["limits"]["memory"]
            .as_str()
            .map(quantity)
            .unwrap_or_else(|| panic!("{}: no memory limit", p.name()));
        assert!(
            limit >= config.buffer_budget + overhead,
            "{}: limit {limit} < budget {} + overhead {overhead}",
            p.name(),
            config.buffer_budget
        );
    }
}

#[test]
fn grace_period_covers_pre_stop_and_drain() {
    let docs = documents();
    for p in proxies(&docs) {
        let grace = p.pod["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap_or(DEFAULT_GRACE_SECS);
        let drain = p
            .env()
            .get("ECR_PROXY_DRAIN_SECS")
            .map(|s| s.parse::<u64>().expect("drain seconds"))
            .unwrap_or(DEFAULT_DRAIN_SECS);
        let pre_stop = p.container["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap_or(0);
        assert!(
            grace > pre_stop + drain,
            "{}: grace {grace} s <= preStop {pre_stop} s + drain {drain} s",
            p.name()
        );
    }
}

#[test]
fn aws_credentials_reach_only_the_proxy() {
    let docs = documents();
    let mut pods_with_others = 0;
    for p in proxies(&docs) {
        let others: BTreeSet<String> = containers(p.pod)
            .into_iter()
            .filter(|(c, _)| !is_proxy(c))
            .map(|(c, _)| c["name"].as_str().unwrap().to_string())
            .collect();
        if others.is_empty() {
            continue;
        }
        pods_with_others += 1;
        let skipped: BTreeSet<String> = pod_metadata(&p.doc.value)["annotations"]
            ["eks.amazonaws.com/skip-containers"]
            .as_str()
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            skipped,
            others,
            "{}: skip-containers must name every other container",
            p.name()
        );
        // A native sidecar: an init container that runs as long as the pod.
        assert!(
            p.init,
            "{}: not a native sidecar (initContainers)",
            p.name()
        );
        assert_eq!(p.container["restartPolicy"], "Always", "{}", p.name());
    }
    assert!(pods_with_others >= 1, "the sidecar pod was not found");
}

#[test]
fn proxy_runs_unprivileged_with_its_spool_on_a_volume() {
    let docs = documents();
    let image = image();
    for p in proxies(&docs) {
        let sc = &p.container["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{}", p.name());
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{}", p.name());
        assert_eq!(
            p.pod["securityContext"]["runAsNonRoot"],
            true,
            "{}",
            p.name()
        );
        let config = p.effective_config(&docs, &image).unwrap();
        let spool = config
            .uploads
            .spool_dir
            .unwrap_or_else(|| panic!("{}: set uploads.spool_dir", p.name()));
        let (volume, _) = p.mount_for(&spool).unwrap_or_else(|| {
            panic!("{}: {} is on the read-only root", p.name(), spool.display())
        });
        assert!(
            volume["emptyDir"].is_object(),
            "{}: spool volume {volume}",
            p.name()
        );
    }
}

#[test]
fn a_proxy_on_the_pod_network_is_behind_a_network_policy() {
    let docs = documents();
    let image = image();
    for p in proxies(&docs) {
        let listen: IpAddr = p.effective_config(&docs, &image).unwrap().listen.ip();
        if listen.is_loopback() {
            continue;
        }
        let labels = &pod_metadata(&p.doc.value)["labels"];
        let dir = p.doc.file.parent();
        let guarded = docs.iter().any(|d| {
            d.kind() == "NetworkPolicy"
                && d.file.parent() == dir
                && d.value["spec"]["podSelector"]["matchLabels"]
                    .as_object()
                    .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| &labels[k] == v))
                && d.value["spec"]["policyTypes"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "Ingress"))
                && d.value["spec"]["ingress"].as_array().is_some_and(|rules| {
                    rules
                        .iter()
                        .all(|r| r["from"].as_array().is_some_and(|f| !f.is_empty()))
                })
        });
        assert!(
            guarded,
            "{} listens on {listen} with no NetworkPolicy beside it limiting who connects",
            p.name()
        );
    }
}
