//! What the pods around the proxy give it, checked: a memory limit that covers the upload budget
//! plus the overhead the manifest states; a grace period above preStop + drain; AWS credentials
//! for the proxy alone (skip-containers names every other container, the proxy is a native
//! sidecar); no privileges and the spool on a volume; a NetworkPolicy in front of a proxy that
//! listens on the pod network.

use crate::dockerfile::image;
use crate::manifests::*;
use crate::proxy_container::proxies;
use std::collections::BTreeSet;
use std::net::IpAddr;
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
fn a_proxy_on_the_pod_network_is_behind_a_network_policy() {
    let docs = documents();
    let image = image();
    for p in proxies(&docs) {
        let listen: IpAddr = p
            .effective_config(&docs, &image)
            .unwrap()
            .listen
            .host()
            .parse::<std::net::IpAddr>()
            .expect("a literal IP address");
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
