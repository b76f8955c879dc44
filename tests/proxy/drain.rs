//! Graceful drain on a real `ecr-proxy serve --local` process: SIGTERM in the middle of a push
//! lets it finish (and `/readyz` says 503, new connections are refused, the process exits 0);
//! a request that outlasts the drain period is cut; idle connections close at once; a second
//! signal stops at once; the emulator stops on a signal too. Raw TCP clients, so the test
//! decides when each byte is sent.

#[path = "drain/process.rs"]
pub(crate) mod process;

use crate::support::{data, digest, MIB};
use process::{closed_within, read_answer, request, Process};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const HOST: &str = "Host: registry";

/// Start an upload of `repo` on `s`; returns the path of its `Location`.
async fn start_upload(p: &Process, s: &mut TcpStream, repo: &str) -> String {
    let started = request(
        s,
        &format!("POST /v2/{repo}/blobs/uploads/ HTTP/1.1\r\n{HOST}"),
    )
    .await;
    assert_eq!(started.status, 202, "upload started");
    let location = started.header("location").expect("Location");
    location
        .trim_start_matches(&format!("http://{}", p.addr))
        .to_string()
}

/// A PATCH of 16 MiB to `upload` that sends 1 MiB and then nothing; returns once the proxy has
/// taken that 1 MiB (the upload's status says so), so the request is in flight.
async fn stalled_patch(p: &Process, upload: &str) -> TcpStream {
    let mut s = p.connect().await;
    let head = format!(
        "PATCH {upload} HTTP/1.1\r\n{HOST}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        16 * MIB
    );
    s.write_all(head.as_bytes()).await.expect("PATCH head");
    s.write_all(&data(7, MIB)).await.expect("PATCH's first MiB");
    let mut status = p.connect().await;
    for _ in 0..200 {
        let r = request(&mut status, &format!("GET {upload} HTTP/1.1\r\n{HOST}")).await;
        if r.header("range") == Some(&format!("0-{}", MIB - 1)) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the proxy never took the PATCH's first MiB");
}

/// The spool directories the proxy left in `dir/spool`.
fn spool_left(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("spool"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_push_lets_it_finish_refuses_new_connections_and_exits_0() {
    let dir = tempfile::tempdir().expect("temporary directory");
    const PERIOD: u64 = 120;
    let mut proxy = Process::serve(dir.path(), &[("ECR_PROXY_DRAIN_SECS", "120")]).await;
    let blob = data(10, 256 * MIB);
    let blob_digest = digest(&blob);

    // A kept-alive connection that is ready before the signal.
    let mut probe = proxy.connect().await;
    let ready = request(&mut probe, &format!("GET /readyz HTTP/1.1\r\n{HOST}")).await;
    assert_eq!(ready.status, 200, "ready before the signal");

    // The push: one PUT with the whole blob, 64 MiB of it sent before the signal.
    let mut push = proxy.connect().await;
    let upload = start_upload(&proxy, &mut push, "drain/app").await;
    let sep = if upload.contains('?') { '&' } else { '?' };
    let head = format!(
        "PUT {upload}{sep}digest={blob_digest} HTTP/1.1\r\n{HOST}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        blob.len()
    );
    push.write_all(head.as_bytes()).await.expect("PUT head");
    push.write_all(&blob[..64 * MIB])
        .await
        .expect("the first 64 MiB");

    // The next /readyz on the probe connection, all but its head's last CRLF.
    probe
        .write_all(format!("GET /readyz HTTP/1.1\r\n{HOST}\r\n").as_bytes())
        .await
        .expect("a partial head");
    // Let the server read those bytes before the signal lands.
    tokio::time::sleep(Duration::from_millis(300)).await;

    proxy.signal("TERM");
    proxy.refused().await;

    probe.write_all(b"\r\n").await.expect("the head's end");
    let draining = read_answer(&mut probe).await;
    assert_eq!(draining.status, 503, "/readyz while draining");
    assert_eq!(String::from_utf8_lossy(&draining.body), "draining");
    assert_eq!(draining.header("connection"), Some("close"));
    assert!(
        closed_within(&mut probe, Duration::from_secs(10)).await,
        "the probe connection is closed after its last answer"
    );

    push.write_all(&blob[64 * MIB..])
        .await
        .expect("the rest of the blob, sent during the drain");
    let done = read_answer(&mut push).await;
    assert_eq!(
        done.status,
        201,
        "the push completes: {}",
        String::from_utf8_lossy(&done.body)
    );
    assert_eq!(
        done.header("docker-content-digest"),
        Some(blob_digest.as_str())
    );
    assert_eq!(done.header("connection"), Some("close"));
    assert!(
        closed_within(&mut push, Duration::from_secs(10)).await,
        "the push connection is closed after its answer"
    );

    let status = proxy.exit_status(Duration::from_secs(PERIOD)).await;
    assert_eq!(status.code(), Some(0), "exit status after the drain");
    proxy.log_line("SIGTERM received: draining");
    proxy.log_line("/readyz answers 503");
    proxy.log_line("no longer accepting connections");
    proxy.log_line("drained: every connection finished");
    let uploads = proxy.log_line("uploads unfinished");
    assert_eq!(uploads["fields"]["unfinished_uploads"], 0);
    assert!(proxy.log_lines("cutting").is_empty(), "nothing was cut");
    assert_eq!(spool_left(dir.path()), Vec::<std::path::PathBuf>::new());

    // The blob's bytes, read back through a new proxy on the same data.
    let again = Process::serve(dir.path(), &[]).await;
    let (got, len) = again
        .get_digest(&format!("/v2/drain/app/blobs/{blob_digest}"))
        .await;
    assert_eq!((got, len), (blob_digest, blob.len()));
}

#[tokio::test]
async fn a_request_outlasting_the_drain_period_is_cut_and_the_process_exits_0() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut proxy = Process::serve(dir.path(), &[("ECR_PROXY_DRAIN_SECS", "2")]).await;
    let mut control = proxy.connect().await;
    let upload = start_upload(&proxy, &mut control, "drain/stalled").await;
    drop(control);
    let mut stalled = stalled_patch(&proxy, &upload).await;

    proxy.signal("TERM");
    let status = proxy.exit_status(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "exit status after a cut");
    assert!(
        closed_within(&mut stalled, Duration::from_secs(10)).await,
        "the stalled request's connection is closed"
    );
    let cut = proxy.log_line("the drain period (2s) is over: cutting");
    assert_eq!(cut["fields"]["cut"], 1, "{cut}");
    let uploads = proxy.log_line("uploads unfinished");
    assert_eq!(uploads["fields"]["unfinished_uploads"], 1, "{uploads}");
    assert_eq!(spool_left(dir.path()), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn idle_connections_close_at_once_and_a_second_signal_stops_the_drain() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut proxy = Process::serve(dir.path(), &[("ECR_PROXY_DRAIN_SECS", "600")]).await;
    let mut idle = proxy.connect().await;
    let v2 = request(&mut idle, &format!("GET /v2/ HTTP/1.1\r\n{HOST}")).await;
    assert_eq!(
        (v2.status, v2.header("connection")),
        (200, None),
        "kept alive"
    );
    let upload = start_upload(&proxy, &mut idle, "drain/second").await;
    let mut stalled = stalled_patch(&proxy, &upload).await;

    proxy.signal("TERM");
    assert!(
        closed_within(&mut idle, Duration::from_secs(10)).await,
        "an idle kept-alive connection is closed when the drain begins"
    );
    assert!(
        proxy.running(),
        "still draining (the stalled request holds it)"
    );

    proxy.signal("INT");
    let status = proxy.exit_status(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "exit status after a second signal");
    proxy.log_line("SIGINT received during the drain: stopping at once");
    // The stalled request, and maybe the idle connection still lingering (reading what the
    // client might send, up to 1 s) after its close.
    let cut = proxy.log_line("told to stop at once: cutting");
    assert!(cut["fields"]["cut"].as_u64() >= Some(1), "{cut}");
    assert!(
        closed_within(&mut stalled, Duration::from_secs(10)).await,
        "the stalled request's connection is closed"
    );
}

#[tokio::test]
async fn the_emulator_stops_on_a_signal_with_status_0() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for signal in ["TERM", "INT"] {
        let mut emulator = Process::emulator(dir.path()).await;
        emulator.signal(signal);
        let status = emulator.exit_status(Duration::from_secs(30)).await;
        assert_eq!(status.code(), Some(0), "exit status after SIG{signal}");
        emulator.log_line(&format!("SIG{signal} received: stopping the emulator"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_stream_in_flight_finishes_and_the_connection_ends_with_goaway() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, StreamBody};
    use hyper::body::Frame;
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut proxy = Process::serve(dir.path(), &[("ECR_PROXY_DRAIN_SECS", "120")]).await;
    let io = hyper_util::rt::TokioIo::new(proxy.connect().await);
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .expect("HTTP/2 handshake");
    let conn = tokio::spawn(conn);
    let empty = Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed();
    let url = |path: &str| format!("http://{}{path}", proxy.addr);
    let started = sender
        .send_request(
            http::Request::post(url("/v2/drain/h2/blobs/uploads/"))
                .body(empty)
                .expect("a request"),
        )
        .await
        .expect("POST answered");
    assert_eq!(started.status(), 202, "upload started over HTTP/2");
    let location = started.headers()["location"]
        .to_str()
        .expect("Location")
        .trim_start_matches(&url(""))
        .to_string();

    let blob = data(11, 32 * MIB);
    let blob_digest = digest(&blob);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(Frame::data(chunk)), rx))
    });
    let put = sender.send_request(
        http::Request::put(url(&format!("{location}?digest={blob_digest}")))
            .body(StreamBody::new(frames).boxed())
            .expect("a request"),
    );
    let put = tokio::spawn(put);
    for chunk in blob[..16 * MIB].chunks(MIB) {
        tx.send(Bytes::copy_from_slice(chunk)).await.expect("send");
    }

    proxy.signal("TERM");
    proxy.refused().await;
    for chunk in blob[16 * MIB..].chunks(MIB) {
        tx.send(Bytes::copy_from_slice(chunk)).await.expect("send");
    }
    drop(tx);
    let done = put
        .await
        .expect("the PUT task")
        .expect("PUT answered during the drain");
    assert_eq!(done.status(), 201, "the stream in flight completes");
    assert_eq!(
        done.headers()["docker-content-digest"],
        blob_digest.as_str()
    );
    drop(done);
    let ended = tokio::time::timeout(Duration::from_secs(30), conn)
        .await
        .expect("the server ends the HTTP/2 connection after its last stream")
        .expect("the connection task");
    assert!(
        ended.is_ok(),
        "a clean end (GOAWAY), not an error: {ended:?}"
    );

    let status = proxy.exit_status(Duration::from_secs(120)).await;
    assert_eq!(status.code(), Some(0));
    proxy.log_line("drained: every connection finished");
}
