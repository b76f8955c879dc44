//! The Kubernetes manifests checked against the code they deploy: every file parses and is in its
//! kustomization; each ecr-proxy container's argv (command/args over the Dockerfile's
//! ENTRYPOINT/CMD) parses with the real CLI and its config loads; the baked config is safe for a
//! sidecar; probes and the Prometheus annotations name paths the proxy serves on a port the
//! kubelet reaches (the pod's IP, never its loopback): the admin port when the registry listens
//! on loopback. What the pods get (memory, grace, credentials, privileges, network) is
//! `pods.rs`.

use crate::dockerfile::image;
use crate::manifests::*;
use crate::proxy_container::{proxies, ProxyContainer};
use ecr_proxy::config::ProxyConfig;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What `proxy::handlers` answers for orchestrators.
const HEALTH_PATHS: [&str; 2] = ["/healthz", "/readyz"];

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
    assert!(
        c.listen.ip().expect("a literal IP address").is_loopback(),
        "listens on {}",
        c.listen
    );
    // `docker run` of the image opens nothing else; the manifests add the admin port.
    assert_eq!(c.admin_listen, None, "the baked config opens an admin port");
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

/// The listener of `config` a kubelet or Prometheus connecting to the pod's IP on `port` reaches:
/// the registry's or the admin one, bound to every address (a manifest cannot name the pod's IP).
fn reached_on(who: &str, config: &ProxyConfig, port: u16) -> SocketAddr {
    let registry = SocketAddr::new(
        config.listen.ip().expect("a literal IP address"),
        config.listen.port(),
    );
    let listener = [Some(registry), config.admin_listen]
        .into_iter()
        .flatten()
        .find(|a| a.port() == port)
        .unwrap_or_else(|| {
            panic!(
                "{who}: port {port} is neither listen ({}) nor admin_listen ({:?})",
                config.listen, config.admin_listen
            )
        });
    // The kubelet connects to the pod's IP: a listener bound to loopback would fail it.
    assert!(
        listener.ip().is_unspecified(),
        "{who}: the pod's IP cannot reach a listener on {listener}"
    );
    listener
}

#[test]
fn probes_ask_served_paths_on_a_port_the_kubelet_reaches() {
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
            assert!(get["host"].is_null(), "{}: {kind} sets a host", p.name());
            let who = format!("{}: {kind}", p.name());
            let port = probe_port(&p, &get["port"]);
            let reached = reached_on(&who, &config, port);
            if config
                .listen
                .ip()
                .expect("a literal IP address")
                .is_loopback()
            {
                assert_eq!(
                    Some(reached),
                    config.admin_listen,
                    "{who}: the registry is on loopback, so probes go to the admin port"
                );
            }
        }
        assert_eq!(
            p.container["livenessProbe"]["httpGet"]["path"],
            "/healthz",
            "{}: liveness must not depend on ECR",
            p.name()
        );
    }
}

#[test]
fn the_admin_port_is_named_and_prometheus_scrapes_it() {
    let docs = documents();
    let image = image();
    for p in proxies(&docs) {
        let config = p.effective_config(&docs, &image).unwrap();
        let admin = config
            .admin_listen
            .unwrap_or_else(|| panic!("{}: no admin_listen", p.name()));
        let named = p.container["ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|q| q["name"] == "admin"))
            .unwrap_or_else(|| panic!("{}: no container port named admin", p.name()));
        assert_eq!(
            named["containerPort"].as_u64(),
            Some(u64::from(admin.port())),
            "{}: the port named admin is not admin_listen's ({admin})",
            p.name()
        );
        let annotations = &pod_metadata(&p.doc.value)["annotations"];
        let who = format!("{}: prometheus.io annotations", p.name());
        assert_eq!(annotations["prometheus.io/scrape"], "true", "{who}");
        let path = annotations["prometheus.io/path"]
            .as_str()
            .unwrap_or("/metrics");
        assert_eq!(path, "/metrics", "{who}");
        let port: u16 = annotations["prometheus.io/port"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{who}: prometheus.io/port is not a port number"));
        assert_eq!(reached_on(&who, &config, port), admin, "{who}");
    }
}
