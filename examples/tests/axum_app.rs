//! The `axum-app` example, run: axum answers the application's own routes, and the routes it
//! hands to roomcast answer as roomcast does: an SSE stream that gets what the application
//! announces, a WebSocket session (an upgrade through axum), and a long-poll.

mod common;

use std::net::TcpStream;

use common::{EventStream, Example};
use tungstenite::{Message, WebSocket};

const EXE: &str = env!("CARGO_BIN_EXE_axum-app");

#[test]
fn the_applications_routes_answer_beside_roomcasts() {
    let example = Example::start(EXE, &[]);
    let (status, body) = example.request("GET", "/api/hello", "");
    assert_eq!((status, body.as_str()), (200, "hello from axum\n"));
    let (status, body) = example.request("GET", "/", "");
    assert_eq!(status, 200);
    assert!(body.contains("An axum page"), "{body}");
    let (status, _) = example.request("GET", "/nowhere", "");
    assert_eq!(status, 404);
}

#[test]
fn an_sse_stream_through_axum_gets_what_the_application_announces() {
    let example = Example::start(EXE, &[]);
    let mut stream = EventStream::open(&example, "/events?user=carol&rooms=lobby", &[]);
    let open = stream.next_of("open");
    assert!(open.data.contains(r#""user":"carol""#), "{}", open.data);
    let _ = stream.next_of("streams"); // carol is in the room from here on
    let (status, body) = example.request("POST", "/api/announce?room=lobby", r#"{"text":"hi"}"#);
    assert_eq!(
        (status, body.contains(r#""sessions":1"#)),
        (200, true),
        "{body}"
    );
    let message = stream.next_of("message");
    assert!(
        message.data.contains(r#""data":{"text":"hi"}"#),
        "{}",
        message.data
    );
}

#[test]
fn a_websocket_upgrade_and_a_long_poll_through_axum() {
    let example = Example::start(EXE, &[]);
    let url = format!("ws://{}/ws?user=bob", example.addr);
    let (mut socket, response) =
        tungstenite::client(url, example.connect()).expect("a WebSocket handshake");
    assert_eq!(response.status(), 101);
    assert!(text(&mut socket).starts_with(r#"{"type":"welcome","#));
    let join = r#"{"type":"join","ref":1,"room":"lobby"}"#;
    socket.send(Message::text(join)).expect("send a join");
    let reply = loop {
        let frame = text(&mut socket);
        if frame.starts_with(r#"{"type":"reply""#) {
            break frame;
        }
    };
    assert!(reply.contains(r#""members":["bob"]"#), "{reply}");

    // Nothing to answer: the poll waits its second, then answers a cursor and no events.
    let (status, body) = example.request("GET", "/poll?user=dave&rooms=lobby&timeout=1", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""events":[]"#), "{body}");
}

/// The next text frame.
fn text(socket: &mut WebSocket<TcpStream>) -> String {
    match socket.read().expect("a frame") {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}
