//! A connection's socket as hyper sees it: reads are reported to the connection's `Activity`
//! (the watch in `conn` needs the first byte of a request head), and closing lingers. On a TLS
//! connection it wraps the TLS stream, so it sees the plaintext: the bytes of requests, not of
//! TLS records. It must not interpret the bytes.

use super::Activity;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// After the server closes its side, how long it reads and discards what the client still
/// sends, so that unread bytes do not turn the close into a reset that can destroy the answer
/// before the client reads it (an early 416 with a body still coming).
pub(in crate::listener) const LINGER: Duration = Duration::from_secs(1);

/// The socket (a TCP stream, or the TLS stream over it), noting reads for the watch and
/// lingering on close.
pub(super) struct Watched<I> {
    stream: I,
    activity: Arc<Activity>,
    linger: Linger,
}

impl<I> Watched<I> {
    pub(super) fn new(stream: I, activity: Arc<Activity>) -> Watched<I> {
        Watched {
            stream,
            activity,
            linger: Linger::No,
        }
    }
}

enum Linger {
    No,
    Draining(Pin<Box<Sleep>>),
    Done,
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read_some();
        }
        read
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    /// Send our FIN, then read and discard until the client's FIN or `LINGER`.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.linger {
                Linger::No => {
                    if std::task::ready!(Pin::new(&mut this.stream).poll_shutdown(cx)).is_err() {
                        this.linger = Linger::Done;
                    } else {
                        this.linger = Linger::Draining(Box::pin(tokio::time::sleep(LINGER)));
                    }
                }
                Linger::Draining(deadline) => {
                    let mut scratch = [0u8; 8192];
                    let mut finished = false;
                    for _ in 0..64 {
                        let mut buf = ReadBuf::new(&mut scratch);
                        match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                            Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                            // The client's FIN, or an error: nothing more will come.
                            Poll::Ready(_) => finished = true,
                            Poll::Pending => match deadline.as_mut().poll(cx) {
                                Poll::Ready(()) => finished = true,
                                Poll::Pending => return Poll::Pending,
                            },
                        }
                        break;
                    }
                    if !finished && !deadline.is_elapsed() {
                        // 64 reads of data in a row: let others run, then go on.
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    this.linger = Linger::Done;
                }
                Linger::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}
