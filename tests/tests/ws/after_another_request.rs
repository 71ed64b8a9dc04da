//! A handshake that is not its connection's first request.

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use roomcast_hyper::SUBPROTOCOL;
use roomcast_tests::{Client, Flavor, Server, within};
use serde_json::json;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

use crate::common::{join, request};

/// A handshake that is not its connection's first request (a keep-alive connection that asked
/// something else first) is served through hyper's upgrade, where the first request of a
/// connection is served on the connection directly: the same answer, subprotocol included, and
/// the same session.
pub(crate) fn a_session_after_another_request_goes_through_hyper(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut stream = within("connect", TcpStream::connect(server.addr))
            .await
            .expect("connect");
        let first = format!("GET /nowhere HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
        within("write", stream.write_all(first.as_bytes()))
            .await
            .expect("write the first request");
        // Its answer, read to the end of its body and no further: the server sends nothing more
        // until the next request.
        let mut answer = Vec::new();
        let mut byte = [0u8; 1];
        let body = loop {
            assert!(answer.len() < 64 * 1024, "no end of the answer's head");
            let n = within("read", stream.read(&mut byte)).await.expect("read");
            assert_eq!(n, 1, "the connection closed after {answer:?}");
            answer.push(byte[0]);
            if answer.ends_with(b"\r\n\r\n") {
                let head = String::from_utf8(answer.clone())
                    .expect("ASCII")
                    .to_ascii_lowercase();
                assert!(head.starts_with("http/1.1 404"), "{head}");
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .expect("a content length");
                break length;
            }
        };
        let mut rest = vec![0u8; body];
        within("read the body", stream.read_exact(&mut rest))
            .await
            .expect("the body");

        let mut handshake = server
            .url("user=alice")
            .into_client_request()
            .expect("request");
        handshake.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        let (ws, response) = within(
            "handshake",
            async_tungstenite::client_async(handshake, stream),
        )
        .await
        .expect("handshake");
        assert_eq!(
            response.headers().get("sec-websocket-protocol"),
            Some(&HeaderValue::from_static(SUBPROTOCOL))
        );
        let mut alice = Client { ws };
        let welcome = alice.next_json().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["user"], "alice", "{welcome}");
        assert_eq!(alice.next_json().await["type"], "streams");
        let (mut bob, _, _) = server.connect("user=bob").await;
        join(&mut alice, "lobby").await;
        join(&mut bob, "lobby").await;
        let sent = request(
            &mut bob,
            json!({"type": "publish", "ref": "p", "room": "lobby", "data": "hi"}),
        )
        .await;
        assert_eq!(sent["type"], "reply", "{sent}");
        let message = alice.next_of("message").await;
        assert_eq!(message["data"], "hi", "{message}");
    });
}
