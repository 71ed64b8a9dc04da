use bytes::BytesMut;
use smol_str::SmolStr;

use super::*;
use crate::cursor::{Position, Stream};
use crate::envelope::{ErrorCode, Reply, ServerMessage};
use crate::names::UserId;

fn position(offset: u64) -> Position {
    Position { epoch: 1, offset }
}

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("a room")
}

/// Every event queued, in order.
fn events(bridge: &mut Bridge) -> Vec<BridgeEvent> {
    std::iter::from_fn(|| bridge.poll_event()).collect()
}

/// The requests among `events`, as JSON values.
fn requests(events: &[BridgeEvent]) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter_map(|e| match e {
            BridgeEvent::Request(text) => Some(serde_json::from_str(text).expect("JSON")),
            _ => None,
        })
        .collect()
}

/// The bytes sent among `events`, as text.
fn sent(events: &[BridgeEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            BridgeEvent::Send(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn deliver(bridge: &mut Bridge, delivery: &Delivery) -> String {
    let mut out = BytesMut::new();
    bridge.handle_delivery(delivery, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn welcome(user: &str) -> crate::delivery::Shared {
    Delivery::unstreamed(
        ServerMessage::Welcome {
            session: SmolStr::new("s1"),
            user: UserId::new(user).expect("a user"),
            ping_interval_ms: 25_000,
            ping_timeout_ms: 10_000,
            max_frame: 65_536,
        }
        .encode(),
    )
}

fn reply(reference: &str, edit: impl FnOnce(&mut Reply)) -> crate::delivery::Shared {
    let mut reply = Reply::to(Ref::from(reference));
    edit(&mut reply);
    Delivery::unstreamed(ServerMessage::Reply(reply).encode())
}

/// A bridge past `CONNECT` and `CONNECTED`, as `alice`.
fn open() -> Bridge {
    let mut bridge = Bridge::new(BridgeConfig::default());
    bridge.handle_bytes(b"CONNECT\naccept-version:1.2\nheart-beat:10000,10000\nhost:x\n\n\0");
    let _ = events(&mut bridge);
    let connected = deliver(&mut bridge, &welcome("alice"));
    assert!(connected.starts_with("CONNECTED\n"), "{connected}");
    bridge
}

#[test]
fn connect_is_answered_connected_once_the_session_is_welcomed() {
    let mut bridge = Bridge::new(BridgeConfig::default());
    assert_eq!(bridge.state(), BridgeState::AwaitingConnect);
    bridge.handle_bytes(
        b"CONNECT\naccept-version:1.1,1.2\nheart-beat:10000,5000\nhost:x\npasscode:tok:en\n\n\0",
    );
    assert_eq!(events(&mut bridge), [BridgeEvent::Alive]);
    assert_eq!(bridge.state(), BridgeState::Connecting);
    assert_eq!(bridge.version(), Version::V1_2);
    assert_eq!(
        bridge.credentials(),
        Some("tok:en"),
        "CONNECT is read literally"
    );
    let beats = bridge.heart_beats();
    assert_eq!(beats.send, Some(std::time::Duration::from_millis(25_000)));
    assert_eq!(
        beats.receive,
        Some(std::time::Duration::from_millis(25_000))
    );
    let connected = deliver(&mut bridge, &welcome("alice"));
    let server = BridgeConfig::default().server;
    assert_eq!(
        connected,
        format!(
            "CONNECTED\nversion:1.2\nsession:s1\nserver:{server}\nheart-beat:25000,25000\n\
             user-name:alice\n\n\0"
        )
    );
    assert_eq!(bridge.state(), BridgeState::Open);
    assert!(bridge.sends_heart_beats());
    assert_eq!(deliver(&mut bridge, &welcome("alice")), "", "once");
}

#[test]
fn a_welcome_before_connect_is_answered_when_connect_comes() {
    let mut bridge = Bridge::new(BridgeConfig::default());
    assert_eq!(deliver(&mut bridge, &welcome("alice")), "");
    bridge.handle_bytes(b"CONNECT\naccept-version:1.2\n\n\0");
    let text = sent(&events(&mut bridge));
    assert!(
        text.starts_with("CONNECTED\nversion:1.2\nsession:s1\n"),
        "{text}"
    );
    assert!(
        text.contains("heart-beat:25000,25000\nuser-name:alice\n"),
        "{text}"
    );
    assert_eq!(bridge.state(), BridgeState::Open);
}

#[test]
fn a_bearer_token_in_connect_is_the_credential_too() {
    let mut bridge = Bridge::new(BridgeConfig::default());
    bridge.handle_bytes(b"STOMP\naccept-version:1.2\nhost:x\nAuthorization:Bearer abc\n\n\0");
    assert_eq!(bridge.credentials(), Some("abc"));
    assert!(!bridge.sends_heart_beats(), "no heart-beat header: none");
}

#[test]
fn anything_but_connect_first_and_an_unknown_version_are_errors() {
    for input in [
        &b"SEND\ndestination:/topic/a\n\nx\0"[..],
        b"CONNECT\naccept-version:2.0\n\n\0",
        b"CONNECT\naccept-version:1.2\nheart-beat:soon\n\n\0",
        b"NONSENSE\n\n\0",
    ] {
        let mut bridge = Bridge::new(BridgeConfig::default());
        bridge.handle_bytes(input);
        let events = events(&mut bridge);
        assert!(sent(&events).starts_with("ERROR\n"), "{events:?}");
        assert_eq!(events.last(), Some(&BridgeEvent::Close));
        assert_eq!(bridge.state(), BridgeState::Closed);
        bridge.handle_bytes(b"CONNECT\naccept-version:1.2\n\n\0");
        assert_eq!(bridge.poll_event(), None, "nothing after the end");
    }
}

#[test]
fn connect_without_accept_version_speaks_1_0() {
    let mut bridge = Bridge::new(BridgeConfig::default());
    bridge.handle_bytes(b"CONNECT\nlogin:a\n\n\0");
    assert_eq!(bridge.version(), Version::V1_0);
}

#[test]
fn a_room_is_joined_by_its_first_subscription_and_left_by_its_last() {
    let mut bridge = open();
    bridge.handle_bytes(b"SUBSCRIBE\nid:sub-0\ndestination:/topic/lobby\nreceipt:r1\n\n\0");
    let first = events(&mut bridge);
    assert_eq!(
        requests(&first),
        [serde_json::json!({"type":"join","ref":"stomp-1","room":"lobby"})]
    );
    bridge
        .handle_bytes(b"SUBSCRIBE\nid:sub-1\ndestination:/topic/lobby.presence\nreceipt:r2\n\n\0");
    let second = events(&mut bridge);
    assert!(requests(&second).is_empty(), "joined already");
    assert_eq!(sent(&second), "RECEIPT\nreceipt-id:r2\n\n\0");
    let answered = deliver(&mut bridge, &reply("stomp-1", |r| r.id = Some(position(4))));
    assert_eq!(answered, "RECEIPT\nreceipt-id:r1\nx-roomcast-id:1.4\n\n\0");

    bridge.handle_bytes(b"UNSUBSCRIBE\nid:sub-0\n\n\0");
    assert!(
        requests(&events(&mut bridge)).is_empty(),
        "presence still follows it"
    );
    bridge.handle_bytes(b"UNSUBSCRIBE\nid:sub-1\nreceipt:r3\n\n\0");
    assert_eq!(
        requests(&events(&mut bridge)),
        [serde_json::json!({"type":"leave","ref":"stomp-2","room":"lobby"})]
    );
    assert_eq!(
        deliver(&mut bridge, &reply("stomp-2", |_| {})),
        "RECEIPT\nreceipt-id:r3\n\n\0"
    );
    assert_eq!(bridge.subscriptions(), 0);
}

#[test]
fn a_room_message_is_encoded_once_for_every_stomp_subscriber() {
    let (mut alice, mut bob) = (open(), open());
    alice.handle_bytes(b"SUBSCRIBE\nid:a\ndestination:/topic/chat:1\n\n\0");
    bob.handle_bytes(b"SUBSCRIBE\nid:b\ndestination:/topic/chat:1\nack:client\n\n\0");
    bob.handle_bytes(b"SUBSCRIBE\nid:b2\ndestination:/topic/chat:1\n\n\0");
    let data = crate::envelope::Payload::from_json(r#"{"text":"hi"}"#).expect("JSON");
    let frame = ServerMessage::Message {
        room: room("chat:1"),
        id: position(7),
        from: Some(UserId::new("carol").expect("a user")),
        event: None,
        data,
    }
    .encode();
    let delivery = Delivery::streamed(frame, Stream::Room(room("chat:1")), position(7));
    let shared = "destination:/topic/chat\\c1\ncontent-type:application/json\n\
                  x-roomcast-from:carol\ncontent-length:13\n\n{\"text\":\"hi\"}\0";
    assert_eq!(
        deliver(&mut alice, &delivery),
        format!("MESSAGE\nsubscription:a\nmessage-id:1.7\n{shared}")
    );
    let first = delivery.encoding(2, |_| None).expect("kept").as_ptr();
    assert_eq!(
        deliver(&mut bob, &delivery),
        format!(
            "MESSAGE\nsubscription:b\nmessage-id:1.7\nack:1.7\n{shared}\
             MESSAGE\nsubscription:b2\nmessage-id:1.7\n{shared}"
        )
    );
    assert_eq!(
        delivery
            .encoding(2, |_| unreachable!("encoded once"))
            .expect("kept")
            .as_ptr(),
        first
    );
    let mut carol = open();
    assert_eq!(
        deliver(&mut carol, &delivery),
        "",
        "no subscription: nothing"
    );
}

#[test]
fn send_publishes_json_as_it_is_and_other_text_as_a_string() {
    let mut bridge = open();
    bridge.handle_bytes(b"SEND\ndestination:/topic/lobby\n\n{\"n\":1}\0");
    bridge.handle_bytes(b"SEND\ndestination:/app/lobby\ncontent-type:text/plain\n\n42\0");
    bridge.handle_bytes(b"SEND\ndestination:/user/bob/queue/messages\n\nhello\0");
    assert_eq!(
        requests(&events(&mut bridge)),
        [
            serde_json::json!({"type":"publish","ref":"stomp-1","room":"lobby","data":{"n":1}}),
            serde_json::json!({"type":"publish","ref":"stomp-2","room":"lobby","data":"42"}),
            serde_json::json!({"type":"direct","ref":"stomp-3","to":"bob","data":"hello"}),
        ]
    );
}

#[test]
fn what_roomcast_does_not_do_is_refused_with_an_error_that_says_so() {
    for (input, says) in [
        (
            &b"SEND\ndestination:/queue/jobs\n\nx\0"[..],
            "competing consumers",
        ),
        (
            b"SUBSCRIBE\nid:q\ndestination:/queue/jobs\n\n\0",
            "competing consumers",
        ),
        (b"BEGIN\ntransaction:t1\n\n\0", "transactions"),
        (
            b"SEND\ndestination:/topic/a\ntransaction:t1\n\nx\0",
            "transactions",
        ),
        (
            b"SEND\ndestination:/topic/a\ncontent-type:application/json\n\n{x\0",
            "not JSON",
        ),
        (b"SUBSCRIBE\ndestination:/topic/a\n\n\0", "needs `id`"),
        (
            b"SUBSCRIBE\nid:a\ndestination:/topic/a\nack:sometimes\n\n\0",
            "ack",
        ),
        (
            b"SUBSCRIBE\nid:a\ndestination:/elsewhere\n\n\0",
            "not a destination",
        ),
        (b"UNSUBSCRIBE\nid:nope\nreceipt:r9\n\n\0", "receipt-id:r9"),
        (b"CONNECT\naccept-version:1.2\n\n\0", "already connected"),
        (
            b"MESSAGE\ndestination:/topic/a\nmessage-id:1\nsubscription:a\n\n\0",
            "server sends",
        ),
    ] {
        let mut bridge = open();
        bridge.handle_bytes(input);
        let events = events(&mut bridge);
        let text = sent(&events);
        assert!(text.starts_with("ERROR\n") && text.contains(says), "{text}");
        assert_eq!(events.last(), Some(&BridgeEvent::Close), "{text}");
        assert!(requests(&events).is_empty());
    }
}

#[test]
fn a_refused_request_is_an_error_with_its_receipt_then_the_end() {
    let mut bridge = open();
    bridge.handle_bytes(b"SEND\ndestination:/topic/lobby\nreceipt:r1\n\nx\0");
    let _ = events(&mut bridge);
    let refusal = ServerMessage::Error {
        reference: Some(Ref::from("stomp-1")),
        code: ErrorCode::NotMember,
        message: "not in room lobby".into(),
    };
    let out = deliver(&mut bridge, &Delivery::unstreamed(refusal.encode()));
    assert!(out.is_empty(), "the ERROR goes as an event: {out}");
    let events = events(&mut bridge);
    let text = sent(&events);
    assert!(
        text.starts_with("ERROR\nmessage:not_member\ncontent-type:text/plain\nreceipt-id:r1\n"),
        "{text}"
    );
    assert!(text.contains("not in room lobby"));
    assert_eq!(events.last(), Some(&BridgeEvent::Close));
}

#[test]
fn a_resumed_subscription_says_first_whether_it_resumed_whole() {
    let mut bridge = open();
    bridge.handle_bytes(b"SUBSCRIBE\nid:s\ndestination:/topic/lobby\nx-roomcast-since:1.5\n\n\0");
    assert_eq!(
        requests(&events(&mut bridge)),
        [serde_json::json!({"type":"join","ref":"stomp-1","room":"lobby","since":"1.5"})]
    );
    let out = deliver(
        &mut bridge,
        &reply("stomp-1", |r| {
            r.id = Some(position(9));
            r.recovered = Some(false);
            r.replayed = Some(0);
        }),
    );
    assert_eq!(
        out,
        "MESSAGE\nsubscription:s\nmessage-id:resume-1\ndestination:/topic/lobby\n\
         content-type:application/json\nx-roomcast-id:1.9\nx-roomcast-recovered:false\n\
         x-roomcast-replayed:0\n\
         content-length:32\n\n{\"recovered\":false,\"replayed\":0}\0"
    );
    bridge.handle_bytes(b"SUBSCRIBE\nid:t\ndestination:/topic/x\nx-roomcast-since:soon\n\n\0");
    assert!(sent(&events(&mut bridge)).contains("not a message id"));
}

#[test]
fn disconnect_is_answered_after_every_earlier_receipt() {
    let mut bridge = open();
    bridge.handle_bytes(
        b"SEND\ndestination:/topic/lobby\nreceipt:r1\n\nx\0DISCONNECT\nreceipt:r2\n\n\0",
    );
    let early = events(&mut bridge);
    assert_eq!(sent(&early), "", "the SEND is not stored yet");
    assert_eq!(bridge.state(), BridgeState::Disconnecting);
    let out = deliver(&mut bridge, &reply("stomp-1", |r| r.id = Some(position(3))));
    assert_eq!(out, "RECEIPT\nreceipt-id:r1\nx-roomcast-id:1.3\n\n\0");
    let late = events(&mut bridge);
    assert_eq!(sent(&late), "RECEIPT\nreceipt-id:r2\n\n\0");
    assert_eq!(late.last(), Some(&BridgeEvent::Close));
    assert_eq!(bridge.state(), BridgeState::Closed);
}

#[test]
fn the_outbox_goes_to_user_queues_and_a_client_ack_marks_it_read() {
    let mut bridge = open();
    bridge
        .handle_bytes(b"SUBSCRIBE\nid:n\ndestination:/user/queue/notifications\nack:client\n\n\0");
    assert!(
        requests(&events(&mut bridge)).is_empty(),
        "the outbox is followed already"
    );
    let data = crate::envelope::Payload::from_json(r#""psst""#).expect("JSON");
    let direct = ServerMessage::Direct {
        id: position(3),
        from: UserId::new("bob").expect("a user"),
        data,
    };
    let out = deliver(
        &mut bridge,
        &Delivery::streamed(direct.encode(), Stream::User, position(3)),
    );
    assert_eq!(
        out,
        "MESSAGE\nsubscription:n\nmessage-id:1.3\nack:outbox\\c1.3\n\
         destination:/user/queue/notifications\ncontent-type:application/json\n\
         x-roomcast-from:bob\ncontent-length:6\n\n\"psst\"\0"
    );
    bridge.handle_bytes(b"ACK\nid:outbox\\c1.3\n\n\0NACK\nid:outbox\\c1.4\nreceipt:r\n\n\0");
    let events = events(&mut bridge);
    assert_eq!(
        requests(&events),
        [serde_json::json!({"type":"read","ref":"stomp-1","upto":"1.3"})]
    );
    assert_eq!(
        sent(&events),
        "RECEIPT\nreceipt-id:r\n\n\0",
        "NACK changes nothing"
    );
}

#[test]
fn presence_goes_to_presence_subscriptions_with_an_id_of_its_own() {
    let mut bridge = open();
    bridge.handle_bytes(b"SUBSCRIBE\nid:p\ndestination:/topic/lobby.presence\n\n\0");
    let presence = ServerMessage::Presence {
        room: room("lobby"),
        change: crate::envelope::PresenceChange::Diff {
            joins: vec![UserId::new("bob").expect("a user")],
            leaves: vec![],
        },
    };
    let out = deliver(&mut bridge, &Delivery::unstreamed(presence.encode()));
    assert!(
        out.starts_with(
            "MESSAGE\nsubscription:p\nmessage-id:p1\ndestination:/topic/lobby.presence\n"
        ),
        "{out}"
    );
    assert!(
        out.ends_with(
            "{\"type\":\"presence\",\"room\":\"lobby\",\"joins\":[\"bob\"],\"leaves\":[]}\0"
        ),
        "{out}"
    );
}

#[test]
fn heart_beats_and_frames_are_signs_of_life() {
    let mut bridge = open();
    bridge.handle_bytes(b"\n");
    assert_eq!(events(&mut bridge), [BridgeEvent::Alive]);
    bridge.handle_bytes(b"\r\n\n");
    assert_eq!(events(&mut bridge), [BridgeEvent::Alive]);
}

#[test]
fn subscriptions_and_requests_in_flight_are_bounded() {
    let config = BridgeConfig {
        max_subscriptions: 2,
        max_pending: 1,
        ..BridgeConfig::default()
    };
    let mut bridge = Bridge::new(config.clone());
    bridge.handle_bytes(b"CONNECT\naccept-version:1.2\n\n\0");
    let _ = deliver(&mut bridge, &welcome("alice"));
    bridge.handle_bytes(b"SUBSCRIBE\nid:a\ndestination:/user/queue/x\n\n\0");
    bridge.handle_bytes(b"SUBSCRIBE\nid:b\ndestination:/user/queue/y\n\n\0");
    bridge.handle_bytes(b"SUBSCRIBE\nid:c\ndestination:/user/queue/z\n\n\0");
    assert!(sent(&events(&mut bridge)).contains("at most 2 per connection"));

    let mut bridge = Bridge::new(config);
    bridge.handle_bytes(b"CONNECT\naccept-version:1.2\n\n\0");
    let _ = deliver(&mut bridge, &welcome("alice"));
    bridge.handle_bytes(b"SEND\ndestination:/topic/a\n\n1\0SEND\ndestination:/topic/a\n\n2\0");
    let events = events(&mut bridge);
    assert_eq!(requests(&events).len(), 1);
    assert!(sent(&events).contains("more than 1 requests awaiting"));
}

fn direct(offset: u64, text: &str) -> crate::delivery::Shared {
    let data = crate::envelope::Payload::from_value(text).expect("JSON");
    let direct = ServerMessage::Direct {
        id: position(offset),
        from: UserId::new("bob").expect("a user"),
        data,
    };
    Delivery::streamed(direct.encode(), Stream::User, position(offset))
}

#[test]
fn the_outbox_before_any_user_queue_is_kept_for_the_first_one_bounded() {
    let mut bridge = Bridge::new(BridgeConfig {
        max_held: 2,
        ..BridgeConfig::default()
    });
    bridge.handle_bytes(b"CONNECT\naccept-version:1.2\n\n\0");
    let _ = deliver(&mut bridge, &welcome("alice"));
    // The unread outbox comes right after the welcome, before any SUBSCRIBE.
    for (offset, text) in [(1, "one"), (2, "two"), (3, "three")] {
        assert_eq!(deliver(&mut bridge, &direct(offset, text)), "", "kept");
    }
    let _ = events(&mut bridge);
    bridge.handle_bytes(b"SUBSCRIBE\nid:q\ndestination:/user/queue/inbox\n\n\0");
    let text = sent(&events(&mut bridge));
    assert!(
        !text.contains("\"one\""),
        "the oldest went past the bound: {text}"
    );
    let two = text.find("\"two\"").expect("two");
    let three = text.find("\"three\"").expect("three");
    assert!(two < three, "in order: {text}");
    assert_eq!(
        text.matches("x-roomcast-recovered:false").count(),
        1,
        "the first says some were dropped: {text}"
    );
    assert!(
        text.starts_with("MESSAGE\nsubscription:q\nmessage-id:1.2\n"),
        "{text}"
    );
    bridge.handle_bytes(b"SUBSCRIBE\nid:r\ndestination:/user/queue/other\n\n\0");
    assert_eq!(sent(&events(&mut bridge)), "", "given once");
}

#[test]
fn a_resume_on_a_room_already_followed_is_refused_not_ignored() {
    let mut bridge = open();
    bridge.handle_bytes(b"SUBSCRIBE\nid:p\ndestination:/topic/lobby.presence\n\n\0");
    let _ = events(&mut bridge);
    bridge.handle_bytes(b"SUBSCRIBE\nid:s\ndestination:/topic/lobby\nx-roomcast-since:1.5\n\n\0");
    let text = sent(&events(&mut bridge));
    assert!(text.starts_with("ERROR\nmessage:cannot resume\n"), "{text}");
}

#[test]
fn stomp_1_1_acknowledges_the_outbox_by_message_id_and_subscription() {
    let mut bridge = Bridge::new(BridgeConfig::default());
    bridge.handle_bytes(b"CONNECT\naccept-version:1.1\n\n\0");
    let _ = deliver(&mut bridge, &welcome("alice"));
    bridge.handle_bytes(b"SUBSCRIBE\nid:n\ndestination:/user/queue/x\nack:client\n\n\0");
    bridge.handle_bytes(b"SUBSCRIBE\nid:r\ndestination:/topic/lobby\nack:client\n\n\0");
    let _ = events(&mut bridge);
    bridge.handle_bytes(b"ACK\nsubscription:r\nmessage-id:1.3\n\n\0");
    assert!(
        requests(&events(&mut bridge)).is_empty(),
        "a room's ACK changes nothing"
    );
    bridge.handle_bytes(b"ACK\nsubscription:n\nmessage-id:1.3\n\n\0");
    assert_eq!(
        requests(&events(&mut bridge)),
        [serde_json::json!({"type":"read","ref":"stomp-2","upto":"1.3"})]
    );
}

#[test]
fn a_send_too_large_for_the_session_is_an_error_with_its_receipt() {
    let mut bridge = Bridge::new(BridgeConfig {
        max_request: 100,
        ..BridgeConfig::default()
    });
    bridge.handle_bytes(b"CONNECT\naccept-version:1.2\n\n\0");
    let _ = deliver(&mut bridge, &welcome("alice"));
    let body = "x".repeat(90);
    let frame = format!("SEND\ndestination:/topic/lobby\nreceipt:big\n\n{body}\0");
    bridge.handle_bytes(frame.as_bytes());
    let events = events(&mut bridge);
    assert!(requests(&events).is_empty());
    let text = sent(&events);
    assert!(
        text.starts_with(
            "ERROR\nmessage:frame too large\ncontent-type:text/plain\nreceipt-id:big\n"
        ),
        "{text}"
    );
}

#[test]
fn stomp_1_0_unsubscribes_by_destination() {
    let mut bridge = Bridge::new(BridgeConfig::default());
    bridge.handle_bytes(b"CONNECT\n\n\0");
    let _ = deliver(&mut bridge, &welcome("alice"));
    bridge.handle_bytes(b"SUBSCRIBE\nid:7\ndestination:/topic/lobby\n\n\0");
    let _ = events(&mut bridge);
    bridge.handle_bytes(b"UNSUBSCRIBE\ndestination:/topic/lobby\n\n\0");
    assert_eq!(
        requests(&events(&mut bridge)),
        [serde_json::json!({"type":"leave","ref":"stomp-2","room":"lobby"})]
    );
}

#[test]
fn one_failure_is_one_error() {
    let (mut bridge, _) = (open(), ());
    bridge.handle_bytes(b"SUBSCRIBE\nid:a\ndestination:/topic/lobby\n\n\0");
    let _ = events(&mut bridge);
    for _ in 0..2 {
        let refusal = ServerMessage::Error {
            reference: None,
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
        };
        let _ = deliver(&mut bridge, &Delivery::unstreamed(refusal.encode()));
    }
    let events = events(&mut bridge);
    assert_eq!(sent(&events).matches("ERROR\n").count(), 1, "{events:?}");
    assert_eq!(
        events.iter().filter(|e| **e == BridgeEvent::Close).count(),
        1
    );
}
