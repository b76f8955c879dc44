//! The emulator's HTTP listener: accepts connections, serves HTTP/1.1 and HTTP/2, and routes
//! `POST /` to the API and `GET|HEAD /__layers/…` to the download URLs (accepting is `listener`'s).

use super::{api, download, Shared};
use crate::body;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;

pub async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // The emulator is a test double that many tests drive at once: generous limits.
    let limits = crate::config::ConnectionLimits {
        header_read_timeout: std::time::Duration::from_secs(60),
        keep_alive_idle: std::time::Duration::from_secs(300),
        max_connections: 16_384,
        // Never drained: the emulator stops at once (the drain period is unused).
        ..Default::default()
    };
    crate::listener::accept_loop(listener, &limits, move |_| {
        let shared = shared.clone();
        service_fn(move |req| route(shared.clone(), req))
    })
    .await
}

async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<body::Body>, api::DropConnection> {
    let path = req.uri().path();
    if path.starts_with(download::PREFIX) {
        let store = &shared.ctx.store;
        let now = download::unix_now() + shared.clock_skew_secs.load(Ordering::Relaxed);
        if req.method() == Method::GET {
            shared.count_download();
        }
        let answer = download::serve(store.url_key(), |d| store.layout().blob(d), &req, now).await;
        let pace = shared.download_pace_us.load(Ordering::Relaxed);
        let answer = if pace == 0 {
            answer
        } else {
            answer.map(|b| paced(b, std::time::Duration::from_micros(pace)))
        };
        let cut = if req.method() == Method::GET && answer.status().is_success() {
            shared.download_cut.swap(0, Ordering::Relaxed)
        } else {
            0
        };
        return Ok(if cut == 0 {
            answer
        } else {
            answer.map(|b| cut_after(b, cut))
        });
    }
    if req.method() == Method::POST && path == "/" {
        return api::handle(shared, req).await;
    }
    Ok(Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .body(body::full(
            r#"{"__type":"UnknownOperationException","message":"Only POST / is served here"}"#,
        ))
        .expect("valid response"))
}

/// `body` with a wait before each of its frames (256 KiB of a file).
fn paced(b: body::Body, pace: std::time::Duration) -> body::Body {
    use futures_util::StreamExt;
    use http_body_util::BodyExt;
    let frames = http_body_util::BodyStream::new(b).then(move |f| async move {
        tokio::time::sleep(pace).await;
        f
    });
    BodyExt::boxed(http_body_util::StreamBody::new(
        sync_wrapper::SyncStream::new(frames),
    ))
}

/// `body` breaking off with an error once `limit` bytes have gone (if it is longer).
fn cut_after(b: body::Body, limit: u64) -> body::Body {
    use futures_util::StreamExt;
    use http_body_util::BodyExt;
    let frames = http_body_util::BodyStream::new(b);
    let cut = futures_util::stream::unfold(Some((frames, 0u64)), move |state| async move {
        let (mut frames, sent) = state?;
        if sent >= limit {
            let err = std::io::Error::other("download cut off (test fault)");
            return Some((Err(err), None));
        }
        match frames.next().await? {
            Ok(f) => match f.data_ref() {
                Some(d) if sent + d.len() as u64 > limit => {
                    let kept = d.slice(..(limit - sent) as usize);
                    Some((Ok(hyper::body::Frame::data(kept)), Some((frames, limit))))
                }
                Some(d) => {
                    let n = d.len() as u64;
                    Some((Ok(f), Some((frames, sent + n))))
                }
                None => Some((Ok(f), Some((frames, sent)))),
            },
            Err(e) => Some((Err(e), None)),
        }
    });
    BodyExt::boxed(http_body_util::StreamBody::new(
        sync_wrapper::SyncStream::new(cut),
    ))
}
