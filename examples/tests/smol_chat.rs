//! The `smol-chat` example, run: its own authentication hook admits the users of its token table
//! (by `?token=` and by `Authorization: Bearer`) and refuses anyone else with 401 before any
//! upgrade; two users chat in a room.

mod common;

use std::net::TcpStream;

use common::{EventStream, Example};
use tungstenite::handshake::HandshakeError;
use tungstenite::{Message, WebSocket};

const EXE: &str = env!("CARGO_BIN_EXE_smol-chat");

#[test]
fn two_users_with_tokens_chat_in_a_room() {
    let example = Example::start(EXE, &["--token", "carol-token=carol"]);
    let mut alice = chat(&example, "alice-token");
    let mut carol = chat(&example, "carol-token");
    assert!(
        carol.welcome.contains(r#""user":"carol""#),
        "{}",
        carol.welcome
    );
    alice.send(r#"{"type":"join","ref":1,"room":"lobby"}"#);
    alice.until(r#"{"type":"reply","ref":1"#);
    carol.send(r#"{"type":"join","ref":1,"room":"lobby"}"#);
    carol.until(r#"{"type":"reply","ref":1"#);
    alice.send(r#"{"type":"publish","ref":2,"room":"lobby","data":{"text":"hi carol"}}"#);
    let message = carol.until(r#"{"type":"message""#);
    assert!(message.contains(r#""from":"alice""#), "{message}");
    assert!(
        message.contains(r#""data":{"text":"hi carol"}"#),
        "{message}"
    );

    // A bearer header works too, on a stream.
    let mut stream = EventStream::open(&example, "/events", &["authorization: Bearer bob-token"]);
    let open = stream.next_of("open");
    assert!(open.data.contains(r#""user":"bob""#), "{}", open.data);
}

#[test]
fn no_token_or_an_unknown_one_is_refused_before_the_upgrade() {
    let example = Example::start(EXE, &[]);
    for target in ["/ws", "/ws?token=wrong"] {
        let url = format!("ws://{}{target}", example.addr);
        match tungstenite::client(url, example.connect()) {
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                assert_eq!(response.status(), 401, "{target}");
            }
            Err(other) => panic!("{target}: {other}"),
            Ok(_) => panic!("{target}: admitted"),
        }
    }
    let (status, body) = example.request("GET", "/events?token=wrong", "");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains(r#""code":"unauthorized""#), "{body}");
}

/// A chat client: a WebSocket session and its welcome.
struct Chat {
    socket: WebSocket<TcpStream>,
    welcome: String,
}

fn chat(example: &Example, token: &str) -> Chat {
    let url = format!("ws://{}/ws?token={token}", example.addr);
    let (socket, _) = tungstenite::client(url, example.connect()).expect("a WebSocket handshake");
    let mut chat = Chat {
        socket,
        welcome: String::new(),
    };
    chat.welcome = chat.until(r#"{"type":"welcome""#);
    chat
}

impl Chat {
    fn send(&mut self, frame: &str) {
        self.socket
            .send(Message::text(frame))
            .expect("send a frame");
    }

    /// The next text frame that starts with `prefix`, skipping others (presence, streams).
    fn until(&mut self, prefix: &str) -> String {
        loop {
            // Each read is bounded by the socket's read timeout.
            if let Message::Text(text) = self.socket.read().expect("a frame")
                && text.as_str().starts_with(prefix)
            {
                return text.as_str().to_owned();
            }
        }
    }
}
