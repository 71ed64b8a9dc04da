//! SSE resume, end to end in the core: an SSE session and the hub write an event stream, a
//! browser (our WHATWG decoder) reads it, the connection is cut at any byte, and the browser
//! reconnects with its `Last-Event-ID` as the cursor. Across both connections every stream must
//! show every message exactly once, in order, and the resume must say `recovered: true`.

use std::collections::BTreeMap;
use std::time::Instant;

use proptest::prelude::*;
use roomcast_core::cursor::Cursor;
use roomcast_core::envelope::{Codec, Payload, ServerMessage};
use roomcast_core::event_stream::EventStream;
use roomcast_core::harness::Harness;
use roomcast_core::hub::{Connect, Hub, HubConfig};
use roomcast_core::names::{RoomName, UserId};
use roomcast_core::session::SessionKind;
use roomcast_core::sse::Decoder;

#[allow(clippy::disallowed_methods)] // a test needs one real instant to offset from
fn start() -> Instant {
    Instant::now()
}

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("valid")
}

/// One published message: its stream, and the number it carries.
#[derive(Clone, Copy, Debug)]
enum Publish {
    Room(bool),
    User,
    All,
}

/// Connects an SSE session with `cursor`, then publishes `publish` (numbered from `first`);
/// returns the bytes the connection would carry, and lets the connection go.
fn connection(
    server: &mut Harness,
    cursor: Option<Cursor>,
    publish: &[Publish],
    first: u64,
) -> Vec<u8> {
    let user = UserId::new("alice").expect("valid");
    let connect = Connect {
        access: Default::default(),
        user: user.clone(),
        broadcast: true,
        rooms: vec![room("a"), room("b")],
        cursor: cursor.clone(),
    };
    let id = server
        .connect(SessionKind::Sse, connect)
        .expect("within limits");
    for (n, publish) in publish.iter().enumerate() {
        let data = Payload::from_json(&(first + n as u64).to_string()).expect("JSON");
        server.feed_hub(|hub, now| match publish {
            Publish::Room(a) => {
                hub.publish(now, room(if *a { "a" } else { "b" }), data);
            }
            Publish::User => {
                hub.notify(now, user.clone(), None, data);
            }
            Publish::All => {
                hub.broadcast(now, None, data);
            }
        });
    }
    let mut stream = EventStream::new(1000, cursor);
    let mut bytes = Vec::new();
    for transmit in server.take_transmits(id) {
        stream.encode(&transmit, &mut bytes);
    }
    server.remove(id);
    bytes
}

/// What a browser makes of `bytes`: per stream kind, the numbers it got; the `streams` entries
/// it got; and its last event id.
fn browser(bytes: &[u8], seen: &mut BTreeMap<String, Vec<u64>>) -> (Vec<Option<bool>>, String) {
    let mut decoder = Decoder::new();
    let mut input = bytes;
    let mut recovered = Vec::new();
    while let Some(event) = decoder.decode(&mut input).expect("within limits") {
        let stream = match Codec::new()
            .decode_server(event.data)
            .expect("server frames")
        {
            ServerMessage::Message { room, data, .. } => Some((format!("room:{room}"), data)),
            ServerMessage::Notify { data, .. } => Some(("user".to_owned(), data)),
            ServerMessage::Broadcast { data, .. } => Some(("all".to_owned(), data)),
            ServerMessage::Streams { streams } => {
                recovered = streams.iter().map(|s| s.recovered).collect();
                None
            }
            _ => None,
        };
        if let Some((stream, data)) = stream {
            seen.entry(stream)
                .or_default()
                .push(data.parse().expect("a number"));
        }
    }
    decoder.finish(); // the cut: a partial event is dropped, as a browser drops it
    (recovered, decoder.last_event_id().to_owned())
}

fn publish() -> impl Strategy<Value = Publish> {
    prop_oneof![
        any::<bool>().prop_map(Publish::Room),
        Just(Publish::User),
        Just(Publish::All)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn last_event_id_resumes_every_stream_exactly(
        before in proptest::collection::vec(publish(), 0..12),
        after in proptest::collection::vec(publish(), 0..12),
        cut in 0.0f64..=1.0,
    ) {
        let mut server = Harness::new(Hub::new(HubConfig::default()), start());
        let first = connection(&mut server, None, &before, 0);
        // The connection drops after some byte; the browser keeps what it parsed.
        let cut = (first.len() as f64 * cut) as usize;
        let mut seen = BTreeMap::new();
        let (_, last_event_id) = browser(&first[..cut], &mut seen);
        // Reconnect with Last-Event-ID (empty if the first event never arrived); more messages come.
        let cursor = (!last_event_id.is_empty()).then(|| last_event_id.parse::<Cursor>().expect("ids are cursors"));
        let resumed_with_cursor = cursor.is_some();
        let second = connection(&mut server, cursor, &after, before.len() as u64);
        let (recovered, _) = browser(&second, &mut seen);
        if resumed_with_cursor {
            prop_assert!(recovered.iter().all(|r| *r == Some(true)), "{recovered:?}");
        }
        // Every message of every stream, exactly once, in order. Without a cursor (no event
        // with an id arrived) every stream restarts where the hub stands: the head, and for the
        // outbox what no session received (the first connection received all it was sent).
        let mut expected: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (n, publish) in before.iter().chain(&after).enumerate() {
            let stream = match publish {
                Publish::Room(true) => "room:a",
                Publish::Room(false) => "room:b",
                Publish::User => "user",
                Publish::All => "all",
            };
            let n = n as u64;
            let skipped = !resumed_with_cursor && n < before.len() as u64 && !seen.get(stream).is_some_and(|got| got.contains(&n));
            if !skipped {
                expected.entry(stream.to_owned()).or_default().push(n);
            }
        }
        prop_assert_eq!(seen, expected);
    }
}
