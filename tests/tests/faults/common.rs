//! Helpers shared by several of the fault tests: short timings, requests and their answers, the
//! close a client reads, the halves of a split client, and HTTP spoken by hand.

use std::net::SocketAddr;
use std::time::Duration;

use async_tungstenite::{WebSocketReceiver, WebSocketSender};
use futures_util::SinkExt;
use roomcast_core::session::SessionConfig;
use roomcast_hyper::Options;
use roomcast_io::SessionOptions;
use roomcast_tests::{Client, Read, within};
use serde_json::{Value, json};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

pub(crate) async fn sleep(duration: Duration) {
    smol::Timer::after(duration).await;
}

/// Serve options with these session limits and timings.
pub(crate) fn serve_with(config: SessionConfig) -> Options {
    Options {
        session: SessionOptions {
            config,
            ..SessionOptions::default()
        },
        ..Options::default()
    }
}

/// The epoch and offset of a position (`epoch.offset`).
pub(crate) fn position(id: &Value) -> (String, u64) {
    let text = id
        .as_str()
        .unwrap_or_else(|| panic!("not a position: {id}"));
    let (epoch, offset) = text
        .split_once('.')
        .unwrap_or_else(|| panic!("not a position: {text}"));
    (epoch.to_owned(), offset.parse().expect("a decimal offset"))
}

/// Sends `request` (with a `ref`) and returns its answer, skipping anything before it.
pub(crate) async fn request(client: &mut Client, request: Value) -> Value {
    let reference = request["ref"].clone();
    client.send_json(request).await;
    client.answer(&reference).await.0
}

/// Joins `room`; returns the reply (asserted to be one).
pub(crate) async fn join(client: &mut Client, room: &str) -> Value {
    let reply = request(client, json!({"type": "join", "ref": "join", "room": room})).await;
    assert_eq!(reply["type"], "reply", "{reply}");
    reply
}

/// Publishes `data` to `room` and waits for the reply; returns the message's id.
pub(crate) async fn publish(client: &mut Client, room: &str, reference: u64, data: Value) -> Value {
    let reply = request(
        client,
        json!({"type": "publish", "ref": reference, "room": room, "data": data}),
    )
    .await;
    assert_eq!(reply["type"], "reply", "publish {reference}: {reply}");
    reply["id"].clone()
}

/// Reads until the close; returns its code (`None`: a close frame without one). Panics if the
/// connection ends without a close frame. Answers the close, as a real client does.
pub(crate) async fn expect_close(client: &mut Client) -> Option<u16> {
    for _ in 0..10_000 {
        match client.read().await {
            Read::Close(frame) => {
                let _ = within("flush", client.ws.flush()).await;
                return frame.map(|frame| frame.code.into());
            }
            Read::Gone(why) => panic!("the connection ended without a close frame: {why}"),
            _ => continue,
        }
    }
    panic!("no close after 10,000 messages");
}

/// The `seq` of each message's data, in order.
pub(crate) fn seqs(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["data"]["seq"].as_u64().unwrap_or_else(|| panic!("{m}")))
        .collect()
}

/// The halves of a client split to send and read at once.
pub(crate) type Tx = WebSocketSender<TcpStream>;
pub(crate) type Rx = WebSocketReceiver<TcpStream>;

/// An HTTP response read by hand: the connection, status, head and (`Content-Length`) body.
pub(crate) struct RawResponse {
    pub(crate) stream: TcpStream,
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

/// Writes `request` on a new connection and reads the response head, and the body when it has a
/// `Content-Length` (a 101 or a stream has none: the connection stays as it is).
pub(crate) async fn raw_request(addr: SocketAddr, request: &str) -> RawResponse {
    let mut stream = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    within("write", stream.write_all(request.as_bytes()))
        .await
        .expect("write the request");
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        assert!(bytes.len() < 64 * 1024, "no end of the response head");
        let n = within("read", stream.read(&mut buffer))
            .await
            .expect("read");
        assert!(n > 0, "connection closed inside the response head");
        bytes.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8(bytes[..end].to_vec()).expect("an ASCII head");
    let mut body = bytes[end + 4..].to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().expect("a length"))
    });
    if let Some(length) = length {
        while body.len() < length {
            let n = within("read the body", stream.read(&mut buffer))
                .await
                .expect("read");
            assert!(n > 0, "connection closed inside the body");
            body.extend_from_slice(&buffer[..n]);
        }
    }
    RawResponse {
        stream,
        status,
        head,
        body,
    }
}

/// A WebSocket opening handshake for `target`, as text.
pub(crate) fn upgrade_request(addr: SocketAddr, target: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}
