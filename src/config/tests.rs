//! Tests of `config`.
use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_file_env_and_flags_layer_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:6000\"\n[uploads]\nbuffer_budget = \"128MiB\"\n[repositories]\ncreate_on_push = true\ncreate_patterns = [\"team-*/*\"]\n").unwrap();
    let c = load(Some(&path), &env(&[]), &Flags::default()).unwrap();
    assert_eq!(c.listen.port(), 6000);
    assert_eq!(c.buffer_budget, 128 * MIB);
    assert!(c.create.allows("team-a/app") && !c.create.allows("other/app"));
    let c = load(
        Some(&path),
        &env(&[
            ("ECR_PROXY_LISTEN", "127.0.0.1:7000"),
            ("ECR_PROXY_BUFFER_BUDGET", "64MiB"),
        ]),
        &Flags::default(),
    )
    .unwrap();
    assert_eq!((c.listen.port(), c.buffer_budget), (7000, 64 * MIB));
    let flags = Flags {
        listen: Some("127.0.0.1:8000".parse().unwrap()),
        ..Flags::default()
    };
    assert_eq!(
        load(
            Some(&path),
            &env(&[("ECR_PROXY_LISTEN", "127.0.0.1:7000")]),
            &flags
        )
        .unwrap()
        .listen
        .port(),
        8000
    );
}

#[test]
fn invalid_settings_say_what_to_fix() {
    let e = |pairs: &[(&str, &str)]| {
        load(None, &env(pairs), &Flags::default())
            .unwrap_err()
            .to_string()
    };
    assert!(e(&[("ECR_PROXY_BUFFER_BUDGET", "1MiB")]).contains("cannot hold one part"));
    assert!(e(&[("ECR_PROXY_PART_SIZE", "1MiB")]).contains("5 MiB"));
    assert!(e(&[("ECR_PROXY_LISTEN", "nowhere")]).contains("not an address"));
    let named = load(
        None,
        &env(&[("ECR_PROXY_LISTEN", "localhost:6000")]),
        &Flags::default(),
    );
    assert_eq!(named.unwrap().listen.to_string(), "localhost:6000");
    assert!(e(&[("ECR_PROXY_TAG_MUTABILITY", "SOMETIMES")]).contains("MUTABLE or IMMUTABLE"));
    assert!(e(&[("ECR_PROXY_BUFFER_BUDGET", "12XB")]).contains("size unit"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "lissen = 1\n").unwrap();
    assert!(load(Some(&path), &env(&[]), &Flags::default())
        .unwrap_err()
        .to_string()
        .contains("unknown field"));
}

#[test]
fn the_example_files_load() {
    for f in ["config/ecr-proxy.toml", "config/local.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
        load(Some(&path), &env(&[]), &Flags::default()).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[test]
fn sizes_and_globs() {
    assert_eq!(parse_size("64MiB"), Ok(64 * MIB));
    assert_eq!(parse_size("10485760"), Ok(10 * MIB));
    assert_eq!(parse_size("2G"), Ok(2048 * MIB));
    assert!(parse_size("x").is_err());
    assert!(glob("*", "a/b") && glob("a/*", "a/b/c") && !glob("a/*", "b/a"));
    assert!(glob("a*b*c", "aXbYc") && glob("*", "") && glob("a*", "a") && !glob("a*b", "ba"));
    assert!(glob(
        "repo:org/*:ref:refs/heads/*",
        "repo:org/app:ref:refs/heads/main"
    ));
    assert!(!glob("team-a/*", "team-ab/x") && glob("é*", "éé"));
    // Many stars against a long name: no exponential backtracking (this would never end).
    let long = "a".repeat(20_000);
    assert!(!glob("*a*a*a*a*a*a*a*a*a*a*b", &long));
}

#[test]
fn upload_limits_come_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[uploads]\nbody_timeout_secs = 7\nbudget_wait_secs = 9\nmax_uploads_per_client = 11\nspool_dir = \"/var/tmp\"\nspool_max = \"1GiB\"\n").unwrap();
    let c = load(Some(&path), &env(&[]), &Flags::default()).unwrap();
    assert_eq!(c.uploads.body_read_timeout, Duration::from_secs(7));
    assert_eq!(c.uploads.budget_wait, Duration::from_secs(9));
    assert_eq!(c.uploads.max_sessions_per_client, 11);
    assert_eq!(c.uploads.spool_dir.as_deref(), Some(Path::new("/var/tmp")));
    assert_eq!(c.uploads.spool_max, 1024 * MIB);
    let c = load(
        Some(&path),
        &env(&[
            ("ECR_PROXY_BODY_TIMEOUT_SECS", "3"),
            ("ECR_PROXY_MAX_UPLOADS_PER_CLIENT", "5"),
            ("ECR_PROXY_SPOOL_MAX", "64MiB"),
        ]),
        &Flags::default(),
    )
    .unwrap();
    assert_eq!(c.uploads.body_read_timeout, Duration::from_secs(3));
    assert_eq!(c.uploads.max_sessions_per_client, 5);
    assert_eq!(c.uploads.spool_max, 64 * MIB);
    let d = load(None, &env(&[]), &Flags::default()).unwrap();
    assert_eq!(d.uploads.body_read_timeout, Duration::from_secs(30));
    assert_eq!(d.uploads.max_sessions_per_client, 1024);
    for (var, value, says) in [
        ("ECR_PROXY_BODY_TIMEOUT_SECS", "0", "at least 1"),
        ("ECR_PROXY_MAX_UPLOADS_PER_CLIENT", "many", "whole number"),
        ("ECR_PROXY_SPOOL_MAX", "lots", "not a size"),
    ] {
        let e = load(None, &env(&[(var, value)]), &Flags::default()).unwrap_err();
        assert!(e.to_string().contains(says), "{var}={value}: {e}");
    }
}

#[test]
fn request_timeout_comes_from_the_file_and_the_environment() {
    let d = load(None, &env(&[]), &Flags::default()).unwrap();
    assert_eq!(d.request_timeout, Duration::from_secs(120));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[server]\nrequest_timeout_secs = 7\n").unwrap();
    let c = load(Some(&path), &env(&[]), &Flags::default()).unwrap();
    assert_eq!(c.request_timeout, Duration::from_secs(7));
    let vars = env(&[("ECR_PROXY_REQUEST_TIMEOUT_SECS", "3")]);
    let c = load(Some(&path), &vars, &Flags::default()).unwrap();
    assert_eq!(c.request_timeout, Duration::from_secs(3));
    let zero = env(&[("ECR_PROXY_REQUEST_TIMEOUT_SECS", "0")]);
    let e = load(None, &zero, &Flags::default()).unwrap_err();
    assert!(e.to_string().contains("at least 1"), "{e}");
}

/// The issue's `[auth]` + `[tls]` example, exactly as written: paths are the config file's
/// neighbours, rules keep their order.
#[test]
fn the_auth_and_tls_example_loads_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let example = r#"
[auth]
htpasswd = "users.htpasswd"
[[auth.rules]]
subjects = ["alice"]
repositories = ["team-a/*"]
actions = ["pull", "push", "delete"]
[[auth.rules]]
subjects = ["*"]
repositories = ["*"]
actions = ["pull"]
[tls]
cert = "server.crt"
key = "server.key"
"#;
    std::fs::write(&path, example).unwrap();
    let c = load(Some(&path), &env(&[]), &Flags::default()).unwrap();
    let auth = c.auth.expect("[auth]");
    assert_eq!(auth.htpasswd, Some(dir.path().join("users.htpasswd")));
    assert_eq!(auth.rules.len(), 2);
    assert_eq!(auth.rules[0].subjects, ["alice"]);
    assert_eq!(
        auth.rules[0].actions,
        [
            crate::config::Action::Pull,
            crate::config::Action::Push,
            crate::config::Action::Delete
        ]
    );
    assert_eq!(auth.service, "ecr-proxy");
    assert_eq!(auth.token_ttl, Duration::from_secs(300));
    let tls = c.tls.expect("[tls]");
    assert_eq!(tls.cert, dir.path().join("server.crt"));
    assert_eq!(tls.key, dir.path().join("server.key"));
    assert!(!c.allow_unauthenticated);
    let c = load(
        Some(&path),
        &env(&[("ECR_PROXY_ALLOW_UNAUTHENTICATED", "true")]),
        &Flags::default(),
    )
    .unwrap();
    assert!(c.allow_unauthenticated);
    assert!(load(
        Some(&path),
        &env(&[("ECR_PROXY_ALLOW_UNAUTHENTICATED", "maybe")]),
        &Flags::default()
    )
    .is_err());
}

/// The issue's `[cache]` + `[[mirror.routes]]` example as written, and what is refused.
#[test]
fn the_cache_and_mirror_example_loads_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let example = r#"
[cache]
dir = "/var/cache/ecr-proxy"
max_size = "20GiB"
tag_ttl_secs = 60
max_stale_secs = 86400
[[mirror.routes]]
registry = "docker.io"
prefix = "docker-hub/"
"#;
    std::fs::write(&path, example).unwrap();
    let c = load(Some(&path), &env(&[]), &Flags::default()).unwrap();
    let cache = c.cache.expect("[cache]");
    assert_eq!(cache.dir, Path::new("/var/cache/ecr-proxy"));
    assert_eq!(cache.max_size, 20 << 30);
    assert_eq!(cache.tag_ttl, Duration::from_secs(60));
    assert_eq!(cache.max_stale, Duration::from_secs(86400));
    assert_eq!(c.blob_mode, BlobMode::Stream, "a cache serves blobs itself");
    assert_eq!(c.mirror_routes.len(), 1);
    assert_eq!(c.mirror_routes[0].prefix, "docker-hub/");
    for (bad, fix) in [
        ("[cache]\nmax_size = \"1GiB\"\n", "cache.dir"),
        ("[cache]\ndir = \"c\"\n", "max_size"),
        ("[cache]\ndir = \"c\"\nmax_size = \"1MiB\"\n", "too small"),
        ("[cache]\ndir = \"c\"\nmax_size = \"1GiB\"\ntag_ttl_secs = 100\nmax_stale_secs = 10\n", "max_stale_secs"),
        ("blob_mode = \"redirect\"\n[cache]\ndir = \"c\"\nmax_size = \"1GiB\"\n", "stream"),
        ("[[mirror.routes]]\nregistry = \"docker.io\"\nprefix = \"docker-hub\"\n", "ending in `/`"),
        ("[[mirror.routes]]\nregistry = \"docker.io\"\nprefix = \"a/\"\n[[mirror.routes]]\nregistry = \"docker.io\"\nprefix = \"b/\"\n", "another route"),
    ] {
        std::fs::write(&path, bad).unwrap();
        let e = load(Some(&path), &env(&[]), &Flags::default()).unwrap_err().to_string();
        assert!(e.contains(fix), "{bad}: {e}");
    }
}
