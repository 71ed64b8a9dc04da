//! Helpers shared by several of the WebSocket scenarios: short timings, requests and their
//! answers, positions, raw frames and the close a client reads.

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use roomcast_core::envelope::Payload;
use roomcast_core::session::SessionConfig;
use roomcast_hyper::Options;
use roomcast_io::SessionOptions;
use roomcast_tests::{Client, within};
use serde_json::{Value, json};

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

/// Checks `id` against the position grammar (`epoch.offset`, lowercase hex epoch of 1–16
/// digits, decimal offset); returns the epoch and the offset.
pub(crate) fn position(id: &Value) -> (String, u64) {
    let text = id
        .as_str()
        .unwrap_or_else(|| panic!("a position is a string: {id}"));
    let (epoch, offset) = text.split_once('.').expect("a position is epoch.offset");
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    assert!(
        (1..=16).contains(&epoch.len()) && epoch.bytes().all(hex),
        "bad epoch in {text}"
    );
    (epoch.to_owned(), offset.parse().expect("a decimal offset"))
}

/// Sends `request` (which carries a `ref`) and returns its answer, skipping anything before it.
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

pub(crate) fn payload(json: &str) -> Payload {
    Payload::from_json(json).expect("valid JSON")
}

/// The raw text of the next message (skipping pings), within `WAIT`.
pub(crate) async fn next_text(client: &mut Client) -> String {
    for _ in 0..100 {
        match client.next_message().await {
            Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
    panic!("100 pings and no text frame");
}

/// Sends the close reply tungstenite queued on reading the server's close, as a real client does
/// (or the server waits out its close timeout).
pub(crate) async fn answer_close(client: &mut Client) {
    let _ = within("flush", futures_util::SinkExt::flush(&mut client.ws)).await;
}

/// The close code of a `Read`, for loops that read until the end.
pub(crate) fn close_code(frame: &Option<CloseFrame>) -> Option<u16> {
    frame.as_ref().map(|frame| frame.code.into())
}

/// Ping every 200 ms, 200 ms to answer.
pub(crate) fn fast_heartbeat() -> Options {
    serve_with(SessionConfig {
        ping_interval: ms(200),
        ping_timeout: ms(200),
        ..SessionConfig::default()
    })
}
