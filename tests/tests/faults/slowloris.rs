//! Slowloris.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use roomcast_core::hub::HubConfig;
use roomcast_core::session::SessionConfig;
use roomcast_tests::http::get;
use roomcast_tests::{Flavor, Server, on_every_runtime, within};
use serde_json::json;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

use crate::common::{join, ms, publish, request, serve_with, sleep, upgrade_request};

/// What one slowloris connection saw.
struct Trickled {
    /// Bytes of its request written before the server ended the connection.
    written: usize,
    /// From the connect (its start) to the end.
    lasted: Duration,
    /// When it ended.
    ended_at: Instant,
    /// What the server said, if anything, before it ended the connection.
    said: Vec<u8>,
}

/// Writes `request` one byte every `pause`, watching for the server to end the connection.
/// `None` if the whole request went out and the connection was still open.
async fn trickle(addr: SocketAddr, request: String, pause: Duration) -> Option<Trickled> {
    // From before the connect: the server's timer cannot start any sooner.
    let started = Instant::now();
    let mut stream = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let mut said = Vec::new();
    let mut buffer = [0u8; 512];
    for (written, byte) in request.bytes().enumerate() {
        let ended = |said| {
            Some(Trickled {
                written,
                lasted: started.elapsed(),
                ended_at: Instant::now(),
                said,
            })
        };
        if within("write", stream.write_all(&[byte])).await.is_err() {
            return ended(said);
        }
        // Wait out the pause, reading: the server may answer (a 408, say) and must then close.
        let until = Instant::now() + pause;
        for _ in 0..64 {
            let read =
                futures_lite::future::or(async { Some(stream.read(&mut buffer).await) }, async {
                    smol::Timer::at(until).await;
                    None
                });
            match read.await {
                None => break,
                Some(Ok(0) | Err(_)) => return ended(said),
                Some(Ok(n)) => said.extend_from_slice(&buffer[..n]),
            }
        }
    }
    None
}

/// 200 connections send their request headers (half a WebSocket upgrade, half an SSE request)
/// one byte every 50 ms. Each is ended by the server once the header read timeout (the
/// handshake timeout, 1.5 s here) has passed, long before its request is complete, and none is
/// ever served. Meanwhile a WebSocket client and an SSE client connect and chat as usual, done
/// before the first slow connection is cut; the hub never sees the slow ones. (tests/ws/
/// `stalled_handshake_is_dropped` covers one stalled connection, alone.)
fn slowloris_connections_are_cut_and_others_are_served(flavor: Flavor) {
    smol::block_on(async {
        const SLOW: usize = 200;
        let timeout = ms(1500);
        let pause = ms(50);
        let options = serve_with(SessionConfig {
            handshake_timeout: timeout,
            ..SessionConfig::default()
        });
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;
        let addr = server.addr;
        let slow: Vec<_> = (0..SLOW)
            .map(|i| {
                // Over 100 bytes: at 50 ms a byte, several times the timeout to send.
                let request = if i % 2 == 0 {
                    upgrade_request(addr, &format!("/ws?user=slow{i}"))
                } else {
                    format!(
                        "GET /events?user=slow{i} HTTP/1.1\r\nHost: {addr}\r\n\
                         Accept: text/event-stream\r\nCache-Control: no-cache\r\n\
                         User-Agent: slowloris/1.0 (one byte at a time)\r\n\r\n"
                    )
                };
                assert!(request.len() as u32 * pause > 3 * timeout);
                smol::spawn(trickle(addr, request, pause))
            })
            .collect();
        sleep(ms(200)).await; // every slow connection is open and trickling

        let started = Instant::now();
        let mut events = get(addr, "/events?user=sse&rooms=lobby", &[])
            .await
            .events();
        events.next_of("streams").await;
        let mut ws = server.client("ws").await;
        join(&mut ws, "lobby").await;
        let id = publish(&mut ws, "lobby", 1, json!("hello")).await;
        let (message, _) = events.next_of("message").await;
        assert_eq!((&message["id"], &message["data"]), (&id, &json!("hello")));
        let (served, served_at) = (started.elapsed(), Instant::now());
        assert_eq!(server.hub.stats().await.expect("hub").sessions, 2);

        let (mut lasted, mut first_cut) = (Vec::new(), None::<Instant>);
        for task in slow {
            let cut = within("a slow connection", task)
                .await
                .expect("a slow request was let through whole");
            let said = String::from_utf8_lossy(&cut.said);
            assert!(
                said.is_empty() || said.starts_with("HTTP/1.1 408"),
                "said {said:?} to an unfinished request"
            );
            assert!(cut.written < 100, "cut only after {} bytes", cut.written);
            lasted.push(cut.lasted);
            first_cut = Some(first_cut.map_or(cut.ended_at, |at| at.min(cut.ended_at)));
        }
        let (first, last) = (
            *lasted.iter().min().expect("some"),
            *lasted.iter().max().expect("some"),
        );
        eprintln!("slowloris: served others in {served:?}; cut after {first:?} to {last:?}");
        assert!(first >= timeout, "cut after {first:?}, before the timeout");
        assert!(last <= timeout + ms(2000), "cut only after {last:?}");
        assert!(
            Some(served_at) < first_cut,
            "the others were served in {served:?}, only after a slow connection was cut"
        );
        // Still serving, and the slow ones never reached the hub.
        let reply = request(&mut ws, json!({"type": "ping", "ref": "still"})).await;
        assert_eq!(reply["type"], "reply");
        assert_eq!(server.hub.stats().await.expect("hub").sessions, 2);
    });
}

on_every_runtime!(slowloris_connections_are_cut_and_others_are_served);
