//! One AWS JSON 1.1 call, end to end: check what SigV4 allows without the body (header shape,
//! scope, date, access key), read the body (bounded), check the signature over it, find
//! the operation from `X-Amz-Target`, apply injected faults, run the operation on a blocking
//! thread, and write the JSON answer or the JSON error. The only place emulator errors become
//! HTTP responses.

use super::error::EcrError;
use super::faults::Fault;
use super::input::Input;
use super::ops::{self, Call};
use super::Shared;
use crate::body::{self, Body};
use bytes::{Bytes, BytesMut};
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use sha2::{Digest as _, Sha256};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";
/// A 20 MiB part is ~26.7 MiB of base64 in JSON; leave room.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// The connection must be closed without an answer (injected `drop` fault).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub struct DropConnection;

pub async fn handle<B>(
    shared: Arc<Shared>,
    req: Request<B>,
) -> Result<Response<Body>, DropConnection>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let op_name = target.strip_prefix(TARGET_PREFIX).unwrap_or(target);
    // The span goes with the future (not a guard held across awaits): under `serve --local` the
    // emulator shares the proxy's threads, and a held guard would tag other requests' lines.
    let span = tracing::info_span!("ecr", op = %op_name, request_id = %request_id);
    call(shared, req, &request_id).instrument(span).await
}

async fn call<B>(
    shared: Arc<Shared>,
    req: Request<B>,
    request_id: &str,
) -> Result<Response<Body>, DropConnection>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let refused = |e: super::sigv4::AuthError| {
        tracing::info!(code = e.aws_code(), "refused signature: {e}");
        error_response(&EcrError::Auth(e.aws_code(), e.to_string()), request_id)
    };
    // Header, scope, date and access key first: a request that cannot succeed is refused
    // before a byte of its (up to 32 MiB) body is read.
    let creds = &shared.config.credentials;
    let prechecked =
        match super::sigv4::precheck(&parts.uri, &parts.headers, creds, "ecr", super::unix_now()) {
            Ok(p) => p,
            Err(e) => return Ok(refused(e)),
        };
    let (bytes, payload_sha256) = match read_body(body, &parts.headers, &shared.bodies).await {
        Ok(b) => b,
        Err(e) => {
            let err = EcrError::Serialization(format!(
                "Could not read the request body (limit {MAX_BODY} bytes): {e}"
            ));
            return Ok(error_response(&err, request_id));
        }
    };
    if let Err(e) = prechecked.verify(&parts.method, &parts.uri, &parts.headers, &payload_sha256) {
        shared.bodies.give(bytes);
        return Ok(refused(e));
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let op_name = target.strip_prefix(TARGET_PREFIX).unwrap_or(target);
    shared.count_call(op_name);
    let Some(op) = target.strip_prefix(TARGET_PREFIX).and_then(ops::lookup) else {
        let err = EcrError::UnknownOperation(format!(
            "The operation `{target}` is not known to this service"
        ));
        return Ok(error_response(&err, request_id));
    };

    let (latency, fault) = shared.faults.decide(op_name);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Some(Fault::Throttle) => {
            return Ok(error_response(
                &EcrError::Throttling("Rate exceeded".into()),
                request_id,
            ))
        }
        Some(Fault::Server) => {
            return Ok(error_response(
                &EcrError::Server("Injected server fault".into()),
                request_id,
            ))
        }
        _ => {}
    }

    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let base_url = format!("http://{}", host.unwrap_or_else(|| shared.addr.to_string()));
    let ctx = shared.clone();
    let span = tracing::Span::current();
    let result = tokio::task::spawn_blocking(move || {
        let _in_request = span.enter(); // a blocking thread runs one call at a time
        let result = Input::parse_body(bytes.clone())
            .and_then(|input| op(&ctx.ctx, &Call { input, base_url }));
        ctx.bodies.give(bytes);
        result
    })
    .await
    .unwrap_or_else(|e| Err(EcrError::Server(format!("operation failed: {e}"))));

    if fault == Some(Fault::DropAfter) {
        tracing::info!(outcome = ?result.as_ref().map(|_| ()).map_err(|e| e.code()), "dropping the connection (injected)");
        return Err(DropConnection);
    }
    Ok(match result {
        Ok(out) => {
            tracing::debug!("ok");
            json_response(StatusCode::OK, out.to_string(), request_id)
        }
        Err(e) => {
            // Most 4xx answers are the ordinary lookups of a push (RepositoryNotFound,
            // LayersNotFound…): DEBUG, as ECR's own clients see them; server faults at WARN.
            if e.status() >= 500 {
                tracing::warn!(code = e.code(), "{e}");
            } else {
                tracing::debug!(code = e.code(), "{e}");
            }
            error_response(&e, request_id)
        }
    })
}

/// Request-body buffers kept for reuse: an UploadLayerPart body is ~13 MiB, and a fresh buffer
/// per request cost a page fault per 4 KiB of it.
#[derive(Default)]
pub struct BodyPool(Mutex<Vec<(Instant, BytesMut)>>);

impl BodyPool {
    /// Buffers kept: enough for 16 uploads sending parts at once (keeping 4 cost 11% more CPU
    /// on 16 concurrent pushes). Only as many are kept as were in use together.
    const KEEP: usize = 16;

    /// A buffer nobody took for this long is more than the requests now running use; it goes
    /// when the next large request comes or goes.
    const STALE: Duration = Duration::from_secs(1);

    /// Bodies smaller than this get a fresh buffer, and their buffers are not kept.
    const WORTH: usize = 1024 * 1024;

    fn take(&self, capacity: usize) -> BytesMut {
        if capacity >= Self::WORTH {
            let mut free = self.0.lock().expect("not poisoned");
            free.retain(|(since, _)| since.elapsed() < Self::STALE);
            if let Some(i) = free.iter().rposition(|(_, b)| b.capacity() >= capacity) {
                return free.remove(i).1;
            }
        }
        BytesMut::with_capacity(capacity)
    }

    /// Keep a body's buffer if nothing else holds it and it is worth keeping.
    fn give(&self, body: Bytes) {
        if body.len() < Self::WORTH {
            return;
        }
        if let Ok(mut buf) = body.try_into_mut() {
            buf.clear();
            let mut free = self.0.lock().expect("not poisoned");
            free.retain(|(since, _)| since.elapsed() < Self::STALE);
            if free.len() < Self::KEEP {
                free.push((Instant::now(), buf));
            }
        }
    }
}

/// The whole body (at most `MAX_BODY`) and its SHA-256, hashed chunk by chunk as it arrives,
/// while each chunk is still in cache (SigV4 needs the hash of every request body).
async fn read_body<B>(
    body: B,
    headers: &http::HeaderMap,
    pool: &BodyPool,
) -> Result<(Bytes, [u8; 32]), BoxError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let expected = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if expected > MAX_BODY {
        return Err(format!("the body is {expected} bytes").into());
    }
    let mut body = std::pin::pin!(body);
    let mut buf = pool.take(expected);
    let mut hasher = Sha256::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Into::into)?.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > MAX_BODY {
            return Err("length limit exceeded".into());
        }
        hasher.update(&data);
        buf.extend_from_slice(&data);
    }
    Ok((buf.freeze(), hasher.finalize().into()))
}

fn json_response(status: StatusCode, body: String, request_id: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header("x-amzn-RequestId", request_id)
        .body(body::full(body))
        .expect("valid response")
}

pub fn error_response(e: &EcrError, request_id: &str) -> Response<Body> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, e.body().to_string(), request_id)
}
