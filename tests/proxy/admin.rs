//! The admin listener (`server.admin_listen`): `/healthz`, `/readyz` and `/metrics` on a port of
//! their own, and nothing else there (a registry path is 404, another method 405, in plain
//! text); during a drain of a real process its `/readyz` answers 503 `draining` on a new
//! connection while the registry port refuses connections, `/metrics` still scrapes, and the
//! listener closes when the drain ends (exit 0); a bad or clashing address stops the start.

use crate::drain::process::{read_answer, request as raw, Answer, Process};
use crate::support::*;
use bytes::Bytes;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const HOST: &str = "Host: registry";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The line of a Prometheus scrape that starts with `sample` (name and labels), if any.
fn sample<'a>(text: &'a str, sample: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.starts_with(sample) && l[sample.len()..].starts_with(' '))
}

#[tokio::test]
async fn the_admin_port_serves_health_readiness_and_metrics_and_nothing_else() {
    let s = Stack::start_with(&[("ECR_PROXY_ADMIN_LISTEN", "127.0.0.1:0")]).await;
    let admin = s.proxy.admin_addr().expect("an admin listener");
    assert_ne!(admin, s.proxy.addr());
    let url = |path: &str| format!("http://{admin}{path}");

    let r = request("GET", &url("/healthz"), &[], Bytes::new()).await;
    assert_eq!((r.status, r.body.as_ref()), (200, b"ok".as_ref()));
    let r = request("GET", &url("/readyz"), &[], Bytes::new()).await;
    assert_eq!((r.status, r.body.as_ref()), (200, b"ready".as_ref()));

    // Registry traffic shows in the admin port's scrape; the admin requests themselves do not.
    let r = request(
        "POST",
        &s.url("/v2/admin/app/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202, "an upload started on the registry port");
    let r = request("GET", &url("/metrics"), &[], Bytes::new()).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(r.body.to_vec()).expect("UTF-8 metrics");
    let started = r#"ecr_proxy_http_requests_total{route="upload",method="POST",status="202"}"#;
    assert_eq!(
        sample(&text, started),
        Some(&*format!("{started} 1")),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ecr_proxy_upload_sessions"),
        Some("ecr_proxy_upload_sessions 1")
    );
    assert!(
        !text.contains(r#"route="health""#) && !text.contains(r#"route="metrics""#),
        "admin requests are not counted:\n{text}"
    );
    let head = request("HEAD", &url("/metrics"), &[], Bytes::new()).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(head.header("content-length").parse::<usize>().unwrap() > 0);

    // Nothing of the registry: its paths are 404 and other methods 405, in plain text.
    for path in ["/v2/", "/v2/_catalog", "/v2/admin/app/blobs/uploads/", "/"] {
        let r = request("GET", &url(path), &[], Bytes::new()).await;
        assert_eq!(r.status, 404, "GET {path} on the admin port");
        assert_eq!(r.header("content-type"), "text/plain");
        assert_eq!(r.header("docker-distribution-api-version"), "");
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("/healthz, /readyz and /metrics"), "{body}");
    }
    let r = request(
        "POST",
        &url("/v2/admin/app/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 404, "no upload can start on the admin port");
    for (method, path) in [
        ("POST", "/healthz"),
        ("DELETE", "/metrics"),
        ("PUT", "/readyz"),
    ] {
        let r = request(method, &url(path), &[], Bytes::new()).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), "GET, HEAD");
    }

    // The registry port keeps serving the same three.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = request("GET", &s.url(path), &[], Bytes::new()).await;
        assert_eq!(r.status, 200, "GET {path} on the registry port");
    }

    // Readiness is the registry's own: with ECR gone, the admin port says so.
    let Stack { proxy, emu, .. } = s;
    drop(emu);
    let r = request("GET", &url("/readyz"), &[], Bytes::new()).await;
    assert_eq!(r.status, 503);
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.starts_with("ECR is not reachable"), "{body}");
    drop(proxy);
    // Dropping aborts the listener's task; its socket closes when the runtime next runs it.
    for _ in 0..500 {
        if TcpStream::connect(admin).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the admin listener still accepts 10 s after the proxy was dropped");
}

#[tokio::test]
async fn without_admin_listen_there_is_no_admin_listener() {
    let s = Stack::start().await;
    assert_eq!(s.proxy.admin_addr(), None);
}

/// A PATCH of 16 MiB to a new upload of `repo` that sends 1 MiB and waits; returns once the
/// proxy has taken that 1 MiB (the upload's status says so), with the PATCH's path.
async fn stalled_patch(p: &Process, repo: &str) -> (TcpStream, String) {
    let mut control = p.connect().await;
    let post = format!("POST /v2/{repo}/blobs/uploads/ HTTP/1.1\r\n{HOST}");
    let started = raw(&mut control, &post).await;
    assert_eq!(started.status, 202, "upload started");
    let upload = started.header("location").expect("Location").to_string();
    let upload = upload
        .trim_start_matches(&format!("http://{}", p.addr))
        .to_string();
    let mut s = p.connect().await;
    let head = format!(
        "PATCH {upload} HTTP/1.1\r\n{HOST}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        16 * MIB
    );
    s.write_all(head.as_bytes()).await.expect("PATCH head");
    s.write_all(&data(3, MIB)).await.expect("the first MiB");
    for _ in 0..200 {
        let r = raw(&mut control, &format!("GET {upload} HTTP/1.1\r\n{HOST}")).await;
        if r.header("range") == Some(&format!("0-{}", MIB - 1)) {
            return (s, upload);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the proxy never took the PATCH's first MiB");
}

/// `GET path` on a new connection to `addr`.
async fn get_new(addr: &str, path: &str) -> Answer {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr} for {path}: {e}"));
    raw(&mut s, &format!("GET {path} HTTP/1.1\r\n{HOST}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_drain_the_admin_port_answers_draining_while_the_registry_refuses() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let admin = format!("127.0.0.1:{}", free_port());
    let env = [
        ("ECR_PROXY_DRAIN_SECS", "600"),
        ("ECR_PROXY_ADMIN_LISTEN", admin.as_str()),
    ];
    let mut proxy = Process::serve(dir.path(), &env).await;
    let listening = proxy.log_line("admin listening");
    assert_eq!(listening["fields"]["addr"], admin.as_str(), "{listening}");
    assert_eq!(
        get_new(&admin, "/readyz").await.status,
        200,
        "ready at first"
    );

    // A request in progress holds the drain open.
    let (mut patch, _) = stalled_patch(&proxy, "admin/drain").await;

    proxy.signal("TERM");
    proxy.refused().await;
    let ready = get_new(&admin, "/readyz").await;
    assert_eq!(
        (ready.status, String::from_utf8_lossy(&ready.body).as_ref()),
        (503, "draining"),
        "/readyz on a new admin connection during the drain"
    );
    assert_eq!(get_new(&admin, "/healthz").await.status, 200);
    let scrape = get_new(&admin, "/metrics").await;
    assert_eq!(scrape.status, 200, "/metrics during the drain");
    let text = String::from_utf8_lossy(&scrape.body);
    assert_eq!(
        sample(&text, "ecr_proxy_upload_sessions"),
        Some("ecr_proxy_upload_sessions 1"),
        "{text}"
    );
    assert!(proxy.running(), "still draining (the PATCH holds it)");

    // The PATCH finishes; the drain ends; the admin listener closes; exit 0.
    patch
        .write_all(&data(4, 15 * MIB))
        .await
        .expect("the rest of the PATCH, during the drain");
    let done = read_answer(&mut patch).await;
    assert_eq!(done.status, 202, "the PATCH in progress completes");
    assert_eq!(done.header("range"), Some(&*format!("0-{}", 16 * MIB - 1)));
    let status = proxy.exit_status(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "exit status after the drain");
    let draining = proxy.log_line("the admin listener keeps answering until the drain ends");
    assert_eq!(draining["fields"]["admin"], admin.as_str(), "{draining}");
    proxy.log_line("drained: every connection finished");
    proxy.log_line("admin listener stopped");
    match TcpStream::connect(&admin).await {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("the admin port still accepts after the process exited"),
    }
}

/// Run `ecr-proxy serve --local DIR --listen LISTEN` with `env` and wait (60 s at most) for it
/// to exit; its exit code and stderr.
async fn start_fails(dir: &std::path::Path, listen: &str, env: &[(&str, &str)]) -> (i32, String) {
    let err = dir.join("stderr");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ecr-proxy"))
        .args(["serve", "--local"])
        .arg(dir.join("data"))
        .args(["--listen", listen])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("ecr-proxy starts");
    for _ in 0..1200 {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let text = std::fs::read_to_string(&err).expect("read stderr");
            return (status.code().expect("an exit code"), text);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "ecr-proxy {env:?} kept running instead of refusing its configuration; stderr:\n{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
}

#[tokio::test]
async fn a_bad_clashing_or_taken_admin_address_stops_the_start() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let taken = taken.local_addr().expect("its address").to_string();
    let own = "is the registry's own address";
    for (admin, says) in [
        (listen.clone(), own),
        (format!("0.0.0.0:{port}"), own),
        ("nowhere".to_string(), "not an address like"),
        (
            taken.clone(),
            "(server.admin_listen, ECR_PROXY_ADMIN_LISTEN): Address already in use",
        ),
    ] {
        let env = [("ECR_PROXY_ADMIN_LISTEN", admin.as_str())];
        let (code, stderr) = start_fails(dir.path(), &listen, &env).await;
        assert_eq!(code, 1, "ECR_PROXY_ADMIN_LISTEN={admin}: {stderr}");
        assert!(
            stderr.contains(says),
            "ECR_PROXY_ADMIN_LISTEN={admin}: {stderr}"
        );
    }
}
