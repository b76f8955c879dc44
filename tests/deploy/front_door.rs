//! The shared proxy's front door, checked: every proxy that listens beyond the pod's loopback
//! authenticates clients (`[auth]`, never `allow_unauthenticated`) over TLS (docker refuses a
//! plain-HTTP registry that is not on loopback), and the files those sections name (users,
//! token key, certificate, key) come from Secrets mounted read-only, not from the image or a
//! ConfigMap.

use crate::dockerfile::image;
use crate::manifests::*;
use crate::proxy_container::proxies;
use std::path::Path;

#[test]
fn a_registry_on_the_pod_network_authenticates_over_tls_with_secrets() {
    let docs = documents();
    let image = image();
    let mut checked = 0;
    for p in proxies(&docs) {
        let config = p.effective_config(&docs, &image).unwrap();
        if config
            .listen
            .ip()
            .expect("a literal IP address")
            .is_loopback()
        {
            continue;
        }
        checked += 1;
        assert!(
            !config.allow_unauthenticated,
            "{}: allow_unauthenticated",
            p.name()
        );
        let auth = config
            .auth
            .as_ref()
            .unwrap_or_else(|| panic!("{}: listens on {} without [auth]", p.name(), config.listen));
        let tls = config
            .tls
            .as_ref()
            .unwrap_or_else(|| panic!("{}: listens on {} without [tls]", p.name(), config.listen));
        assert!(
            !auth.rules.is_empty(),
            "{}: [auth] without rules lets nobody do anything",
            p.name()
        );
        let mut files: Vec<&Path> = vec![&tls.cert, &tls.key];
        files.extend(auth.htpasswd.as_deref());
        files.extend(auth.token_key_file.as_deref());
        assert!(
            auth.token_key_file.is_some(),
            "{}: replicas need a shared token key (auth.token_key_file)",
            p.name()
        );
        for f in files {
            let (volume, _) = p.mount_for(f).unwrap_or_else(|| {
                panic!("{}: {} is not on a mounted volume", p.name(), f.display())
            });
            assert!(
                volume["secret"]["secretName"].is_string(),
                "{}: {} is on {volume}, not a Secret",
                p.name(),
                f.display()
            );
        }
    }
    assert!(checked >= 1, "the shared proxy was not found");
}
