//! Upload requests given up mid-way on a replica (while waiting for memory, while a full part
//! waits for the one before) and a lease that would run out while a part lands: the upload stays
//! usable from any replica (failed saves are in `saves.rs`), and the helpers both files use. Each
//! test asserts what the client sees (they failed on the first wiring, c81aeae).
//! The emulator is slowed down (`UploadLayerPart:latency=…`) so that a part is in flight, or the
//! one part of a small buffer budget is taken, at a chosen moment; HTTP/2 stream resets stand for
//! a client that gives up on a request (hyper drops the request's future at its current await).

use super::{Redis, Replicas};
use crate::support::*;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub(super) type Chunk = Result<Bytes, std::io::Error>;
pub(super) type Body = BoxBody<Bytes, std::io::Error>;

/// `n` replicas sharing `redis_url`, in front of one emulator injecting `faults`, every replica
/// with the `ECR_PROXY_*` settings `env`.
pub(super) async fn start(
    redis_url: &str,
    n: usize,
    faults: &str,
    env: &[(&str, &str)],
) -> Replicas {
    Replicas::start_with(redis_url, &vec![""; n], faults, env).await
}

/// A body fed through a channel: bytes as they are sent, an error to abort it.
pub(super) fn channel_body() -> (mpsc::Sender<Chunk>, Body) {
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item.map(Frame::data), rx))
    });
    (tx, StreamBody::new(frames).boxed())
}

pub(super) async fn send_bytes(tx: &mpsc::Sender<Chunk>, bytes: &[u8]) {
    for c in bytes.chunks(MIB) {
        tx.send(Ok(Bytes::copy_from_slice(c))).await.expect("body");
    }
}

/// A PATCH over HTTP/2 (prior knowledge) whose body is sent bit by bit; `reset` gives it up the
/// way a client that cancels does (RST_STREAM, then the connection closes).
struct H2Patch {
    tx: mpsc::Sender<Chunk>,
    answer: tokio::task::JoinHandle<Result<http::Response<hyper::body::Incoming>, hyper::Error>>,
    conn: tokio::task::JoinHandle<()>,
}

impl H2Patch {
    async fn start(addr: SocketAddr, loc: &str, headers: &[(&str, &str)]) -> H2Patch {
        let io = hyper_util::rt::TokioIo::new(
            tokio::net::TcpStream::connect(addr).await.expect("connect"),
        );
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .expect("HTTP/2 handshake");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let (tx, body) = channel_body();
        let mut req = http::Request::patch(format!("http://{addr}{loc}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let answer = tokio::spawn(sender.send_request(req.body(body).expect("a request")));
        H2Patch { tx, answer, conn }
    }

    async fn reset(self) {
        let _ = self
            .tx
            .send(Err(std::io::Error::other("the client gives up")))
            .await;
        let answer = tokio::time::timeout(Duration::from_secs(10), self.answer).await;
        assert!(
            !matches!(answer, Ok(Ok(Ok(_)))),
            "the PATCH was answered instead of reset"
        );
        self.conn.abort();
    }
}

/// A PATCH over HTTP/1.1 whose body is sent bit by bit (chunked), answered on `answer`.
pub(super) fn h1_patch(
    url: String,
    headers: Vec<(String, String)>,
) -> (mpsc::Sender<Chunk>, tokio::task::JoinHandle<Resp>) {
    let (tx, body) = channel_body();
    let answer = tokio::spawn(async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (&**k, &**v)).collect();
        send("PATCH", &url, &headers, body).await
    });
    (tx, answer)
}

/// POST an upload on `url`: its location.
pub(super) async fn begin(url: &str, repo: &str) -> String {
    let r = request(
        "POST",
        &format!("{url}/v2/{repo}/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    r.header("location").to_string()
}

pub(super) async fn patch(url: &str, loc: &str, start: usize, bytes: &[u8]) -> Resp {
    let range = format!("{start}-{}", start + bytes.len() - 1);
    request(
        "PATCH",
        &format!("{url}{loc}"),
        &[("Content-Range", range.as_str())],
        bytes.to_vec(),
    )
    .await
}

pub(super) async fn put(url: &str, loc: &str, digest: &str, body: Vec<u8>) -> Resp {
    request("PUT", &format!("{url}{loc}?digest={digest}"), &[], body).await
}

pub(super) fn describe(r: &Resp) -> String {
    format!(
        "{} {} (Range `{}`)",
        r.status,
        String::from_utf8_lossy(&r.body),
        r.header("range")
    )
}

/// Poll the upload's status on `url` until it is no longer `0-0` (at most `limit`).
async fn status_after_save(url: &str, loc: &str, limit: Duration) -> Resp {
    let deadline = Instant::now() + limit;
    loop {
        let r = request("GET", &format!("{url}{loc}"), &[], Bytes::new()).await;
        if r.status != 204 || r.header("range") != "0-0" || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) const PART5: (&str, &str) = ("ECR_PROXY_PART_SIZE", "5MiB");

/// A client that gives up on a streamed PATCH (HTTP/2 reset) while the proxy waits for the
/// previous part to land (the usual place a fast client's request sits: backpressure) leaves a
/// tail that is exactly one part long. The dropped request's save stores it; the status says
/// where the upload stands, and the client's PATCH from there must go on, on any replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_reset_while_its_full_tail_waits_for_the_previous_part_can_be_resumed() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let r = start(&redis.url(), 2, "UploadLayerPart:latency=3000ms", &[PART5]).await;
    let (a, b) = (r.url(0), r.url(1));
    let blob = data(41, 12 * MIB);
    let loc = begin(&a, "handover/full").await;

    let p = H2Patch::start(r.proxies[1].addr(), &loc, &[]).await;
    send_bytes(&p.tx, &blob[..10 * MIB]).await;
    // Part 1 (5 MiB) is in flight for 3 s; the next 5 MiB fill the tail and wait for it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    p.reset().await;

    let status = status_after_save(&a, &loc, Duration::from_secs(20)).await;
    eprintln!("status after the reset: {}", describe(&status));
    assert_eq!(status.status, 204, "{}", describe(&status));
    let have: usize = status.header("range")[2..].parse::<usize>().unwrap() + 1;
    assert_eq!(have, 10 * MIB, "what the dropped request took in is kept");

    let resumed = patch(&b, &loc, have, &blob[have..]).await;
    assert_eq!(
        resumed.status,
        202,
        "the PATCH that resumes from the Range the status gave: {}",
        describe(&resumed)
    );
    let done = put(&a, &loc, &digest(&blob), vec![]).await;
    assert_eq!(done.status, 201, "{}", describe(&done));
}

/// A request whose body stalls while a part is in flight ends (BLOB_UPLOAD_INVALID, the upload
/// kept). Saving it waits for that part; if the part takes longer than what is left of the
/// lease (at most 10 s; ECR retrying a throttled or slow part easily does), the save must still
/// land: the renewer has to keep the lease until the state is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_patch_whose_part_lands_after_the_lease_is_still_saved() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let env = [PART5, ("ECR_PROXY_BODY_TIMEOUT_SECS", "2")];
    let r = start(&redis.url(), 2, "UploadLayerPart:latency=13000ms", &env).await;
    let (a, b) = (r.url(0), r.url(1));
    let blob = data(42, 7 * MIB);
    let loc = begin(&a, "handover/lease").await;

    let (tx, answer) = h1_patch(format!("{b}{loc}"), vec![]);
    send_bytes(&tx, &blob[..6 * MIB]).await;
    // No more bytes: after 2 s the request ends, with part 1 still in flight for 11 s.
    let stalled = answer.await.expect("PATCH task");
    drop(tx);
    eprintln!("stalled PATCH: {}", describe(&stalled));
    assert_eq!(
        (stalled.status, stalled.error_code().as_str()),
        (400, "BLOB_UPLOAD_INVALID"),
        "a stalled body keeps the upload: {}",
        describe(&stalled)
    );
    assert_eq!(stalled.header("range"), format!("0-{}", 6 * MIB - 1));
    let resumed = patch(&a, &loc, 6 * MIB, &blob[6 * MIB..]).await;
    assert_eq!(resumed.status, 202, "{}", describe(&resumed));
}

/// A client gives up (HTTP/2 reset) on a PATCH while the replica it reached waits for part
/// memory to load the upload's tail (its budget is taken). Nothing was changed: the upload must
/// be free again for the client's next PATCH once the lock's lease (10 s) has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_reset_while_it_waits_for_memory_does_not_keep_the_upload_locked() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let env = [
        PART5,
        ("ECR_PROXY_BUFFER_BUDGET", "7MiB"),
        ("ECR_PROXY_BUDGET_WAIT_SECS", "30"),
    ];
    let r = start(&redis.url(), 2, "UploadLayerPart:latency=15000ms", &env).await;
    let (a, b) = (r.url(0), r.url(1));
    let x = data(43, 2 * MIB);
    let loc = begin(&a, "handover/orphan").await;
    let first = patch(&a, &loc, 0, &x[..MIB]).await;
    assert_eq!(first.status, 202, "{}", describe(&first));

    // Another upload takes B's one part of memory for 15 s (its part in flight).
    let y = begin(&b, "handover/other").await;
    let (b2, y2) = (b.clone(), y.clone());
    let other = tokio::spawn(async move { patch(&b2, &y2, 0, &data(44, 5 * MIB)).await });
    tokio::time::sleep(Duration::from_secs(1)).await;

    let range = format!("{}-{}", MIB, 2 * MIB - 1);
    let p = H2Patch::start(
        r.proxies[1].addr(),
        &loc,
        &[("Content-Range", range.as_str())],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    p.reset().await;
    let reset_at = Instant::now();
    let other = other.await.expect("other PATCH");
    assert_eq!(other.status, 202, "{}", describe(&other));
    let past_lease = Duration::from_secs(13).saturating_sub(reset_at.elapsed());
    tokio::time::sleep(past_lease).await;

    let id = loc.rsplit('/').next().unwrap();
    let mut c = ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pttl: i64 = ::redis::cmd("PTTL")
        .arg(format!("ecr-proxy:upload:{{{id}}}:lock"))
        .query_async(&mut c)
        .await
        .unwrap();
    eprintln!("13 s after the reset, the upload's lock has PTTL {pttl} ms");
    let next = patch(&a, &loc, MIB, &x[MIB..]).await;
    let later: i64 = ::redis::cmd("PTTL")
        .arg(format!("ecr-proxy:upload:{{{id}}}:lock"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        next.status,
        202,
        "the next PATCH, 13 s after the reset (lock PTTL {pttl} ms then, {later} ms {} s after \
         the reset): {}",
        reset_at.elapsed().as_secs(),
        describe(&next)
    );
}
