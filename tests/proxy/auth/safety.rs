//! Safe by default: a non-loopback address without `[auth]` is refused at start with the fix in
//! the message (by the library and by the `ecr-proxy` binary), unless the config says so
//! explicitly; bad `[auth]` settings are refused with what to fix.

use super::*;
use ecr_proxy::config::{self, Flags};
use std::collections::HashMap;

fn load(toml: &str, dir: &std::path::Path) -> Result<ecr_proxy::config::ProxyConfig, String> {
    let path = dir.join("config.toml");
    std::fs::write(&path, toml).unwrap();
    config::load(
        Some(&path),
        &HashMap::<String, String>::new(),
        &Flags::default(),
    )
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_public_address_without_auth_is_refused_unless_explicitly_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let emu = ecr_proxy::emulator::start(ecr_proxy::emulator::EmulatorConfig::new(dir.path()))
        .await
        .unwrap();
    let mut c = load("listen = \"0.0.0.0:0\"\n", dir.path()).unwrap();
    c.upstream = upstream(&emu);
    let e = ecr_proxy::proxy::start(c)
        .await
        .err()
        .expect("refused")
        .to_string();
    for fix in ["[auth]", "127.0.0.1", "server.allow_unauthenticated = true"] {
        assert!(e.contains(fix), "the message names `{fix}`: {e}");
    }
    let mut c = load(
        "listen = \"0.0.0.0:0\"\n[server]\nallow_unauthenticated = true\n",
        dir.path(),
    )
    .unwrap();
    c.upstream = upstream(&emu);
    let p = ecr_proxy::proxy::start(c)
        .await
        .expect("explicitly allowed");
    assert!(p.addr().ip().is_unspecified());
    // With [auth], the same address starts.
    std::fs::write(dir.path().join("users"), "").unwrap();
    let mut c = load(
        "listen = \"0.0.0.0:0\"\n[auth]\nhtpasswd = \"users\"\n",
        dir.path(),
    )
    .unwrap();
    c.upstream = upstream(&emu);
    ecr_proxy::proxy::start(c).await.expect("with auth");
}

#[test]
fn the_binary_refuses_too_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ecr-proxy"))
        .args(["serve", "--local"])
        .arg(dir.path())
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to serve") && stderr.contains("[auth]"),
        "{stderr}"
    );
}

#[test]
fn bad_auth_settings_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, fix) in [
        ("[auth]\n", "htpasswd"),
        ("[auth]\nhtpasswd = \"u\"\n[[auth.rules]]\nsubjects = []\nrepositories = [\"*\"]\nactions = [\"pull\"]\n", "subjects"),
        ("[auth]\nhtpasswd = \"u\"\n[[auth.rules]]\nsubjects = [\"*\"]\nrepositories = [\"*\"]\nactions = [\"fly\"]\n", "fly"),
        ("[auth]\nhtpasswd = \"u\"\ntoken_ttl_secs = 1\n", "token_ttl_secs"),
        ("[auth]\n[[auth.issuers]]\nissuer = \"https://x\"\naudiences = []\n", "audiences"),
        ("[tls]\ncert = \"c\"\n", "key"),
        ("[auth]\n[[auth.issuers]]\nissuer = \"https://a\"\naudiences = [\"x\"]\n[[auth.issuers]]\nissuer = \"https://b\"\naudiences = [\"x\"]\n", "subject_prefix"),
    ] {
        let e = load(toml, dir.path()).err().unwrap_or_else(|| panic!("{toml} is refused"));
        assert!(e.contains(fix), "{toml}: {e}");
    }
    // A missing htpasswd file is a start error naming it.
    let c = load("[auth]\nhtpasswd = \"missing.htpasswd\"\n", dir.path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(ecr_proxy::proxy::start(c))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing.htpasswd"), "{e}");
}
