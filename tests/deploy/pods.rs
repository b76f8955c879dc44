//! What the pods around the proxy give it, checked: a memory limit that covers the upload budget
//! plus the overhead the manifest states; a grace period above preStop + drain; AWS credentials
//! for the proxy alone (skip-containers names every other container, the proxy is a native
//! sidecar); no privileges and the spool on a volume; a sidecar's registry on loopback only, and a
//! NetworkPolicy in front of a registry that listens on the pod network (only the admin port may
//! be open to every pod).

use crate::dockerfile::image;
use crate::manifests::*;
use crate::proxy_container::proxies;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// `server.drain_secs` when neither the file nor ECR_PROXY_DRAIN_SECS sets it.
const DEFAULT_DRAIN_SECS: u64 = 25;
/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECS: u64 = 30;

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
fn a_sidecar_s_registry_is_reachable_only_from_its_pod() {
    let docs = documents();
    let image = image();
    let mut sidecars = 0;
    for p in proxies(&docs)
        .into_iter()
        .filter(|p| containers(p.pod).len() > 1)
    {
        sidecars += 1;
        let config = p.effective_config(&docs, &image).unwrap();
        assert!(
            config
                .listen
                .ip()
                .expect("a literal IP address")
                .is_loopback(),
            "{}: the registry listens on {}, beyond the pod's loopback",
            p.name(),
            config.listen
        );
    }
    assert!(sidecars >= 1, "the sidecar pod was not found");
}

/// Whether an ingress `rule` of a NetworkPolicy lets connections reach `port` of the container
/// `c` (no `ports` means every port; a named port is the container's).
fn admits(rule: &Value, port: u16, c: &Value) -> bool {
    let Some(ports) = rule["ports"].as_array().filter(|a| !a.is_empty()) else {
        return true;
    };
    ports.iter().any(|q| {
        let first = match &q["port"] {
            Value::Null => return true,
            Value::String(name) => c["ports"]
                .as_array()
                .and_then(|a| a.iter().find(|n| n["name"] == name.as_str()))
                .and_then(|n| n["containerPort"].as_u64()),
            n => n.as_u64(),
        };
        let last = q["endPort"].as_u64().or(first);
        first.is_some_and(|f| (f..=last.unwrap_or(f)).contains(&u64::from(port)))
    })
}

#[test]
fn a_registry_on_the_pod_network_is_behind_a_network_policy() {
    let docs = documents();
    let image = image();
    for p in proxies(&docs) {
        let listen = p.effective_config(&docs, &image).unwrap().listen;
        if listen.ip().expect("a literal IP address").is_loopback() {
            continue;
        }
        let labels = &pod_metadata(&p.doc.value)["labels"];
        let dir = p.doc.file.parent();
        let no_rules = Vec::new();
        // Every rule that admits the registry's port names who may connect (the admin port
        // alone may be open to every pod); no `ingress` at all denies everything.
        let guarded = docs.iter().any(|d| {
            d.kind() == "NetworkPolicy"
                && d.file.parent() == dir
                && d.value["spec"]["podSelector"]["matchLabels"]
                    .as_object()
                    .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| &labels[k] == v))
                && d.value["spec"]["policyTypes"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "Ingress"))
                && d.value["spec"]["ingress"]
                    .as_array()
                    .unwrap_or(&no_rules)
                    .iter()
                    .filter(|r| admits(r, listen.port(), p.container))
                    .all(|r| r["from"].as_array().is_some_and(|f| !f.is_empty()))
        });
        assert!(
            guarded,
            "{}: the registry listens on {listen} with no NetworkPolicy beside it limiting who \
             connects to port {}",
            p.name(),
            listen.port()
        );
    }
}

#[test]
fn a_network_policy_rule_admits_the_ports_it_names() {
    let c: Value = serde_json::json!({"ports": [{"name": "registry", "containerPort": 5000}]});
    let rule = |ports: Value| serde_json::json!({ "ports": ports });
    assert!(admits(&serde_json::json!({}), 5000, &c), "no ports: all");
    assert!(admits(&rule(serde_json::json!([{"port": 5000}])), 5000, &c));
    assert!(admits(
        &rule(serde_json::json!([{"port": "registry"}])),
        5000,
        &c
    ));
    assert!(admits(
        &rule(serde_json::json!([{"port": 4000, "endPort": 6000}])),
        5000,
        &c
    ));
    assert!(!admits(
        &rule(serde_json::json!([{"port": 9090}])),
        5000,
        &c
    ));
    assert!(!admits(
        &rule(serde_json::json!([{"port": "admin"}])),
        5000,
        &c
    ));
}
