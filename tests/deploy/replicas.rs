//! Replicas and the Redis they share: a proxy workload with more than one replica has
//! `[sessions] redis_url` set (or a manifest deleted through one replica would be served by the
//! others), the URL names a Service beside it that selects a Redis pod, and a NetworkPolicy lets
//! only the proxy pods reach that pod's Redis port.

use crate::dockerfile::image;
use crate::manifests::*;
use crate::proxy_container::proxies;
use serde_json::Value;

/// Whether `selector` (matchLabels or a Service's selector) selects pods labelled `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| &labels[k] == v))
}

#[test]
fn more_than_one_replica_shares_a_redis_only_the_proxies_reach() {
    let docs = documents();
    let image = image();
    let mut replicated = 0;
    for p in proxies(&docs) {
        let replicas = p.doc.value["spec"]["replicas"].as_u64().unwrap_or(1);
        if p.doc.kind() != "Deployment" || replicas < 2 {
            continue;
        }
        replicated += 1;
        let config = p.effective_config(&docs, &image).unwrap();
        let url = config.sessions.redis_url.unwrap_or_else(|| {
            panic!(
                "{}: {replicas} replicas without [sessions] redis_url (each would keep serving \
                 manifests deleted through the others)",
                p.name()
            )
        });
        let rest = url.strip_prefix("redis://").expect("a redis:// URL");
        let (host, port) = rest.split_once(':').unwrap_or((rest, "6379"));
        let port: u16 = port.trim_end_matches('/').parse().expect("a port");
        let dir = p.doc.file.parent();
        let beside = |kind: &'static str| {
            docs.iter()
                .filter(move |d| d.kind() == kind && d.file.parent() == dir)
        };
        let service = beside("Service")
            .find(|d| d.name() == host)
            .unwrap_or_else(|| panic!("{}: no Service `{host}` beside it", p.name()));
        assert!(
            service.value["spec"]["ports"]
                .as_array()
                .is_some_and(|a| a.iter().any(|q| q["port"].as_u64() == Some(port.into()))),
            "Service {host} has no port {port}"
        );
        let redis = beside("StatefulSet")
            .chain(beside("Deployment"))
            .find(|d| {
                selects(
                    &service.value["spec"]["selector"],
                    &pod_metadata(&d.value)["labels"],
                )
            })
            .unwrap_or_else(|| panic!("Service {host} selects no workload beside it"));
        let redis_labels = &pod_metadata(&redis.value)["labels"];
        let pod = pod_spec(&redis.value).expect("a pod spec");
        assert!(
            containers(pod)
                .iter()
                .any(|(c, _)| c["image"].as_str().unwrap_or("").contains("redis")),
            "{}: runs no Redis image",
            redis.describe()
        );
        let proxy_labels = &pod_metadata(&p.doc.value)["labels"];
        let guarded = beside("NetworkPolicy").any(|np| {
            let spec = &np.value["spec"];
            selects(&spec["podSelector"]["matchLabels"], redis_labels)
                && spec["ingress"].as_array().is_some_and(|rules| {
                    !rules.is_empty()
                        && rules.iter().all(|r| {
                            r["from"].as_array().is_some_and(|from| {
                                !from.is_empty()
                                    && from.iter().all(|f| {
                                        f["namespaceSelector"].is_null()
                                            && selects(
                                                &f["podSelector"]["matchLabels"],
                                                proxy_labels,
                                            )
                                    })
                            })
                        })
                })
        });
        assert!(
            guarded,
            "{}: no NetworkPolicy lets only the proxy pods reach it",
            redis.describe()
        );
    }
    assert!(
        replicated >= 1,
        "the shared proxy with several replicas was not found"
    );
}
