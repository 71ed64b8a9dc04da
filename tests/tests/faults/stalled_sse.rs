//! An SSE client that stops reading.
//!
//! Its session is dropped as a slow consumer once its mailbox is over budget, like a WebSocket's
//! (`stalled_reader`). What is left is the HTTP connection, which must go too:
//! - a stream that is its connection's first request is served directly (`transports/hyper/src/raw/sse.rs`): the
//!   connection closes when the session ends, its last chunk written within the write timeout
//!   or not at all;
//! - a stream that comes after another request on a keep-alive connection goes through hyper,
//!   which still holds the response's unsent bytes and would wait for the client for as long as
//!   TCP keeps the connection. Once the session has ended, hyper has the write timeout to finish
//!   the response, and then the connection goes (`transports/hyper/src/abort.rs`).

use roomcast_core::envelope::Payload;
use roomcast_core::hub::HubConfig;
use roomcast_core::session::SessionConfig;
use roomcast_hyper::Options;
use roomcast_io::SessionOptions;
use roomcast_tests::{Flavor, Server, on_every_runtime, within};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use socket2::{Domain, Socket, Type};

use crate::common::{ms, sleep};

/// Broadcasts of 4 KiB until the stalled stream's session is gone: at most this many.
const MAX_BROADCASTS: usize = 20_000;

fn a_stalled_sse_stream_is_dropped_then_its_connection_closed(flavor: Flavor) {
    stall(flavor, "");
}

fn a_stalled_sse_stream_after_another_request_is_dropped_then_its_connection_closed(
    flavor: Flavor,
) {
    // Pipelined behind a 404 on the same connection: the stream goes through hyper.
    stall(flavor, "GET /nowhere HTTP/1.1\r\nHost: roomcast\r\n\r\n");
}

/// A client sends `before` then a stream request, and never reads.
fn stall(flavor: Flavor, before: &str) {
    smol::block_on(async {
        let write_timeout = ms(300);
        let options = Options {
            session: SessionOptions {
                config: SessionConfig::default(),
                write_timeout,
                ..SessionOptions::default()
            },
            ..Options::default()
        };
        // The default mailbox (1 MiB), so the session is dropped for its bytes, not for frames.
        let server = Server::start(flavor, HubConfig::default(), options, 4096).await;
        let mut stream = stalling_client(server.addr);
        let request =
            format!("{before}GET /events?user=stalled HTTP/1.1\r\nHost: roomcast\r\n\r\n");
        within("request", stream.write_all(request.as_bytes()))
            .await
            .expect("write");
        server
            .wait_for_stats("the stream connected", |s| s.sessions == 1)
            .await;

        // The client reads nothing; broadcasts fill hyper's buffer, the socket's, then the
        // session's mailbox.
        let data = Payload::from_json(&format!("\"{}\"", "x".repeat(4096))).expect("JSON");
        let mut sent = 0;
        while server.hub.stats().await.expect("hub").sessions == 1 {
            assert!(
                sent < MAX_BROADCASTS,
                "still connected after {sent} broadcasts"
            );
            let stored = server.hub.broadcast(None, data.clone()).await.expect("hub");
            stored.expect("stored");
            sent += 1;
            if sent % 16 == 0 {
                sleep(ms(1)).await; // let the stream's task write what it can
            }
        }
        let stats = server.hub.stats().await.expect("hub");
        assert_eq!(stats.slow_consumers, 1, "{stats:?}");

        // Past the write timeout the client reads again: the connection is closed. Kept open,
        // it would wait for the next request, and this read would not end.
        sleep(write_timeout * 3).await;
        let mut received = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match within("the connection closes", stream.read(&mut buffer)).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
        let first = if before.is_empty() {
            "HTTP/1.1 200 OK\r\n"
        } else {
            "HTTP/1.1 404"
        };
        assert!(
            received.starts_with(first.as_bytes()),
            "{:?}",
            String::from_utf8_lossy(&received[..received.len().min(200)])
        );
        if !before.is_empty() {
            // hyper could not finish the response: the switch dropped the connection.
            assert!(
                !received.ends_with(b"\r\n0\r\n\r\n"),
                "the response was finished ({} bytes read)",
                received.len()
            );
        }
    });
}

/// A connection whose receive buffer is as small as the kernel allows, so that a client that
/// stops reading stops the server's writes soon, whatever the loopback's defaults.
fn stalling_client(addr: std::net::SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let stream = std::net::TcpStream::from(socket);
    stream.set_nonblocking(true).expect("non-blocking");
    TcpStream::try_from(stream).expect("async stream")
}

on_every_runtime!(
    a_stalled_sse_stream_is_dropped_then_its_connection_closed,
    a_stalled_sse_stream_after_another_request_is_dropped_then_its_connection_closed,
);
