//! A TLS connection's start, run in the connection's own task: the first byte tells a TLS client
//! (0x16 opens a handshake record) from a plain HTTP one, which gets a plain-text 400 saying to
//! use https:// and is closed; a TLS client's handshake follows. Both are bounded by the header
//! timer counted from accept (a client that sends nothing, or half a ClientHello, is cut like a
//! slow plain client), and a drain ends them. What goes wrong here is the client's business and
//! logged at DEBUG only. It must not read requests: serving the connection is `conn`'s, and the
//! TLS configuration `crate::tls`'s.

use super::ClientCert;
use crate::tls::{self, Tls};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// The first byte of a TLS record that carries a handshake message (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

const PLAIN_BODY: &str = "This port speaks TLS (HTTPS) only: use https:// instead of http:// to \
                          reach this registry.\n";

/// Take the TLS handshake on `stream` before `deadline`. `None` when the connection is done
/// with (a plain HTTP client answered, a failed or late handshake, a drain); otherwise the TLS
/// stream and the identity of the client's verified certificate, if it sent one.
pub(super) async fn secure(
    tls: &Tls,
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    drain: &CancellationToken,
) -> Option<(TlsStream<TcpStream>, Option<ClientCert>)> {
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        biased;
        () = drain.cancelled() => return None,
        () = tokio::time::sleep_until(deadline) => {
            tracing::debug!(%peer, "closing a TLS connection: nothing sent within the header timeout");
            return None;
        }
        peeked = stream.peek(&mut first) => peeked,
    };
    match peeked {
        Ok(0) => return None,
        Err(e) => {
            tracing::debug!(%peer, "TLS connection: {e}");
            return None;
        }
        Ok(_) if first[0] != TLS_HANDSHAKE => {
            answer_plain(stream, peer).await;
            return None;
        }
        Ok(_) => {}
    }
    let handshake = tokio::select! {
        biased;
        () = drain.cancelled() => return None,
        () = tokio::time::sleep_until(deadline) => {
            tracing::debug!(%peer, "closing a TLS connection: handshake not finished within the header timeout");
            return None;
        }
        handshake = tls.acceptor().accept(stream) => handshake,
    };
    let stream = match handshake {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            return None;
        }
    };
    let client_cert =
        tls::peer_identity(stream.get_ref().1.peer_certificates()).map(|id| ClientCert(id.into()));
    Some((stream, client_cert))
}

/// Answer a plain HTTP client with 400 and the https:// hint, then close: our FIN, then what
/// the client sent read and discarded until its FIN or `LINGER`, so that its unread request does
/// not turn the close into a reset that destroys the answer.
async fn answer_plain(mut stream: TcpStream, peer: SocketAddr) {
    tracing::debug!(%peer, "plain HTTP on the TLS port: answering 400 (use https://)");
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_BODY}",
        PLAIN_BODY.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(super::conn::LINGER, async {
        let mut scratch = [0u8; 4096];
        while matches!(stream.read(&mut scratch).await, Ok(n) if n > 0) {}
    })
    .await;
}
