//! Property tests of the envelope codec: what is encoded reads back, bad input is answered with
//! a well-formed error that keeps the `ref`, the size limit holds, and payloads stay verbatim.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use roomcast_core::cursor::Position;
use roomcast_core::envelope::{
    ClientEnvelope, ClientMessage, Codec, ErrorCode, MAX_REF_LEN, Payload, PresenceChange, Ref,
    Reply, ServerMessage,
};
use roomcast_core::names::{RoomName, UserId};
use serde_json::Value;

/// The fields a client frame is read from.
const KEYS: [&str; 7] = ["type", "ref", "room", "data", "since", "to", "typing"];
/// Client types, a server type and an unknown one.
const TYPES: [&str; 8] = [
    "join", "leave", "publish", "typing", "direct", "ping", "welcome", "dance",
];

/// `text` as a JSON string.
fn quoted(text: &str) -> String {
    Value::from(text).to_string()
}

/// As many of `chars` as fit in `max` bytes.
fn fit(chars: Vec<char>, max: usize) -> String {
    let mut text = String::new();
    for c in chars {
        if text.len() + c.len_utf8() > max {
            break;
        }
        text.push(c);
    }
    text
}

fn room() -> impl Strategy<Value = RoomName> {
    "[A-Za-z0-9_.:/-]{1,64}".prop_map(|name| RoomName::new(&name).expect("allowed alphabet"))
}

fn user() -> impl Strategy<Value = UserId> {
    // What a user id may hold: no controls, no bidirectional formatting, not only whitespace.
    let bidi = |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    vec(
        any::<char>().prop_filter("no controls", move |c| !c.is_control() && !bidi(*c)),
        1..=128,
    )
    .prop_map(|mut chars| {
        if chars.iter().all(|c| c.is_whitespace()) {
            chars[0] = 'u';
        }
        UserId::new(&fit(chars, 128)).expect("1 to 128 bytes, no controls, not blank")
    })
}

fn reference() -> impl Strategy<Value = Ref> {
    prop_oneof![
        any::<u64>().prop_map(Ref::Number),
        vec(any::<char>(), 0..=MAX_REF_LEN).prop_map(|chars| Ref::from(&*fit(chars, MAX_REF_LEN))),
    ]
}

fn position() -> impl Strategy<Value = Position> {
    (any::<u64>(), any::<u64>()).prop_map(|(epoch, offset)| Position { epoch, offset })
}

/// Any JSON value, at most 4 levels deep and about 32 nodes.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::from)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((any::<String>(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn payload() -> impl Strategy<Value = Payload> {
    json_value().prop_map(|v| Payload::from_value(&v).expect("a JSON value serializes"))
}

fn client_envelope() -> impl Strategy<Value = ClientEnvelope> {
    let message = prop_oneof![
        (room(), option::of(position())).prop_map(|(room, since)| ClientMessage::Join {
            token: None,
            room,
            since
        }),
        room().prop_map(|room| ClientMessage::Leave { room }),
        (room(), payload()).prop_map(|(room, data)| ClientMessage::Publish { room, data }),
        (room(), any::<bool>()).prop_map(|(room, typing)| ClientMessage::Typing { room, typing }),
        (user(), payload()).prop_map(|(to, data)| ClientMessage::Direct { to, data }),
        Just(ClientMessage::Ping),
        position().prop_map(|upto| ClientMessage::Read { upto }),
    ];
    (option::of(reference()), message)
        .prop_map(|(reference, message)| ClientEnvelope { reference, message })
}

prop_compose! {
    /// A `reply` with any subset of its optional fields.
    fn reply()(
        reference in reference(),
        room in option::of(room()),
        members in option::of(vec(user(), 0..4)),
        count in any::<Option<u64>>(),
        id in option::of(position()),
        (recovered, replayed, delivered) in any::<(Option<bool>, Option<u64>, Option<bool>)>(),
        unread in any::<Option<u64>>(),
        data in option::of(payload()),
    ) -> ServerMessage {
        let reply =
            Reply { reference, room, members, count, id, recovered, replayed, delivered, unread, data };
        ServerMessage::Reply(reply)
    }
}

/// Any server message. (`prop_oneof!` is brace-delimited so rustfmt keeps this table compact.)
fn server_message() -> impl Strategy<Value = ServerMessage> {
    use PresenceChange::*;
    use ServerMessage::*;
    let (text, ms, codes) = (any::<String>, any::<u64>, select(ErrorCode::ALL.to_vec()));
    prop_oneof! {
        (text(), user(), ms(), ms(), ms()).prop_map(|(session, user, interval, timeout, max)| {
            let (session, ping_interval_ms, ping_timeout_ms) = (session.into(), interval, timeout);
            Welcome { session, user, ping_interval_ms, ping_timeout_ms, max_frame: max }
        }),
        reply(),
        (option::of(reference()), codes, text())
            .prop_map(|(reference, code, message)| Error { reference, code, message }),
        (room(), position(), option::of(user()), payload())
            .prop_map(|(room, id, from, data)| Message { event: None,  room, id, from, data }),
        (room(), vec(user(), 0..4), vec(user(), 0..4))
            .prop_map(|(room, joins, leaves)| Presence { room, change: Diff { joins, leaves } }),
        (room(), vec(user(), 0..4))
            .prop_map(|(room, members)| Presence { room, change: Members(members) }),
        (room(), ms()).prop_map(|(room, count)| Presence { room, change: Count(count) }),
        (room(), user(), any::<bool>())
            .prop_map(|(room, user, typing)| Typing { room, user, typing }),
        (position(), user(), payload()).prop_map(|(id, from, data)| Direct { id, from, data }),
        (position(), option::of(text()), payload(), any::<bool>())
            .prop_map(|(id, event, data, notify)| {
                let event = event.map(Into::into);
                if notify { Notify { id, event, data } } else { Broadcast { id, event, data } }
            }),
        (text(), ms()).prop_map(|(reason, reconnect_ms)| Shutdown { reason, reconnect_ms }),
        (position(), ms()).prop_map(|(upto, unread)| Read { upto, unread }),
    }
}

/// JSON string text of up to 70 000 bytes, one character repeated, biased towards characters
/// that escaping makes longer: frames up to and past the 64 KiB default limit.
fn long_string() -> impl Strategy<Value = String> {
    let chars = select(vec!['a', '"', '\\', 'é']);
    (chars, 0usize..70_000).prop_map(|(c, bytes)| {
        let n = bytes / quoted(&c.to_string()).len().saturating_sub(2);
        quoted(&c.to_string().repeat(n))
    })
}

/// The text of a field's value: mostly JSON, sometimes what parsers find hard.
fn value_text() -> impl Strategy<Value = String> {
    let odd = ["1e400", "-1", "-0", "1.5", "1e-999", "\"0.0\"", "\"r\""];
    let huge = (20usize..400, any::<bool>())
        .prop_map(|(n, minus)| "-".repeat(minus.into()) + &"9".repeat(n));
    prop_oneof![
        4 => json_value().prop_map(|v| v.to_string()),
        2 => select(TYPES.to_vec()).prop_map(quoted),
        1 => select(odd.to_vec()).prop_map(String::from),
        1 => huge,
        1 => (1usize..400).prop_map(|depth| "[".repeat(depth) + &"]".repeat(depth)),
        3 => long_string(),
    ]
}

/// An object's text from its entries, in order (keys may repeat).
fn object(entries: &[(String, String)]) -> String {
    let fields: Vec<String> = entries
        .iter()
        .map(|(key, value)| format!("{}:{value}", quoted(key)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Frame text whose `Debug` shortens long text, so a failure report stays readable.
#[derive(Clone)]
struct Text(String);

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.char_indices().nth(200) {
            Some((end, _)) => write!(f, "{:?}... ({} bytes)", &self.0[..end], self.0.len()),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// Text for the decoder: arbitrary text, JSON-ish objects, such objects truncated or with a
/// character inserted or deleted, and objects of one long field.
fn frame_text() -> impl Strategy<Value = Text> {
    let objects = || {
        vec(
            (select(KEYS.to_vec()).prop_map(String::from), value_text()),
            1..8,
        )
        .prop_map(|entries| object(&entries))
    };
    let mutated =
        (objects(), any::<Index>(), any::<char>(), 0..3u8).prop_map(|(text, at, c, how)| {
            let mut chars: Vec<char> = text.chars().collect();
            let at = at.index(chars.len() + 1);
            match how {
                0 => chars.truncate(at),
                1 if at < chars.len() => drop(chars.remove(at)),
                _ => chars.insert(at, c),
            }
            chars.into_iter().collect()
        });
    let long =
        (select(KEYS.to_vec()), long_string()).prop_map(|(key, v)| object(&[(key.into(), v)]));
    prop_oneof![1 => any::<String>(), 4 => objects(), 2 => mutated, 4 => long].prop_map(Text)
}

/// A plausible value for `key`, or any value text.
fn field_value(key: &'static str) -> BoxedStrategy<String> {
    let valid = match key {
        "type" => select(TYPES.to_vec()).prop_map(quoted).boxed(),
        "room" | "to" => room().prop_map(|room| quoted(&room)).boxed(),
        "since" => position().prop_map(|p| format!("\"{p}\"")).boxed(),
        "typing" => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        _ => json_value().prop_map(|v| v.to_string()).boxed(),
    };
    prop_oneof![3 => valid, 1 => value_text()].boxed()
}

/// The JSON text of a ref: as serde_json writes it, or with every character `\u`-escaped.
fn ref_text(reference: &Ref, escape: bool) -> String {
    match reference {
        Ref::Text(text) if escape => {
            let units: String = text.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
            format!("\"{units}\"")
        }
        _ => serde_json::to_string(reference).expect("a ref serializes"),
    }
}

/// A frame with a valid `ref` at any place among other distinct fields, and that ref.
fn frame_with_ref() -> impl Strategy<Value = (Text, Ref)> {
    let fields: Vec<_> = KEYS
        .iter()
        .filter(|&&key| key != "ref")
        .map(|&key| option::of(field_value(key).prop_map(move |v| (key.to_owned(), v))))
        .collect();
    (fields, reference(), any::<bool>(), any::<Index>()).prop_map(
        |(fields, reference, escape, at)| {
            let mut entries: Vec<(String, String)> = fields.into_iter().flatten().collect();
            let at = at.index(entries.len() + 1);
            entries.insert(at, ("ref".to_owned(), ref_text(&reference, escape)));
            (Text(object(&entries)), reference)
        },
    )
}

/// Writes `value` as JSON with the next of `gaps` around every structural token.
fn spaced<'a>(value: &Value, gaps: &mut impl Iterator<Item = &'a str>, out: &mut String) {
    let (open, close, items): (_, _, Vec<(Option<&String>, &Value)>) = match value {
        Value::Array(items) => ('[', ']', items.iter().map(|v| (None, v)).collect()),
        Value::Object(map) => ('{', '}', map.iter().map(|(k, v)| (Some(k), v)).collect()),
        scalar => return out.push_str(&scalar.to_string()),
    };
    out.push(open);
    for (i, (key, item)) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.extend(gaps.next());
        if let Some(key) = key {
            out.push_str(&quoted(key));
            out.extend(gaps.next());
            out.push(':');
            out.extend(gaps.next());
        }
        spaced(item, gaps, out);
        out.extend(gaps.next());
    }
    out.extend(gaps.next());
    out.push(close);
}

proptest! {
    // No regressions file: failures are reported, not persisted next to the tests.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    // What a client library encodes, the server reads back as the same message.
    #[test]
    fn client_envelopes_roundtrip(envelope in client_envelope()) {
        prop_assert_eq!(Codec::new().decode_client(&envelope.encode()), Ok(envelope));
    }

    // What the server sends, a client reads back; frames are shared, so encoding is stable, and
    // `type` comes first so a client can route a frame before reading the rest.
    #[test]
    fn server_messages_roundtrip(message in server_message()) {
        let frame = message.encode();
        prop_assert_eq!(&frame, &message.encode());
        let head = format!("{{\"type\":\"{}\"", message.kind());
        prop_assert!(frame.as_str().starts_with(&head), "{}", frame.as_str());
        prop_assert_eq!(Codec::new().decode_server(frame.as_str()), Ok(message));
    }

    // Bad input is answered, never fatal: decoding never panics, and every error becomes an
    // `error` reply that a client reads back unchanged.
    #[test]
    fn errors_are_answerable(text in frame_text()) {
        if let Err(error) = Codec::new().decode_client(&text.0) {
            let frame = error.to_frame();
            let expected = ServerMessage::Error {
                reference: error.reference,
                code: error.code,
                message: error.message,
            };
            let decoded = Codec::new().decode_server(frame.as_str());
            prop_assert!(
                decoded.as_ref() == Ok(&expected),
                "the {}-byte error reply to a {}-byte frame reads back as {}",
                frame.len(),
                text.0.len(),
                decoded.map_or_else(|e| e.to_string(), |m| format!("{:?}", m.kind())),
            );
        }
    }

    // A message with a `ref` gets exactly one reply carrying it, so a readable ref must survive
    // every failure except a frame too large to look at.
    #[test]
    fn the_ref_is_never_lost((text, reference) in frame_with_ref()) {
        match Codec::new().decode_client(&text.0) {
            Ok(envelope) => prop_assert_eq!(envelope.reference, Some(reference)),
            Err(error) if error.code == ErrorCode::TooLarge => {}
            Err(error) => prop_assert_eq!(&error.reference, &Some(reference), "{}", error),
        }
    }

    // The size limit is exact and checked before reading, so an oversized frame costs nothing.
    #[test]
    fn the_size_limit_is_exact(text in frame_text(), pick in 0..4u8, at in any::<Index>()) {
        let Text(text) = text;
        let len = text.len();
        let limit = match pick {
            0 => len.saturating_sub(1),
            1 => len,
            2 => len + 1,
            _ => at.index(2 * len + 2),
        };
        let result = Codec::new().with_max_frame(limit).decode_client(&text);
        if len > limit {
            let error = result.expect_err("over the limit");
            prop_assert_eq!((error.code, error.reference), (ErrorCode::TooLarge, None));
        } else if let Err(error) = result {
            prop_assert_ne!(error.code, ErrorCode::TooLarge);
        }
    }

    // Payloads are relayed as received: no reformatting, whatever the sender's whitespace.
    #[test]
    fn payloads_are_verbatim(value in json_value(), gaps in vec("[ \t\r\n]{0,3}", 1..8)) {
        let mut data = String::new();
        spaced(&value, &mut gaps.iter().map(String::as_str).cycle(), &mut data);
        let (before, after) = (&gaps[0], &gaps[gaps.len() - 1]);
        let frame = format!(r#"{{"type":"publish","room":"r","data":{before}{data}{after}}}"#);
        let decoded = Codec::new().decode_client(&frame);
        let Ok(ClientEnvelope { message: ClientMessage::Publish { data: got, .. }, .. }) = decoded
        else {
            return Err(TestCaseError::fail(format!("{frame:?} decodes to {decoded:?}")));
        };
        prop_assert_eq!(got.as_json(), data);
    }
}
