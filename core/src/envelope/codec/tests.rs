//! One test per envelope rule: each message type, each error, and the exact wire form.

use super::*;
use crate::cursor::{Position, Stream};
use crate::envelope::StreamStart;
use crate::envelope::{MAX_ERROR_MESSAGE, MAX_REF_LEN, Payload};
use crate::names::{RoomName, UserId};

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("valid room")
}

fn user(id: &str) -> UserId {
    UserId::new(id).expect("valid user")
}

fn json(text: &str) -> Payload {
    Payload::from_json(text).expect("valid JSON")
}

fn decode(text: &str) -> Result<ClientEnvelope, EnvelopeError> {
    Codec::new().decode_client(text)
}

fn error(text: &str) -> (ErrorCode, Option<Ref>) {
    let error = decode(text).expect_err("refused");
    (error.code, error.reference)
}

#[test]
fn decodes_every_client_message() {
    let cases = [
        (
            r#"{"type":"join","ref":1,"room":"lobby"}"#,
            ClientMessage::Join {
                token: None,
                room: room("lobby"),
                since: None,
            },
        ),
        (
            r#"{"type":"join","ref":1,"room":"lobby","since":"1f.42"}"#,
            ClientMessage::Join {
                token: None,
                room: room("lobby"),
                since: Some(Position {
                    epoch: 0x1f,
                    offset: 42,
                }),
            },
        ),
        (
            r#"{"type":"leave","ref":1,"room":"lobby"}"#,
            ClientMessage::Leave {
                room: room("lobby"),
            },
        ),
        (
            r#"{"type":"publish","ref":1,"room":"lobby","data":{"text":"hi"}}"#,
            ClientMessage::Publish {
                room: room("lobby"),
                data: json(r#"{"text":"hi"}"#),
            },
        ),
        (
            r#"{"type":"typing","room":"lobby","typing":true}"#,
            ClientMessage::Typing {
                room: room("lobby"),
                typing: true,
            },
        ),
        (
            r#"{"type":"direct","ref":1,"to":"bob","data":[1,2]}"#,
            ClientMessage::Direct {
                to: user("bob"),
                data: json("[1,2]"),
            },
        ),
        (r#"{"type":"ping","ref":1}"#, ClientMessage::Ping),
    ];
    for (text, message) in cases {
        let envelope = decode(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(envelope.message, message, "{text}");
        // Encoding reads back the same.
        assert_eq!(decode(&envelope.encode()), Ok(envelope), "{text}");
    }
}

#[test]
fn refs_are_strings_or_non_negative_integers_echoed_unchanged() {
    assert_eq!(
        decode(r#"{"type":"ping","ref":7}"#).map(|e| e.reference),
        Ok(Some(Ref::Number(7)))
    );
    assert_eq!(
        decode(r#"{"type":"ping","ref":"a7"}"#).map(|e| e.reference),
        Ok(Some(Ref::from("a7")))
    );
    assert_eq!(decode(r#"{"type":"ping"}"#).map(|e| e.reference), Ok(None));
    let max = format!(r#"{{"type":"ping","ref":"{}"}}"#, "r".repeat(MAX_REF_LEN));
    assert!(decode(&max).is_ok());
    for bad in [
        format!(
            r#"{{"type":"ping","ref":"{}"}}"#,
            "r".repeat(MAX_REF_LEN + 1)
        ),
        r#"{"type":"ping","ref":-1}"#.to_owned(),
        r#"{"type":"ping","ref":1.5}"#.to_owned(),
        r#"{"type":"ping","ref":{"a":1}}"#.to_owned(),
    ] {
        assert_eq!(error(&bad), (ErrorCode::BadFrame, None), "{bad}");
    }
}

#[test]
fn frames_over_the_limit_are_too_large_unread() {
    let at_limit = r#"{"type":"ping","ref":"123456789"}"#;
    let codec = Codec::new().with_max_frame(at_limit.len());
    assert!(codec.decode_client(at_limit).is_ok());
    let over = r#"{"type":"ping","ref":"1234567890"}"#;
    let error = codec.decode_client(over).expect_err("too large");
    assert_eq!((error.code, error.reference), (ErrorCode::TooLarge, None));
    let message = format!(
        "frame of {} bytes is over the limit of {}",
        over.len(),
        at_limit.len()
    );
    assert_eq!(error.message, message);
}

#[test]
fn malformed_frames_are_bad_frames_with_the_ref_when_readable() {
    assert_eq!(error("not json"), (ErrorCode::BadFrame, None));
    assert_eq!(error(""), (ErrorCode::BadFrame, None));
    assert_eq!(error("[1,2]"), (ErrorCode::BadFrame, None));
    assert_eq!(
        error(r#"{"type":"ping","ref":1"#),
        (ErrorCode::BadFrame, None)
    );
    assert_eq!(
        error(r#"{"ref":1}"#),
        (ErrorCode::BadFrame, Some(Ref::Number(1)))
    );
    assert_eq!(
        error(r#"{"type":5,"ref":1}"#),
        (ErrorCode::BadFrame, Some(Ref::Number(1)))
    );
    assert_eq!(
        error(r#"{"type":"join","ref":2}"#),
        (ErrorCode::BadFrame, Some(Ref::Number(2)))
    );
    assert_eq!(
        error(r#"{"type":"join","ref":3,"room":5}"#),
        (ErrorCode::BadFrame, Some(Ref::Number(3)))
    );
    assert_eq!(
        error(r#"{"type":"join","ref":4,"room":"a b"}"#),
        (ErrorCode::BadFrame, Some(Ref::Number(4)))
    );
    assert_eq!(
        error(r#"{"type":"join","ref":5,"room":"a","since":"x"}"#),
        (ErrorCode::BadFrame, Some(Ref::Number(5)))
    );
    assert_eq!(
        error(r#"{"type":"publish","ref":6,"room":"a"}"#),
        (ErrorCode::BadFrame, Some(Ref::Number(6)))
    );
    assert_eq!(
        error(r#"{"type":"typing","ref":7,"room":"a","typing":"yes"}"#),
        (ErrorCode::BadFrame, Some(Ref::Number(7)))
    );
    assert_eq!(
        error(r#"{"type":"direct","ref":8,"to":"","data":1}"#),
        (ErrorCode::BadFrame, Some(Ref::Number(8)))
    );
    // A field given twice is ambiguous, so refused.
    assert_eq!(
        error(r#"{"type":"join","ref":9,"room":"a","room":"b"}"#),
        (ErrorCode::BadFrame, Some(Ref::Number(9)))
    );
}

#[test]
fn error_messages_name_the_fault() {
    let message = |text: &str| decode(text).expect_err("refused").message;
    assert_eq!(
        message(r#"{"type":"join","ref":2}"#),
        "join needs the field `room`"
    );
    assert_eq!(message(r#"{"ref":1}"#), "message needs the field `type`");
    assert_eq!(
        message(r#"{"type":"join","room":"a b"}"#),
        "`room` \"a b\" contains the character ' ', which is not allowed"
    );
    assert!(
        message("{").starts_with("frame is not valid JSON"),
        "{}",
        message("{")
    );
    assert!(
        message(r#"{"type":"join","room":5}"#)
            .starts_with("frame does not follow the protocol: invalid type: integer `5`")
    );
}

#[test]
fn unknown_types_are_answered_with_their_ref() {
    assert_eq!(
        error(r#"{"type":"dance","ref":1}"#),
        (ErrorCode::UnknownType, Some(Ref::Number(1)))
    );
    // Even when its fields would not fit a protocol message.
    assert_eq!(
        error(r#"{"type":"dance","ref":2,"room":[1]}"#),
        (ErrorCode::UnknownType, Some(Ref::Number(2)))
    );
    // Server message types are not client messages.
    assert_eq!(
        error(r#"{"type":"welcome"}"#),
        (ErrorCode::UnknownType, None)
    );
}

#[test]
fn unknown_fields_are_ignored_and_data_is_kept_verbatim() {
    let envelope =
        decode(r#"{"type":"publish","room":"a","data":{ "b" : [1, 2.50] },"extra":true}"#)
            .expect("valid");
    match envelope.message {
        ClientMessage::Publish { data, .. } => assert_eq!(data.as_json(), r#"{ "b" : [1, 2.50] }"#),
        other => panic!("{other:?}"),
    }
    let envelope = decode(r#"{"type":"publish","room":"a","data":null}"#).expect("null is data");
    assert!(
        matches!(envelope.message, ClientMessage::Publish { data, .. } if data.as_json() == "null")
    );
}

#[test]
fn application_types_are_delivered_whole() {
    let codec = Codec::new().with_app_type("reaction").expect("a free name");
    let text = r#"{"type":"reaction","ref":3,"room":["not","a","room"],"emoji":"+1"}"#;
    let envelope = codec.decode_client(text).expect("an app message");
    assert_eq!(envelope.reference, Some(Ref::Number(3)));
    let ClientMessage::App(app) = envelope.message else {
        panic!("not an app message")
    };
    assert_eq!((app.kind.as_str(), &*app.frame), ("reaction", text));
    #[derive(serde::Deserialize)]
    struct Reaction {
        emoji: String,
    }
    assert_eq!(app.parse::<Reaction>().expect("its own shape").emoji, "+1");
    // Without registration it is unknown.
    assert_eq!(error(text), (ErrorCode::UnknownType, Some(Ref::Number(3))));
}

#[test]
fn application_types_cannot_shadow_protocol_types() {
    assert!(Codec::new().with_app_type("join").is_err());
    assert!(Codec::new().with_app_type("").is_err());
    assert!(Codec::new().with_app_type("a b").is_err());
    assert!(Codec::new().with_app_type(&"x".repeat(65)).is_err());
    assert!(Codec::new().with_app_type("app.reaction:v2").is_ok());
}

#[test]
fn server_messages_have_an_exact_wire_form_and_read_back() {
    let id = Position {
        epoch: 0x1f,
        offset: 42,
    };
    let mut join = Reply::to(Ref::from("j1"));
    join.room = Some(room("lobby"));
    join.members = Some(vec![user("alice"), user("bob")]);
    join.id = Some(id);
    join.recovered = Some(true);
    join.replayed = Some(2);
    let mut direct = Reply::to(Ref::Number(4));
    direct.id = Some(id);
    direct.delivered = Some(false);
    let cases = [
        (
            ServerMessage::Welcome {
                session: "s1".into(),
                user: user("alice"),
                ping_interval_ms: 25000,
                ping_timeout_ms: 10000,
                max_frame: 65536,
            },
            r#"{"type":"welcome","protocol":1,"session":"s1","user":"alice","ping_interval_ms":25000,"ping_timeout_ms":10000,"max_frame":65536}"#,
        ),
        (
            ServerMessage::Reply(join),
            r#"{"type":"reply","ref":"j1","room":"lobby","members":["alice","bob"],"id":"1f.42","recovered":true,"replayed":2}"#,
        ),
        (
            ServerMessage::Reply(direct),
            r#"{"type":"reply","ref":4,"id":"1f.42","delivered":false}"#,
        ),
        (
            ServerMessage::Reply(Reply::to(Ref::Number(5))),
            r#"{"type":"reply","ref":5}"#,
        ),
        (
            ServerMessage::Error {
                reference: None,
                code: ErrorCode::RateLimited,
                message: "slow down".into(),
            },
            r#"{"type":"error","code":"rate_limited","message":"slow down"}"#,
        ),
        (
            ServerMessage::Message {
                event: None,
                room: room("lobby"),
                id,
                from: Some(user("alice")),
                data: json(r#"{"text":"hi"}"#),
            },
            r#"{"type":"message","room":"lobby","id":"1f.42","from":"alice","data":{"text":"hi"}}"#,
        ),
        (
            ServerMessage::Message {
                event: None,
                room: room("lobby"),
                id,
                from: None,
                data: json("1"),
            },
            r#"{"type":"message","room":"lobby","id":"1f.42","data":1}"#,
        ),
        (
            ServerMessage::Presence {
                room: room("lobby"),
                change: crate::envelope::PresenceChange::Diff {
                    joins: vec![user("bob")],
                    leaves: vec![],
                },
            },
            r#"{"type":"presence","room":"lobby","joins":["bob"],"leaves":[]}"#,
        ),
        (
            ServerMessage::Typing {
                room: room("lobby"),
                user: user("bob"),
                typing: false,
            },
            r#"{"type":"typing","room":"lobby","user":"bob","typing":false}"#,
        ),
        (
            ServerMessage::Direct {
                id,
                from: user("bob"),
                data: json(r#""hey""#),
            },
            r#"{"type":"direct","id":"1f.42","from":"bob","data":"hey"}"#,
        ),
        (
            ServerMessage::Notify {
                id,
                event: Some("invoice.paid".into()),
                data: json("{}"),
            },
            r#"{"type":"notify","id":"1f.42","event":"invoice.paid","data":{}}"#,
        ),
        (
            ServerMessage::Broadcast {
                id,
                event: None,
                data: json("null"),
            },
            r#"{"type":"broadcast","id":"1f.42","data":null}"#,
        ),
        (
            ServerMessage::Streams {
                streams: vec![
                    StreamStart {
                        stream: Stream::Room(room("lobby")),
                        id,
                        recovered: Some(true),
                        replayed: 2,
                        unread: None,
                    },
                    StreamStart {
                        stream: Stream::User,
                        id: Position {
                            epoch: 2,
                            offset: 0,
                        },
                        recovered: None,
                        replayed: 0,
                        unread: None,
                    },
                ],
            },
            r#"{"type":"streams","streams":[{"stream":"room:lobby","id":"1f.42","recovered":true,"replayed":2},{"stream":"user","id":"2.0","replayed":0}]}"#,
        ),
        (
            ServerMessage::Read {
                upto: id,
                unread: 3,
            },
            r#"{"type":"read","upto":"1f.42","unread":3}"#,
        ),
        (
            ServerMessage::Receipt {
                id: Position {
                    epoch: 2,
                    offset: 7,
                },
                from: user("bob"),
                upto: id,
            },
            r#"{"type":"receipt","id":"2.7","from":"bob","upto":"1f.42"}"#,
        ),
        (
            ServerMessage::Shutdown {
                reason: "restart".into(),
                reconnect_ms: 1500,
            },
            r#"{"type":"shutdown","reason":"restart","reconnect_ms":1500}"#,
        ),
    ];
    let codec = Codec::new();
    for (message, wire) in cases {
        let frame = message.encode();
        assert_eq!(frame.as_str(), wire);
        assert_eq!(&frame.to_bytes()[..], wire.as_bytes());
        assert_eq!(codec.decode_server(wire), Ok(message), "{wire}");
    }
}

#[test]
fn server_frames_with_faults_are_refused() {
    let codec = Codec::new();
    for bad in [
        r#"{"type":"welcome","protocol":2,"session":"s","user":"u","ping_interval_ms":1,"ping_timeout_ms":1,"max_frame":1}"#,
        r#"{"type":"error","code":"nope","message":"m"}"#,
        r#"{"type":"message","room":"a","data":1}"#,
        r#"{"type":"reply"}"#,
        r#"{"type":"gossip"}"#,
        r#"{"type":"receipt","id":"2.7","from":"bob"}"#,
        r#"{"type":"receipt","id":"2.7","upto":"1.1"}"#,
    ] {
        assert!(codec.decode_server(bad).is_err(), "{bad}");
    }
}

#[test]
fn an_error_reply_echoes_the_ref() {
    let error = decode(r#"{"type":"join","ref":"x"}"#).expect_err("no room");
    assert_eq!(
        error.to_frame().as_str(),
        r#"{"type":"error","ref":"x","code":"bad_frame","message":"join needs the field `room`"}"#
    );
}

#[test]
fn error_codes_read_back() {
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
    }
    assert_eq!(ErrorCode::from_wire("teapot"), None);
}

#[test]
fn error_messages_are_bounded_whatever_the_frame_holds() {
    // serde echoes a wrongly typed value; escaping would double it again in the reply.
    let frame = format!(
        r#"{{"type":"ping","ref":1,"typing":"{}"}}"#,
        "\\\"".repeat(16_000)
    );
    let error = decode(&frame).expect_err("typing is not a string");
    assert_eq!(error.reference, Some(Ref::Number(1)));
    assert!(
        error.message.len() <= MAX_ERROR_MESSAGE,
        "{}",
        error.message.len()
    );
    assert!(error.message.ends_with('…'));
    let reply = error.to_frame();
    assert!(reply.len() < 2 * MAX_ERROR_MESSAGE, "{}", reply.len());
    assert!(Codec::new().decode_server(reply.as_str()).is_ok());
}

#[test]
fn only_objects_are_frames() {
    // serde would read these arrays field by field, as a ping with ref "a" and a join.
    for text in [
        r#"["ping","a"]"#,
        r#"["join","j",null,"lobby"]"#,
        r#""ping""#,
        "7",
        "null",
        " [1]",
    ] {
        let error = decode(text).expect_err("not an object");
        assert_eq!(
            (error.code, error.reference),
            (ErrorCode::BadFrame, None),
            "{text}"
        );
    }
    assert_eq!(
        decode(r#"["ping"]"#).expect_err("array").message,
        "frame is not a JSON object"
    );
    let codec = Codec::new().with_app_type("reaction").expect("free");
    assert!(
        codec.decode_client(r#"["reaction",1]"#).is_err(),
        "not an app message either"
    );
    assert!(
        decode(" \n{\"type\":\"ping\"}").is_ok(),
        "JSON whitespace before the object is fine"
    );
}
