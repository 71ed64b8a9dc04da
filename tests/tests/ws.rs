//! The roomcast protocol over real WebSocket connections on 127.0.0.1, served by the
//! roomcast-hyper service on smol (roomcast-smol) and on tokio (roomcast-tokio): every scenario
//! runs on both, as `on_smol::NAME` and `on_tokio::NAME`.
//!
//! One scenario per test, each with its own server on an ephemeral port and real
//! async-tungstenite clients. Every wait is bounded (`WAIT`), every loop bounded in count, and
//! where a test must show that something did *not* arrive it uses a hub round trip
//! (`Client::barrier`) rather than a sleep. Timings are shortened through `Options` and
//! `HubConfig` where a scenario needs the heartbeat or the presence grace.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use roomcast_core::envelope::Payload;
use roomcast_core::hub::{HistoryLimit, HubConfig};
use roomcast_core::names::{RoomName, UserId};
use roomcast_core::session::SessionConfig;
use roomcast_hyper::{Options, Refusal, SUBPROTOCOL};
use roomcast_io::SessionOptions;
use roomcast_tests::{Client, Flavor, Read, Server, on_every_runtime, stream_entry, within};
use serde_json::{Value, json};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

async fn sleep(duration: Duration) {
    smol::Timer::after(duration).await;
}

/// Serve options with these session limits and timings.
fn serve_with(config: SessionConfig) -> Options {
    Options {
        session: SessionOptions {
            config,
            ..SessionOptions::default()
        },
        ..Options::default()
    }
}

/// A hub configuration with a short presence grace.
fn hub_with_grace(grace: Duration) -> HubConfig {
    HubConfig {
        presence_grace: grace,
        ..HubConfig::default()
    }
}

/// Checks `id` against the position grammar (`epoch.offset`, lowercase hex epoch of 1–16
/// digits, decimal offset); returns the epoch and the offset.
fn position(id: &Value) -> (String, u64) {
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
async fn request(client: &mut Client, request: Value) -> Value {
    let reference = request["ref"].clone();
    client.send_json(request).await;
    client.answer(&reference).await.0
}

/// Joins `room`; returns the reply (asserted to be one).
async fn join(client: &mut Client, room: &str) -> Value {
    let reply = request(client, json!({"type": "join", "ref": "join", "room": room})).await;
    assert_eq!(reply["type"], "reply", "{reply}");
    reply
}

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("a valid room name")
}

fn payload(json: &str) -> Payload {
    Payload::from_json(json).expect("valid JSON")
}

/// The raw text of the next message (skipping pings), within `WAIT`.
async fn next_text(client: &mut Client) -> String {
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
async fn answer_close(client: &mut Client) {
    let _ = within("flush", futures_util::SinkExt::flush(&mut client.ws)).await;
}

/// The close code of a `Read`, for loops that read until the end.
fn close_code(frame: &Option<CloseFrame>) -> Option<u16> {
    frame.as_ref().map(|frame| frame.code.into())
}

/// The HTTP status of a refused handshake.
fn refused_status(result: Result<Client, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got the error {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the handshake succeeded"),
    }
}

/// A handshake written by hand (for what tungstenite's client refuses to send or accept); returns
/// the response head.
async fn raw_handshake(server: &Server, target: &str, extra_headers: &str) -> String {
    let mut stream = within("connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         {extra_headers}\r\n",
        server.addr
    );
    within("write", stream.write_all(request.as_bytes()))
        .await
        .expect("write the request");
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    for _ in 0..64 {
        let n = within("read", stream.read(&mut buffer))
            .await
            .expect("read");
        assert!(n > 0, "connection closed inside the response head");
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return String::from_utf8(head).expect("an ASCII response head");
        }
    }
    panic!("no end of the response head in 64 KiB");
}

/// A `ping` frame of exactly `len` bytes (padded with an unknown field, which is ignored).
fn padded_ping(reference: &str, len: usize) -> String {
    let empty = format!(r#"{{"type":"ping","ref":"{reference}","pad":""}}"#);
    let pad = "x".repeat(len.checked_sub(empty.len()).expect("room for the padding"));
    let frame = format!(r#"{{"type":"ping","ref":"{reference}","pad":"{pad}"}}"#);
    assert_eq!(frame.len(), len);
    frame
}

/// The process's resident set size, in KiB (`VmRSS` of `/proc/self/status`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

// ---------------------------------------------------------------------------------------------
// 1. Connecting
// ---------------------------------------------------------------------------------------------

/// A connection starts with `welcome` (every field, in the protocol's order, the defaults) and
/// then `streams`: the user's outbox and, since the development auth follows the broadcast feed,
/// `all`, both fresh (offset 0, nothing replayed, no `recovered` without a cursor).
fn connect_gets_welcome_then_streams(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = within("handshake", Client::connect(&server.url("user=alice")))
            .await
            .expect("handshake");

        let welcome = next_text(&mut alice).await;
        let session = serde_json::from_str::<Value>(&welcome).expect("JSON")["session"].clone();
        assert!(session.as_str().is_some_and(|s| !s.is_empty()), "{welcome}");
        assert_eq!(
            welcome,
            format!(
                r#"{{"type":"welcome","protocol":1,"session":{session},"user":"alice","ping_interval_ms":25000,"ping_timeout_ms":10000,"max_frame":65536}}"#
            )
        );

        let streams_text = next_text(&mut alice).await;
        let streams: Value = serde_json::from_str(&streams_text).expect("JSON");
        let entries = streams["streams"].as_array().expect("a list");
        let names: Vec<&Value> = entries.iter().map(|entry| &entry["stream"]).collect();
        assert_eq!(names, [&json!("user"), &json!("all")], "{streams_text}");
        for entry in entries {
            assert_eq!(position(&entry["id"]).1, 0, "a fresh stream: {entry}");
            assert_eq!(entry["replayed"], 0, "{entry}");
        }
        assert_eq!(
            streams_text,
            format!(
                r#"{{"type":"streams","streams":[{{"stream":"user","id":{},"replayed":0}},{{"stream":"all","id":{},"replayed":0}}]}}"#,
                entries[0]["id"], entries[1]["id"]
            )
        );

        // A percent-encoded, non-ASCII user id is decoded; each session has its own id.
        let (_zoe, welcome, _) = server.connect("user=Zo%C3%AB%20M%C3%BCller").await;
        assert_eq!(welcome["user"], "Zoë Müller");
        assert_ne!(welcome["session"], session);
    });
}

// ---------------------------------------------------------------------------------------------
// 2. Rooms: join, publish, presence
// ---------------------------------------------------------------------------------------------

/// The basic chat: a join reply lists the members, the others see the join, and a publish reaches
/// them with its id and sender.
fn two_clients_chat_in_a_room_with_presence(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = server.client("alice").await;
        let mut bob = server.client("bob").await;
        alice
            .send_json(json!({"type": "join", "ref": 1, "room": "lobby"}))
            .await;
        let reply = alice.next_of("reply").await;
        assert_eq!(reply["members"], json!(["alice"]));
        bob.send_json(json!({"type": "join", "ref": 1, "room": "lobby"}))
            .await;
        assert_eq!(
            bob.next_of("reply").await["members"],
            json!(["alice", "bob"])
        );
        assert_eq!(alice.next_of("presence").await["joins"], json!(["bob"]));
        bob.send_json(
            json!({"type": "publish", "ref": 2, "room": "lobby", "data": {"text": "hi"}}),
        )
        .await;
        let id = bob.next_of("reply").await["id"].clone();
        let message = alice.next_of("message").await;
        assert_eq!(
            message,
            json!({"type": "message", "room": "lobby", "id": id, "from": "bob", "data": {"text": "hi"}})
        );
    });
}

/// Presence diffs: a second user's join is announced; a second session of a user already present
/// changes nothing; a reload within the grace does not flap (no leave, no join, even after the
/// grace would have ended); an explicit leave is announced at once; a disconnect is announced
/// after the grace, not before. Publishes reach the other members, not the publisher.
fn presence_and_publish_in_a_room(flavor: Flavor) {
    smol::block_on(async {
        let grace = ms(300);
        let server = Server::start(flavor, hub_with_grace(grace), Options::default(), 64).await;
        let mut alice = server.client("alice").await;
        assert_eq!(join(&mut alice, "lobby").await["members"], json!(["alice"]));

        let mut bob = server.client("bob").await;
        assert_eq!(
            join(&mut bob, "lobby").await["members"],
            json!(["alice", "bob"])
        );
        assert_eq!(
            alice.next_json().await,
            json!({"type": "presence", "room": "lobby", "joins": ["bob"], "leaves": []})
        );

        // Publish: the other member gets it with its id and sender; the publisher only a reply.
        let reply = request(
            &mut bob,
            json!({"type": "publish", "ref": 2, "room": "lobby", "data": {"text": "hi"}}),
        )
        .await;
        let (_, offset) = position(&reply["id"]);
        assert_eq!(offset, 1);
        assert_eq!(
            reply,
            json!({"type": "reply", "ref": 2, "room": "lobby", "id": reply["id"]})
        );
        assert_eq!(
            alice.next_json().await,
            json!({"type": "message", "room": "lobby", "id": reply["id"], "from": "bob", "data": {"text": "hi"}})
        );
        assert!(bob.barrier().await.is_empty(), "the publisher got more");

        // A second session of bob: one member, no presence.
        let mut bob_tab = server.client("bob").await;
        assert_eq!(
            join(&mut bob_tab, "lobby").await["members"],
            json!(["alice", "bob"])
        );
        // The first session closes: bob is still present through the other one.
        bob.close_and_wait().await;
        // A reload: the last session closes and a new one joins within the grace.
        bob_tab.close_and_wait().await;
        let mut bob_again = server.client("bob").await;
        assert_eq!(
            join(&mut bob_again, "lobby").await["members"],
            json!(["alice", "bob"])
        );
        // Past the end of the grace the reload started: a flap would have arrived by now.
        sleep(grace + ms(150)).await;
        let seen = alice.barrier().await;
        assert!(seen.is_empty(), "presence flapped: {seen:?}");

        // An explicit leave is announced at once.
        let mut carol = server.client("carol").await;
        join(&mut carol, "lobby").await;
        assert_eq!(alice.next_json().await["joins"], json!(["carol"]));
        let left = request(
            &mut carol,
            json!({"type": "leave", "ref": 3, "room": "lobby"}),
        )
        .await;
        assert_eq!(left, json!({"type": "reply", "ref": 3, "room": "lobby"}));
        assert_eq!(
            alice.next_json().await,
            json!({"type": "presence", "room": "lobby", "joins": [], "leaves": ["carol"]})
        );

        // A disconnect: announced once the grace has passed, not before.
        let closed = Instant::now();
        bob_again.close_and_wait().await;
        assert_eq!(
            alice.next_json().await,
            json!({"type": "presence", "room": "lobby", "joins": [], "leaves": ["bob"]})
        );
        let waited = closed.elapsed();
        assert!(
            waited >= grace,
            "the leave came after {waited:?}, before the grace"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// 3. Typing
// ---------------------------------------------------------------------------------------------

/// `typing` reaches every other member, never the sender; without a `ref` it gets no answer, and
/// with one a bare reply.
fn typing_is_relayed_to_others_only(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = server.client("alice").await;
        let mut bob = server.client("bob").await;
        let mut carol = server.client("carol").await;
        for client in [&mut alice, &mut bob, &mut carol] {
            join(client, "lobby").await;
        }
        alice.barrier().await; // the presence of bob and carol

        alice
            .send_json(json!({"type": "typing", "room": "lobby", "typing": true}))
            .await;
        let typing = json!({"type": "typing", "room": "lobby", "user": "alice", "typing": true});
        assert_eq!(bob.next_of("typing").await, typing);
        assert_eq!(carol.next_of("typing").await, typing);
        let seen = alice.barrier().await;
        assert!(seen.is_empty(), "the sender got {seen:?}");

        let reply = request(
            &mut alice,
            json!({"type": "typing", "ref": "t", "room": "lobby", "typing": false}),
        )
        .await;
        assert_eq!(reply, json!({"type": "reply", "ref": "t"}));
        let stopped = json!({"type": "typing", "room": "lobby", "user": "alice", "typing": false});
        assert_eq!(bob.next_of("typing").await, stopped);
        assert_eq!(carol.next_of("typing").await, stopped);
    });
}

// ---------------------------------------------------------------------------------------------
// 4. Direct messages
// ---------------------------------------------------------------------------------------------

/// `direct` to an online user reaches every session of theirs (`delivered: true`), with `data`
/// relayed byte for byte; to an offline user it waits (`delivered: false`) and arrives right after
/// `streams` when they connect, which counts it as replayed.
fn direct_messages_with_receipts(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = server.client("alice").await;
        let mut bob = server.client("bob").await;
        let mut bob_tab = server.client("bob").await;

        let reply = request(
            &mut alice,
            json!({"type": "direct", "ref": 1, "to": "bob", "data": {"x": [1, 2]}}),
        )
        .await;
        assert_eq!(
            reply,
            json!({"type": "reply", "ref": 1, "id": reply["id"], "delivered": true})
        );
        let direct =
            json!({"type": "direct", "id": reply["id"], "from": "alice", "data": {"x": [1, 2]}});
        assert_eq!(bob.next_json().await, direct);
        assert_eq!(bob_tab.next_json().await, direct);
        assert!(alice.barrier().await.is_empty(), "the sender got a copy");

        // The payload's text is relayed as sent, whitespace and number forms included.
        alice
            .send_text(r#"{"type":"direct","to":"bob","data":{ "b" : [1, 2.50] }}"#.into())
            .await;
        let text = next_text(&mut bob).await;
        assert!(
            text.ends_with(r#","from":"alice","data":{ "b" : [1, 2.50] }}"#),
            "{text}"
        );

        // Offline: stored, not an error even though carol has never connected.
        let reply = request(
            &mut alice,
            json!({"type": "direct", "ref": 2, "to": "carol", "data": "hey"}),
        )
        .await;
        assert_eq!(
            reply,
            json!({"type": "reply", "ref": 2, "id": reply["id"], "delivered": false})
        );
        let (epoch, offset) = position(&reply["id"]);
        let (mut carol, _, streams) = server.connect("user=carol").await;
        let user = stream_entry(&streams, "user");
        assert_eq!(
            user,
            json!({"stream": "user", "id": format!("{epoch}.{}", offset - 1), "replayed": 1})
        );
        assert_eq!(
            carol.next_json().await,
            json!({"type": "direct", "id": reply["id"], "from": "alice", "data": "hey"})
        );
        assert!(carol.barrier().await.is_empty());
    });
}

// ---------------------------------------------------------------------------------------------
// 5. Every ref answered exactly once
// ---------------------------------------------------------------------------------------------

/// A mix of valid and invalid requests, each with its own `ref`: every one gets exactly one
/// answer with that `ref` and the right code; frames whose `ref` cannot be read get exactly one
/// error without a `ref`; successes without a `ref` get nothing; the connection stays open.
fn every_ref_gets_exactly_one_answer(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = server.client("alice").await;
        let max = u64::MAX;

        // (ref, frame, expected answer: "reply" or an error code), in an order that matters for
        // the hub (the session forwards requests in order): join before publish, leave last.
        let answered: Vec<(Value, String, &str)> = vec![
            (json!("p"), r#"{"type":"ping","ref":"p"}"#.into(), "reply"),
            (json!(7), r#"{"type":"ping","ref":7}"#.into(), "reply"),
            (
                json!(max),
                format!(r#"{{"type":"ping","ref":{max}}}"#),
                "reply",
            ),
            (
                json!("j"),
                r#"{"type":"join","ref":"j","room":"lobby"}"#.into(),
                "reply",
            ),
            (
                json!("j2"),
                r#"{"type":"join","ref":"j2","room":"lobby"}"#.into(),
                "reply",
            ),
            (
                json!("pub"),
                r#"{"type":"publish","ref":"pub","room":"lobby","data":1}"#.into(),
                "reply",
            ),
            (
                json!("typ"),
                r#"{"type":"typing","ref":"typ","room":"lobby","typing":true}"#.into(),
                "reply",
            ),
            (
                json!("dm"),
                r#"{"type":"direct","ref":"dm","to":"nobody","data":null}"#.into(),
                "reply",
            ),
            (
                json!("nm1"),
                r#"{"type":"publish","ref":"nm1","room":"elsewhere","data":1}"#.into(),
                "not_member",
            ),
            (
                json!("nm2"),
                r#"{"type":"leave","ref":"nm2","room":"elsewhere"}"#.into(),
                "not_member",
            ),
            (
                json!("nm3"),
                r#"{"type":"typing","ref":"nm3","room":"elsewhere","typing":false}"#.into(),
                "not_member",
            ),
            (
                json!("u1"),
                r#"{"type":"dance","ref":"u1"}"#.into(),
                "unknown_type",
            ),
            (
                json!("u2"),
                r#"{"type":"reply","ref":"u2"}"#.into(),
                "unknown_type",
            ),
            (
                json!("b1"),
                r#"{"type":"join","ref":"b1"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b2"),
                r#"{"type":"publish","ref":"b2","room":"lobby"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b3"),
                r#"{"type":"ping","ref":"b3","room":5}"#.into(),
                "bad_frame",
            ),
            (
                json!("b4"),
                r#"{"type":"join","ref":"b4","room":"a b"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b5"),
                r#"{"type":"direct","ref":"b5","data":1}"#.into(),
                "bad_frame",
            ),
            (
                json!("b6"),
                r#"{"type":"typing","ref":"b6","room":"lobby","typing":"yes"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b7"),
                r#"{"type":"join","ref":"b7","room":"lobby","since":"nope"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b8"),
                r#"{"type":"join","ref":"b8","room":"a","room":"b"}"#.into(),
                "bad_frame",
            ),
            (json!("b9"), r#"{"ref":"b9"}"#.into(), "bad_frame"),
            (
                json!("b10"),
                r#"{"type":7,"ref":"b10"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b11"),
                r#"{"type":"leave","ref":"b11","room":null}"#.into(),
                "bad_frame",
            ),
            (
                json!("left"),
                r#"{"type":"leave","ref":"left","room":"lobby"}"#.into(),
                "reply",
            ),
        ];
        // Frames refused before their `ref` could be read: one `bad_frame` each, without `ref`.
        let refless = [
            r#"{"type":"ping","ref":"cut""#,
            "not JSON at all",
            r#"[1,2]"#, // not an object (arrays read as positional objects: see below)
            r#"{"type":"ping","ref":-1}"#,
            r#"{"type":"ping","ref":1.5}"#,
            r#"{"type":"ping","ref":{"id":1}}"#,
            r#"{"type":"ping","ref":1,"ref":2}"#,
            r#"{"type":"join","ref":null}"#, // `ref: null` is no ref: the error has none
        ];
        // Successes without a `ref`: no answer at all.
        let silent = [
            r#"{"type":"ping"}"#,
            r#"{"type":"ping","ref":null}"#,
            r#"{"type":"typing","room":"lobby","typing":false}"#,
        ];

        for (_, frame, _) in &answered[..6] {
            alice.send_text(frame.clone()).await;
        }
        for frame in silent {
            alice.send_text(frame.into()).await;
        }
        for frame in refless {
            alice.send_text(frame.into()).await;
        }
        alice
            .ws
            .send(Message::binary(vec![1u8, 2, 3]))
            .await
            .expect("send");
        for (_, frame, _) in &answered[6..] {
            alice.send_text(frame.clone()).await;
        }
        let refless_expected = refless.len() + 1; // and the binary frame

        // Collect every answer: all of them come before the barrier's. The session answers what
        // it can alone (pings, malformed frames) as it reads each frame, before it reads the
        // barrier; the hub answers in order, through the channel the barrier's answer takes.
        let mut answers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut refless_errors = Vec::new();
        for value in alice.barrier().await {
            match (value["type"].as_str(), value.get("ref")) {
                (Some("reply" | "error"), Some(reference)) => answers
                    .entry(reference.to_string())
                    .or_default()
                    .push(value),
                (Some("error"), None) => refless_errors.push(value),
                _ => panic!("unexpected: {value}"),
            }
        }

        let mut wrong = Vec::new();
        for (reference, frame, expected) in &answered {
            let got = answers.remove(&reference.to_string()).unwrap_or_default();
            let ok = match got.as_slice() {
                [answer] if *expected == "reply" => answer["type"] == "reply",
                [answer] => answer["type"] == "error" && answer["code"] == *expected,
                _ => false,
            };
            if !ok {
                wrong.push(format!("{frame}: expected one {expected}, got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
        assert!(
            answers.is_empty(),
            "answers to refs never sent: {answers:?}"
        );
        assert_eq!(
            refless_errors.len(),
            refless_expected,
            "refless errors: {refless_errors:?}"
        );
        for error in &refless_errors {
            assert_eq!(error["code"], "bad_frame", "{error}");
        }

        // Still open and answering.
        let alive = request(&mut alice, json!({"type": "ping", "ref": "alive"})).await;
        assert_eq!(alive, json!({"type": "reply", "ref": "alive"}));
    });
}

/// A frame must be a JSON object: a JSON array is `bad_frame`, answered without a `ref` (its
/// `ref` cannot be read). The codec's serde-derived `Wire` struct also accepts a sequence, which
/// it reads positionally (`type`, `ref`, `data`, `room`, ...), so `["ping","a"]` is answered as a
/// ping with ref "a" and `["join","j",null,"lobby"]` joins `lobby`.
fn json_array_frames_are_bad_frames(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = server.client("alice").await;
        alice.send_text(r#"["ping","a"]"#.into()).await;
        alice.send_text(r#"["join","j",null,"lobby"]"#.into()).await;
        let seen = alice.barrier().await;
        let expected = json!({"type": "error", "code": "bad_frame"});
        let summary: Vec<Value> = seen
            .iter()
            .map(|v| json!({"type": v["type"], "ref": v.get("ref"), "code": v.get("code")}))
            .collect();
        assert!(
            seen.len() == 2
                && seen.iter().all(|v| v["type"] == expected["type"]
                    && v["code"] == expected["code"]
                    && v.get("ref").is_none()),
            "expected two bad_frame errors without ref, got {summary:?}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// 6. Heartbeat
// ---------------------------------------------------------------------------------------------

/// Ping every 200 ms, 200 ms to answer.
fn fast_heartbeat() -> Options {
    serve_with(SessionConfig {
        ping_interval: ms(200),
        ping_timeout: ms(200),
        ..SessionConfig::default()
    })
}

/// A client that never reads never answers a ping (tungstenite pongs while reading): the server
/// closes it with 4001, no sooner than interval + timeout, and the close frame follows the
/// welcome, the streams and the unanswered ping.
fn silent_client_is_closed_with_4001(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::start(flavor, HubConfig::default(), fast_heartbeat(), 64).await;
        let started = Instant::now();
        let mut silent = within("handshake", Client::connect(&server.url("user=silent")))
            .await
            .expect("handshake");
        server
            .wait_for_stats("the session registers", |s| s.sessions == 1)
            .await;
        server
            .wait_for_stats("the silent session expires", |s| s.sessions == 0)
            .await;
        let expired = started.elapsed();
        assert!(expired >= ms(400), "expired after {expired:?}");

        let mut kinds = Vec::new();
        let mut pings = 0;
        let mut code = None;
        for _ in 0..100 {
            match silent.read().await {
                Read::Json(value) => kinds.push(value["type"].clone()),
                Read::Other(Message::Ping(_)) => pings += 1,
                Read::Other(other) => panic!("unexpected {other:?}"),
                Read::Close(frame) => {
                    code = close_code(&frame);
                    answer_close(&mut silent).await;
                    break;
                }
                Read::Gone(why) => panic!("the connection ended without a close frame: {why}"),
            }
        }
        assert_eq!(kinds, ["welcome", "streams"]);
        assert!(pings >= 1, "no ping before the close");
        assert_eq!(code, Some(4001));
    });
}

/// A client that keeps reading answers every ping and stays connected for six intervals.
fn reading_client_survives_the_heartbeat(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::start(flavor, HubConfig::default(), fast_heartbeat(), 64).await;
        let mut reader = server.client("reader").await;
        let until = Instant::now() + ms(1200);
        let mut pings = 0;
        for _ in 0..1000 {
            if Instant::now() >= until {
                break;
            }
            match reader.read().await {
                Read::Other(Message::Ping(_)) => pings += 1,
                other => panic!("expected pings only, got {other:?}"),
            }
        }
        assert!(pings >= 4, "only {pings} pings in 1.2 s");
        let reply = request(&mut reader, json!({"type": "ping", "ref": 1})).await;
        assert_eq!(reply, json!({"type": "reply", "ref": 1}));
        assert_eq!(server.hub.stats().await.expect("hub").sessions, 1);
    });
}

// ---------------------------------------------------------------------------------------------
// 7. Frame size
// ---------------------------------------------------------------------------------------------

/// Reads until the close; the code, and whether a reply with `reference` came before it.
async fn close_after(client: &mut Client, reference: &str) -> (Option<u16>, bool) {
    let mut answered = false;
    for _ in 0..100 {
        match client.read().await {
            Read::Json(value) => answered |= value["ref"] == reference,
            Read::Other(_) => {}
            Read::Close(frame) => {
                answer_close(client).await;
                return (close_code(&frame), answered);
            }
            Read::Gone(why) => panic!("the connection ended without a close frame: {why}"),
        }
    }
    panic!("no close after 100 messages");
}

/// A frame of exactly `max_frame` bytes is read; one byte more closes the session with 1009,
/// unread; so does a frame past tungstenite's own cap (twice `max_frame`).
fn oversized_frame_closes_with_1009(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let (mut client, welcome, _) = server.connect("user=big").await;
        let max = usize::try_from(welcome["max_frame"].as_u64().expect("max_frame")).unwrap();
        assert_eq!(max, 64 * 1024);

        client.send_text(padded_ping("fits", max)).await;
        assert_eq!(
            client.answer(&json!("fits")).await.0,
            json!({"type": "reply", "ref": "fits"})
        );

        client.send_text(padded_ping("over", max + 1)).await;
        assert_eq!(close_after(&mut client, "over").await, (Some(1009), false));

        let (mut client, _, _) = server.connect("user=huge").await;
        client.send_text(padded_ping("huge", 3 * max)).await;
        assert_eq!(close_after(&mut client, "huge").await, (Some(1009), false));
        server
            .wait_for_stats("both sessions end", |s| s.sessions == 0)
            .await;
    });
}

/// The size limit is for every frame: a binary frame over `max_frame` closes the session with
/// 1009 too (protocol sections 2 and 11). `Session::handle_binary` does not look at the size, so
/// such a frame (up to tungstenite's cap of twice `max_frame`) is read and answered `bad_frame`,
/// and the session goes on.
fn oversized_binary_frame_closes_with_1009(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut client = server.client("big").await;
        let frame = vec![0u8; 64 * 1024 + 1];
        within("send", client.ws.send(Message::binary(frame)))
            .await
            .expect("send");
        match client.read().await {
            Read::Close(frame) => assert_eq!(close_code(&frame), Some(1009)),
            other => panic!("expected close 1009, got {other:?}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 8. Slow consumer and exact resume
// ---------------------------------------------------------------------------------------------

/// A room message from the server: `{"seq":N,"pad":"xxx…"}`.
fn numbered(seq: u64, pad: &str) -> Payload {
    payload(&format!(r#"{{"seq":{seq},"pad":"{pad}"}}"#))
}

/// A client stops reading while the server publishes to its room: once its socket and its
/// delivery channel (4 deep) are full the hub drops it as a slow consumer; when it reads again it
/// gets a gapless prefix of the messages, then close 4000 (or the end of the connection). Joining
/// again with `since` = the last id it got replays exactly the rest, in order, once each
/// (`recovered: true`), and live messages follow without a duplicate.
fn slow_consumer_is_dropped_and_resumes_exactly(flavor: Flavor) {
    smol::block_on(async {
        let config = HubConfig {
            room_history: HistoryLimit {
                max_messages: 5000,
                max_age: Duration::from_secs(600),
            },
            ..HubConfig::default()
        };
        let server = Server::start(flavor, config, Options::default(), 4).await;
        let feed = room("feed");
        let mut slow = server.client("slow").await;
        let joined = join(&mut slow, "feed").await;

        // Publish until the hub gives up on the client (socket buffers, tungstenite's write
        // buffer and the channel full), then a few more that it misses while gone.
        let pad = "x".repeat(16 * 1024);
        let mut published = 0u64;
        for _ in 0..3000 {
            published += 1;
            server
                .hub
                .publish(feed.clone(), numbered(published, &pad))
                .await
                .expect("hub");
            if published % 8 == 0 && server.hub.stats().await.expect("hub").slow_consumers >= 1 {
                break;
            }
        }
        let stats = server.hub.stats().await.expect("hub");
        assert_eq!(stats.slow_consumers, 1, "never dropped after {published}");
        for _ in 0..10 {
            published += 1;
            server
                .hub
                .publish(feed.clone(), numbered(published, &pad))
                .await
                .expect("hub");
        }

        // The stalled client reads again: a gapless prefix, then the close.
        let mut last_id = joined["id"].clone();
        let mut got = 0u64;
        let mut end = None;
        for _ in 0..=published + 10 {
            match slow.read().await {
                Read::Json(message) => {
                    assert_eq!(message["type"], "message", "{}", message["type"]);
                    assert_eq!(message["data"]["seq"], got + 1, "a gap");
                    got += 1;
                    last_id = message["id"].clone();
                }
                Read::Other(_) => {}
                Read::Close(frame) => {
                    end = Some(format!("close {:?}", close_code(&frame)));
                    assert_eq!(close_code(&frame), Some(4000));
                    answer_close(&mut slow).await;
                    break;
                }
                Read::Gone(why) => {
                    end = Some(format!("gone: {why}"));
                    break;
                }
            }
        }
        let end = end.expect("the connection ended");
        assert!(got < published, "got all {published} messages before {end}");
        eprintln!("slow consumer: {got} of {published} messages before {end}");

        // Resume: exactly the missed ones, in order, once each.
        let mut resumed = server.client("slow").await;
        let reply = request(
            &mut resumed,
            json!({"type": "join", "ref": "resume", "room": "feed", "since": last_id}),
        )
        .await;
        assert_eq!(reply["id"], last_id, "{reply}");
        assert_eq!(reply["recovered"], true, "{reply}");
        assert_eq!(reply["replayed"], published - got, "{reply}");
        for seq in got + 1..=published {
            let message = resumed.next_json().await;
            assert_eq!(message["type"], "message");
            assert_eq!(message["data"]["seq"], seq, "replay out of order");
            assert_eq!(position(&message["id"]).1, seq, "ids follow seq");
        }
        // Live messages follow the replay, without a repeat.
        server
            .hub
            .publish(feed.clone(), numbered(published + 1, "live"))
            .await
            .expect("hub");
        assert_eq!(resumed.next_json().await["data"]["seq"], published + 1);
    });
}

// ---------------------------------------------------------------------------------------------
// 9. Resume at connect
// ---------------------------------------------------------------------------------------------

/// A WebSocket connection resumes its user stream from `?cursor=` (percent-encoded): `streams`
/// says where (`recovered: true`, `replayed` = what it missed), then exactly those notifications
/// follow, in order, and nothing else. A cursor the stream cannot cover is `recovered: false`.
fn cursor_resumes_the_user_stream_at_connect(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let dave = UserId::new("dave").expect("a valid user");
        let (mut client, _, streams) = server.connect("user=dave").await;
        let start = stream_entry(&streams, "user")["id"].clone();
        let (epoch, offset) = position(&start);
        assert_eq!(offset, 0);

        let first = server
            .hub
            .notify(dave.clone(), Some("hello".into()), payload(r#"{"n":1}"#))
            .await
            .expect("hub")
            .expect("stored");
        assert_eq!(first.sessions, 1);
        let notify = client.next_json().await;
        assert_eq!(
            notify,
            json!({"type": "notify", "id": format!("{epoch}.1"), "event": "hello", "data": {"n": 1}})
        );
        let cursor = notify["id"].as_str().expect("an id").to_owned();
        client.close_and_wait().await;
        server
            .wait_for_stats("dave is offline", |s| s.sessions == 0)
            .await;

        // Three more while offline, one without an event.
        for n in 2..=4 {
            let event = (n != 3).then(|| "later".into());
            let published = server
                .hub
                .notify(dave.clone(), event, payload(&format!(r#"{{"n":{n}}}"#)))
                .await
                .expect("hub")
                .expect("stored");
            assert_eq!(published.sessions, 0);
        }

        let query = format!("user=dave&cursor=user%3D{}", cursor.replace('.', "%2E"));
        let (mut client, _, streams) = server.connect(&query).await;
        assert_eq!(
            stream_entry(&streams, "user"),
            json!({"stream": "user", "id": cursor, "recovered": true, "replayed": 3})
        );
        let all = stream_entry(&streams, "all");
        assert!(all.get("recovered").is_none(), "not in the cursor: {all}");
        for n in 2..=4 {
            let mut expected = json!({"type": "notify", "id": format!("{epoch}.{n}"), "event": "later", "data": {"n": n}});
            if n == 3 {
                expected.as_object_mut().unwrap().remove("event");
            }
            assert_eq!(client.next_json().await, expected);
        }
        let extra = client.barrier().await;
        assert!(extra.is_empty(), "more than the missed ones: {extra:?}");
        client.close_and_wait().await;

        // A position the stream cannot cover (another epoch, or past its last message) is not
        // recovered: the stream resumes after what was delivered, here everything, so nothing.
        let other_epoch = if epoch == "1" { "2" } else { "1" };
        for stale in [format!("{other_epoch}.2"), format!("{epoch}.99")] {
            let (mut client, _, streams) = server
                .connect(&format!("user=dave&cursor=user%3D{stale}"))
                .await;
            assert_eq!(
                stream_entry(&streams, "user"),
                json!({"stream": "user", "id": format!("{epoch}.4"), "recovered": false, "replayed": 0}),
                "cursor user={stale}"
            );
            let extra = client.barrier().await;
            assert!(extra.is_empty(), "replayed after user={stale}: {extra:?}");
            client.close_and_wait().await;
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 10. Authentication
// ---------------------------------------------------------------------------------------------

/// The development auth refuses a handshake without `?user=` (401), with an invalid user id (401)
/// or cursor (400). A custom `authenticate` hook decides alone: its refusal's status is the
/// response's (403), and what it accepts is the connection (here: no broadcast feed).
fn authentication_refuses_with_http_status(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        for (query, status) in [
            ("", 401),
            ("room=lobby", 401),
            ("user=", 401),
            ("user=a%01b", 401),
            ("user=a&cursor=nonsense", 400),
        ] {
            let result = within("handshake", Client::connect(&server.url(query))).await;
            assert_eq!(refused_status(result), status, "?{query}");
        }

        let options = Options {
            authenticate: Arc::new(|handshake| {
                if handshake.token().as_deref() == Some("letmein") {
                    Ok(UserId::new("alice").expect("valid"))
                } else {
                    Err(Refusal::new(403, "forbidden"))
                }
            }),
            ..Options::default()
        };
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;
        // The hook alone decides: `?user=` means nothing to it.
        let result = within("handshake", Client::connect(&server.url("user=alice"))).await;
        assert_eq!(refused_status(result), 403);

        let mut request = server.url("").into_client_request().expect("a request");
        request
            .headers_mut()
            .insert("authorization", HeaderValue::from_static("Bearer letmein"));
        let (mut client, _) = within("handshake", Client::connect_request(request))
            .await
            .expect("accepted");
        assert_eq!(client.next_json().await["user"], "alice");
        // The same token in the query, as browsers must send it.
        let (mut client, _, _) = server.connect("token=letmein").await;
        client.close_and_wait().await;
    });
}

/// A connection that does not complete its upgrade within `handshake_timeout` is dropped
/// (protocol section 12, 4008: before the upgrade there is no WebSocket to carry the code, so the
/// TCP connection ends). `serve` awaits tungstenite's handshake with no deadline, and the
/// session's handshake timer starts only after the upgrade, so a connection that sends nothing,
/// or half a request, holds its task and socket for as long as the peer likes.
fn stalled_handshake_is_dropped(flavor: Flavor) {
    smol::block_on(async {
        let options = serve_with(SessionConfig {
            handshake_timeout: ms(200),
            ..SessionConfig::default()
        });
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;
        for partial in ["", "GET /ws?user=a HTTP/1.1\r\nHost: x\r\n"] {
            let mut stream = within("connect", TcpStream::connect(server.addr))
                .await
                .expect("connect");
            within("write", stream.write_all(partial.as_bytes()))
                .await
                .expect("write");
            // Whatever the server says (an HTTP 408, say), it must then end the connection.
            let ended = async {
                let mut buffer = [0u8; 1024];
                for _ in 0..64 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return true,
                        Ok(_) => continue,
                    }
                }
                false
            };
            let limit = ms(2000);
            let timeout = async {
                sleep(limit).await;
                false
            };
            assert!(
                futures_lite::future::or(ended, timeout).await,
                "still open {limit:?} after sending {partial:?}, with a 200 ms handshake timeout"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 11. Subprotocol
// ---------------------------------------------------------------------------------------------

/// `roomcast.v1` is selected when offered (alone or among others), and no subprotocol is
/// selected when it is not offered.
fn subprotocol_is_selected_when_offered(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        for offer in ["roomcast.v1", "chat, roomcast.v1"] {
            let mut request = server.url("user=a").into_client_request().expect("request");
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(offer).expect("a header value"),
            );
            let (mut client, response) = within("handshake", Client::connect_request(request))
                .await
                .expect("handshake");
            assert_eq!(
                response.headers().get("sec-websocket-protocol"),
                Some(&HeaderValue::from_static(SUBPROTOCOL)),
                "offered {offer}"
            );
            assert_eq!(client.next_json().await["type"], "welcome");
        }

        let request = server.url("user=b").into_client_request().expect("request");
        let (_, response) = within("handshake", Client::connect_request(request))
            .await
            .expect("handshake");
        assert!(response.headers().get("sec-websocket-protocol").is_none());

        // Offering only something else: accepted, none selected (tungstenite's client would fail
        // such a handshake itself, so this one is written by hand).
        let head = raw_handshake(&server, "/ws?user=c", "Sec-WebSocket-Protocol: chat\r\n").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
            "{head}"
        );
    });
}

/// A handshake that is not its connection's first request (a keep-alive connection that asked
/// something else first) is served through hyper's upgrade, where the first request of a
/// connection is served on the connection directly: the same answer, subprotocol included, and
/// the same session.
fn a_session_after_another_request_goes_through_hyper(flavor: Flavor) {
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

// ---------------------------------------------------------------------------------------------
// 12. Echo endpoint
// ---------------------------------------------------------------------------------------------

/// The echo socket returns text and binary messages unchanged (non-ASCII, empty, 1 MiB), answers
/// a ping with a pong of the same payload, and echoes the close.
fn echo_returns_every_message_unchanged(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let url = format!("ws://{}/ws/echo", server.addr);
        let mut client = within("handshake", Client::connect(&url))
            .await
            .expect("handshake");

        let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let messages = [
            Message::text("héllo, wörld ✓ 🎉 日本語"),
            Message::text(""),
            Message::binary(vec![0u8, 255, 1, 254]),
            Message::binary(big),
            Message::text("x".repeat(100_000)),
        ];
        for message in messages {
            within("send", client.ws.send(message.clone()))
                .await
                .expect("send");
            match client.next_message().await {
                Some(Ok(echoed)) => assert!(echoed == message, "echoed differently"),
                other => panic!("expected the echo, got {other:?}"),
            }
        }

        within(
            "send",
            client.ws.send(Message::Ping("are you there".into())),
        )
        .await
        .expect("send");
        match client.next_message().await {
            Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"are you there"),
            other => panic!("expected a pong, got {other:?}"),
        }

        let close = CloseFrame {
            code: WsCloseCode::Normal,
            reason: "bye".into(),
        };
        within("close", client.ws.close(Some(close)))
            .await
            .expect("close");
        match client.next_message().await {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1000),
            other => panic!("expected the close echoed, got {other:?}"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 13. Nothing leaks
// ---------------------------------------------------------------------------------------------

/// Set in the child process that runs the cycles alone.
const LEAK_CHILD: &str = "ROOMCAST_WS_LEAK_CHILD";
const LEAK_TEST: &str = "nothing_leaks_over_1000_connections";
const BATCH: usize = 50;

/// One client's life: connect, join a room, publish once, close.
async fn cycle(server: Arc<Server>, n: usize) {
    let mut client = server.client(&format!("u{n}")).await;
    join(&mut client, &format!("r{}", n % 10)).await;
    let reply = request(
        &mut client,
        json!({"type": "publish", "ref": "p", "room": format!("r{}", n % 10), "data": n}),
    )
    .await;
    assert_eq!(reply["type"], "reply", "{reply}");
    client.close_and_wait().await;
}

/// Clients `range`, `BATCH` at a time, concurrently within a batch.
async fn cycles(server: &Arc<Server>, range: std::ops::Range<usize>) {
    let starts: Vec<usize> = range.clone().step_by(BATCH).collect();
    for start in starts {
        let tasks: Vec<_> = (start..(start + BATCH).min(range.end))
            .map(|n| smol::spawn(cycle(Arc::clone(server), n)))
            .collect();
        within("a batch of cycles", async {
            for task in tasks {
                task.await;
            }
        })
        .await;
    }
}

/// Waits until the hub holds nothing: no session, room, user or stored message.
async fn settled(server: &Server) {
    server
        .wait_for_stats("the hub empties", |s| {
            s.sessions == 0 && s.rooms == 0 && s.users == 0 && s.stored_messages == 0
        })
        .await;
}

/// The cycles, in the child process: 100 to warm up, then 1,000 measured. Presence grace, room
/// history and outbox history (for which offline users are remembered) are short so that the
/// hub must end up empty.
async fn leak_cycles(flavor: Flavor) {
    let config = HubConfig {
        presence_grace: ms(50),
        room_history: HistoryLimit {
            max_messages: 1000,
            max_age: ms(200),
        },
        outbox_history: HistoryLimit {
            max_messages: 1000,
            max_age: ms(200),
        },
        ..HubConfig::default()
    };
    let server = Arc::new(Server::start(flavor, config, Options::default(), 64).await);
    cycles(&server, 0..100).await;
    settled(&server).await;
    let before = rss_kib();
    let started = Instant::now();
    cycles(&server, 100..1100).await;
    let took = started.elapsed();
    settled(&server).await;
    let after = rss_kib();
    let grown = after.saturating_sub(before);
    eprintln!(
        "leak check: 1000 cycles in {took:?}; VmRSS before {before} KiB, after {after} KiB, \
         grown {grown} KiB ({} bytes per cycle)",
        grown * 1024 / 1000
    );
    assert!(grown < 8 * 1024, "RSS grew by {grown} KiB over 1000 cycles");
}

/// 1,000 connect/join/publish/disconnect cycles leave the hub empty and the RSS about where it
/// was. Run in a child process of this test binary, alone, so that the other tests' servers and
/// buffers (the slow consumer's megabytes) do not move the figures.
fn nothing_leaks_over_1000_connections(flavor: Flavor) {
    if std::env::var_os(LEAK_CHILD).is_some() {
        smol::block_on(leak_cycles(flavor));
        return;
    }
    let name = match flavor {
        Flavor::Smol => format!("on_smol::{LEAK_TEST}"),
        Flavor::Tokio => format!("on_tokio::{LEAK_TEST}"),
    };
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(LEAK_CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the leak check in a child process");
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let limit = Duration::from_secs(60);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the leak check took over {limit:?}");
        }
        std::thread::sleep(ms(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    eprint!("{stderr}");
    assert!(
        status.success(),
        "the leak check failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("leak check:"),
        "the child ran no leak check:\n{stdout}\n{stderr}"
    );
}

on_every_runtime!(
    connect_gets_welcome_then_streams,
    two_clients_chat_in_a_room_with_presence,
    presence_and_publish_in_a_room,
    typing_is_relayed_to_others_only,
    direct_messages_with_receipts,
    every_ref_gets_exactly_one_answer,
    json_array_frames_are_bad_frames,
    silent_client_is_closed_with_4001,
    reading_client_survives_the_heartbeat,
    oversized_frame_closes_with_1009,
    oversized_binary_frame_closes_with_1009,
    slow_consumer_is_dropped_and_resumes_exactly,
    cursor_resumes_the_user_stream_at_connect,
    authentication_refuses_with_http_status,
    stalled_handshake_is_dropped,
    subprotocol_is_selected_when_offered,
    a_session_after_another_request_goes_through_hyper,
    echo_returns_every_message_unchanged,
    nothing_leaks_over_1000_connections,
);
