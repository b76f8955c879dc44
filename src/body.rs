//! The one HTTP body type both servers answer with, and its constructors: whole buffers, nothing,
//! or a byte range of a file streamed in chunks. This module must not decide statuses or headers.

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// A response body: boxed so handlers can mix buffers and streams.
pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Stream `len` bytes of `file` starting at `start`, 256 KiB at a time.
pub async fn file_range(mut file: tokio::fs::File, start: u64, len: u64) -> std::io::Result<Body> {
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let reader = file.take(len);
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024);
    Ok(StreamBody::new(stream.map_ok(Frame::data)).boxed())
}
