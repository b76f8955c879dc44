//! The registry port over TLS (`[tls]`), against a real proxy on loopback with a CA, server and
//! client certificates made by the test with the openssl CLI: curl and skopeo verifying the
//! server, HTTP/2 through ALPN, a replaced certificate served without a restart, plain HTTP
//! answered with the https hint, the header timer over TLS, a drain over HTTP/1 and HTTP/2, and
//! client certificates (required; and as an identity for the access rules).

#[path = "tls/as_written.rs"]
mod as_written;
#[path = "tls/client_certs.rs"]
mod client_certs;
#[path = "tls/pki.rs"]
mod pki;

use crate::connections::raw::{closed_within, read_response};
use crate::support::*;
use bytes::Bytes;
use pki::Pki;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GET_V2: &[u8] = b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// A proxy with `[tls]` from a fresh PKI, and the PKI.
struct Secure {
    stack: Stack,
    pki: Pki,
    _dir: tempfile::TempDir,
}

/// Start with `[tls]` naming the server certificate; `more` follows inside `[tls]` (or opens
/// sections of its own; `{pki}` in it is the PKI's folder). `None`: openssl is missing.
async fn start(more: &str) -> Option<Secure> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = Pki::create(&dir.path().join("pki"))?;
    let toml = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n{}",
        pki.arg("server.crt"),
        pki.arg("server.key"),
        more.replace("{pki}", &pki.dir.display().to_string())
    );
    let stack = Stack::start_config(&toml, &[], &[]).await;
    Some(Secure {
        stack,
        pki,
        _dir: dir,
    })
}

impl Secure {
    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.stack.host())
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.stack.proxy.addr()
    }

    /// The DER of the certificate the proxy presents to a new connection.
    async fn served(&self) -> Vec<u8> {
        let c = self.pki.connect(self.addr(), &[]).await;
        c.get_ref()
            .1
            .peer_certificates()
            .expect("a server certificate")[0]
            .to_vec()
    }

    /// `GET /v2/` over a new TLS connection (HTTP/1.1): its status.
    async fn get_v2(&self) -> u16 {
        let mut c = self.pki.connect(self.addr(), &["http/1.1"]).await;
        c.write_all(GET_V2).await.expect("send GET /v2/");
        read_response(&mut c).await.status
    }
}

/// `curl -sS ARGS`, its output.
async fn curl(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl runs")
}

/// `curl` writing only `%{http_code} %{http_version}`.
async fn curl_status(args: &[&str]) -> String {
    let mut all = vec!["-o", "/dev/null", "-w", "%{http_code} %{http_version}"];
    all.extend_from_slice(args);
    let out = curl(&all).await;
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn curl_verifies_the_server_and_gets_http2_or_http1() {
    if !tool_available("curl", "--version") {
        return;
    }
    let Some(s) = start("").await else { return };
    let (ca, url) = (s.pki.arg("ca.crt"), s.url("/v2/"));
    assert_eq!(
        curl_status(&["--cacert", &ca, "--http2", &url]).await,
        "200 2",
        "HTTP/2 through ALPN"
    );
    assert_eq!(
        curl_status(&["--cacert", &ca, "--http1.1", &url]).await,
        "200 1.1"
    );
    let port = s.addr().port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let by_name = format!("https://localhost:{port}/v2/");
    assert_eq!(
        curl_status(&["--cacert", &ca, "--resolve", &resolve, &by_name]).await,
        "200 2",
        "the certificate's DNS name verifies too"
    );

    let out = curl(&["-o", "/dev/null", &url]).await;
    assert_eq!(
        out.status.code(),
        Some(60),
        "without the CA, curl cannot verify the server: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_in_and_out_verifying_the_server() {
    if !tool_available("skopeo", "--version") {
        return;
    }
    let Some(s) = start("").await else { return };
    let tmp = tempfile::tempdir().expect("temporary directory");
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(s.pki.path("ca.crt"), certs.join("ca.crt")).unwrap();
    let certs = certs.display().to_string();

    let src = OciLayout::create(&tmp.path().join("src"));
    let manifest = src.image("amd64", &[data(1, 200 * 1024), data(2, 3 * MIB)]);
    src.tag("v1", OCI_MANIFEST, &manifest);
    let remote = format!("docker://{}/tls/app:v1", s.stack.host());
    skopeo(
        tmp.path(),
        &[
            "copy",
            "--dest-cert-dir",
            &certs,
            "--dest-tls-verify=true",
            "--preserve-digests",
            &format!("oci:{}:v1", src.dir.display()),
            &remote,
        ],
    )
    .await;

    let out = OciLayout {
        dir: tmp.path().join("out"),
    };
    skopeo(
        tmp.path(),
        &[
            "copy",
            "--src-cert-dir",
            &certs,
            "--src-tls-verify=true",
            "--preserve-digests",
            &remote,
            &format!("oci:{}:v1", out.dir.display()),
        ],
    )
    .await;
    let tagged = out.tagged("v1").expect("v1 in the copied layout");
    assert_eq!(tagged["digest"], digest(&manifest).as_str());
    assert!(
        out.blobs() == src.blobs(),
        "the image came back byte for byte"
    );
}

#[tokio::test]
async fn a_replaced_certificate_is_served_without_a_restart() {
    let Some(s) = start("").await else { return };
    let first = s.served().await;
    assert_eq!(first, s.pki.der("server.crt"));

    s.pki.server("next", 1002);
    let want = s.pki.der("next.crt");
    assert_ne!(want, first);
    std::fs::write(
        s.pki.path("server.crt"),
        std::fs::read(s.pki.path("next.crt")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        s.pki.path("server.key"),
        std::fs::read(s.pki.path("next.key")).unwrap(),
    )
    .unwrap();
    let mut seen = first;
    for _ in 0..100 {
        if seen == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = s.served().await;
    }
    assert!(
        seen == want,
        "the new certificate (serial 1002) is not served 10 s after it was written"
    );
    assert_eq!(s.get_v2().await, 200, "requests go on over the new one");
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_400_with_the_https_hint() {
    let Some(s) = start("").await else { return };
    let mut tcp = TcpStream::connect(s.addr()).await.expect("connect");
    tcp.write_all(GET_V2).await.expect("send a plain request");
    let answer = read_response(&mut tcp).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.header("connection"), Some("close"));
    let body = String::from_utf8_lossy(&answer.body);
    assert!(body.contains("https://"), "no https hint in {body:?}");
    assert!(
        closed_within(&mut tcp, Duration::from_secs(10)).await,
        "the connection stays open after the 400"
    );
    assert_eq!(s.get_v2().await, 200, "TLS is served afterwards");
}

#[tokio::test]
async fn silent_clients_and_half_handshakes_are_cut_after_the_header_timeout() {
    let Some(s) = start("[server]\nheader_read_timeout_secs = 1\n").await else {
        return;
    };
    let mut silent = TcpStream::connect(s.addr()).await.expect("connect");
    let mut half = TcpStream::connect(s.addr()).await.expect("connect");
    // A handshake record's header promising 512 bytes, then the first two of them.
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .await
        .expect("send half a ClientHello");
    let mut quiet = s.pki.connect(s.addr(), &["http/1.1"]).await;
    let wait = Duration::from_secs(15);
    assert!(
        closed_within(&mut silent, wait).await,
        "a client that sends nothing is never cut"
    );
    assert!(
        closed_within(&mut half, wait).await,
        "half a ClientHello is never cut"
    );
    let mut buf = [0u8; 64];
    let ended = tokio::time::timeout(wait, async {
        loop {
            match quiet.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "a TLS client that sends no request is never cut"
    );
    assert_eq!(s.get_v2().await, 200, "others are still served");
}

#[tokio::test]
async fn a_drain_closes_idle_tls_connections_over_http1_and_http2() {
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let Some(s) = start("").await else { return };
    let mut h1 = s.pki.connect(s.addr(), &["http/1.1"]).await;
    h1.write_all(GET_V2).await.expect("send GET /v2/");
    assert_eq!(read_response(&mut h1).await.status, 200);

    let h2 = s.pki.connect(s.addr(), &["h2"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN h2");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(h2))
            .await
            .expect("HTTP/2 handshake");
    let h2_conn = tokio::spawn(conn);
    let req = http::Request::get(format!("https://localhost:{}/v2/", s.addr().port()))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.expect("HTTP/2 request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    drop(resp);

    let Secure {
        stack,
        pki: _pki,
        _dir,
    } = s;
    let Stack {
        proxy, emu: _emu, ..
    } = stack;
    let stopped = proxy
        .drain(std::future::pending())
        .await
        .expect("the drain ends");
    assert_eq!(stopped.cut, 0, "idle TLS connections are closed, not cut");
    let mut buf = [0u8; 64];
    let h1_end = tokio::time::timeout(Duration::from_secs(10), h1.read(&mut buf)).await;
    assert!(
        matches!(h1_end, Ok(Ok(0) | Err(_))),
        "the HTTP/1 connection is closed: {h1_end:?}"
    );
    let h2_end = tokio::time::timeout(Duration::from_secs(10), h2_conn).await;
    assert!(h2_end.is_ok(), "the HTTP/2 connection is closed (GOAWAY)");
}

#[tokio::test]
async fn a_bad_certificate_or_key_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let Some(pki) = Pki::create(&dir.path().join("pki")) else {
        return;
    };
    pki.server("other", 1003);
    let start_error = |cert: &str, key: &str| {
        let path = dir.path().join(format!("{cert}-{key}.toml"));
        let toml = format!(
            "listen = \"127.0.0.1:0\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            pki.arg(cert),
            pki.arg(key)
        );
        std::fs::write(&path, toml).unwrap();
        let env = std::collections::HashMap::new();
        let config = ecr_proxy::config::load(Some(&path), &env, &Default::default())
            .expect("a valid config");
        async move {
            match ecr_proxy::proxy::start(config).await {
                Ok(_) => panic!("started with a bad [tls]"),
                Err(e) => e.to_string(),
            }
        }
    };
    let e = start_error("missing.crt", "server.key").await;
    assert!(e.contains("missing.crt") && e.contains("tls.cert"), "{e}");
    let e = start_error("server.key", "server.key").await;
    assert!(e.contains("no certificate in it"), "{e}");
    let e = start_error("server.crt", "other.key").await;
    assert!(
        e.contains("other.key") && e.contains("does not match the certificate"),
        "{e}"
    );
}
