//! One HTTP/2 connection (a TLS connection that negotiated `h2`, or h2c by prior knowledge):
//! hyper's HTTP/2 server, each request a stream of its own, at most
//! [`Options::max_streams_per_connection`](crate::Options::max_streams_per_connection) at once.
//! The streams of every tab of a browser share the one connection, so a seventh `EventSource`
//! does not wait for a free HTTP/1.1 connection.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::pin;
use std::task::Poll;

use hyper::body::Incoming;
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::server::conn::http2;
use roomcast_io::Runtime;

use crate::proxies::is_trusted;
use crate::service::Roomcast;

/// What a client that speaks HTTP/2 by prior knowledge sends first (RFC 9113, section 3.4).
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a connection say of the preface: `Some(true)` it is all there,
/// `Some(false)` it is not the preface (or nothing came), `None` a beginning of it so far.
pub fn h2_preface(head: &[u8]) -> Option<bool> {
    let n = head.len().min(H2_PREFACE.len());
    if n == 0 || head[..n] != H2_PREFACE[..n] {
        Some(false)
    } else if n == H2_PREFACE.len() {
        Some(true)
    } else {
        None
    }
}

/// Serves one HTTP/2 connection from `peer` until it ends, its streams' tasks spawned on
/// `executor`. The connection counts against `peer`'s per-IP limit, and each session it carries
/// counts on its own (a stream is a session as a connection is over HTTP/1.1); over the limit
/// the connection is closed before its first frame is read. Once the shutdown is triggered the
/// connection says `GOAWAY` and ends when its open streams have (an SSE stream ends with its
/// session's shutdown).
pub async fn serve_h2_connection<R, I, S, B, T, E>(
    roomcast: &Roomcast<R>,
    peer: SocketAddr,
    io: I,
    service: S,
    timer: T,
    executor: E,
) where
    R: Runtime,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: hyper::rt::Timer + Send + Sync + 'static,
    E: Http2ServerConnExec<S::Future, B> + Clone + Send + 'static,
{
    let options = roomcast.options();
    let _slot = if is_trusted(peer.ip(), &options.trusted_proxies) {
        None
    } else {
        match roomcast.inner().acquire(peer.ip()) {
            Ok(slot) => Some(slot),
            Err(_) => return,
        }
    };
    let shutdown = roomcast.shutdown();
    let connection = http2::Builder::new(executor)
        .timer(timer)
        .max_concurrent_streams(options.max_streams_per_connection)
        // RFC 8441: WebSocket over a stream, by extended CONNECT.
        .enable_connect_protocol()
        .serve_connection(io, service);
    let mut connection = pin!(connection);
    let mut triggered = pin!(shutdown.triggered());
    let mut draining = shutdown.reconnect_ms().is_some();
    if draining {
        connection.as_mut().graceful_shutdown();
    }
    poll_fn(|cx| {
        if connection.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if !draining && triggered.as_mut().poll(cx).is_ready() {
            draining = true;
            connection.as_mut().graceful_shutdown();
            if connection.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_is_recognised_whole_and_refused_at_the_first_other_byte() {
        assert_eq!(h2_preface(H2_PREFACE), Some(true));
        assert_eq!(h2_preface(&H2_PREFACE[..3]), None, "a beginning, so far");
        assert_eq!(h2_preface(b"GET / HTTP/1.1\r\n"), Some(false));
        assert_eq!(h2_preface(b"PRX"), Some(false));
        assert_eq!(
            h2_preface(b""),
            Some(false),
            "nothing came: not the preface"
        );
    }
}
