//! The namespaces' policies as the hub applies them: joins, an SSE stream's rooms, publishes,
//! typing, presence and history, for every transport alike.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use smol_str::SmolStr;

use super::*;
use crate::access::{Grants, JoinRule, Namespace, Namespaces, PublishRule};
use crate::harness::Harness;
use crate::session::SessionKind;

fn namespaces() -> Namespaces {
    let private = Namespace {
        join: JoinRule {
            claim: true,
            token: true,
            ..JoinRule::default()
        },
        ..Namespace::default()
    };
    let news = Namespace {
        publish: PublishRule::Api,
        presence: false,
        typing: false,
        history: Some(HistoryLimit {
            max_messages: 2,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(60),
        }),
        ..Namespace::default()
    };
    let team = Namespace {
        publish: PublishRule::Claim,
        ..Namespace::default()
    };
    Namespaces::default()
        .with("private", private)
        .and_then(|n| n.with("news", news))
        .and_then(|n| n.with("team", team))
        .expect("valid")
}

fn harness() -> Harness {
    let config = HubConfig {
        namespaces: Arc::new(namespaces()),
        ..HubConfig::default()
    };
    Harness::new(Hub::new(config), crate::testing::start())
}

fn grants(rooms: &[&str], publish: &[&str]) -> Access {
    Access {
        grants: Arc::new(Grants {
            rooms: rooms.iter().map(SmolStr::new).collect(),
            publish: publish.iter().map(SmolStr::new).collect(),
        }),
        admitted: Vec::new(),
    }
}

fn connect(
    h: &mut Harness,
    user: &str,
    rooms: &[&str],
    access: Access,
) -> Result<SessionId, HubError> {
    let connect = Connect {
        user: UserId::new(user).expect("valid"),
        broadcast: false,
        rooms: rooms
            .iter()
            .map(|r| RoomName::new(r).expect("valid"))
            .collect(),
        cursor: None,
        access,
    };
    let session = h.connect(SessionKind::WebSocket, connect)?;
    h.take_json(session);
    Ok(session)
}

fn send(h: &mut Harness, session: SessionId, frame: Value) -> Vec<Value> {
    h.handle_text(session, &frame.to_string())
        .expect("websocket");
    h.take_json(session)
}

fn error_code(answers: &[Value]) -> Option<&str> {
    answers
        .iter()
        .find(|a| a["type"] == "error")
        .and_then(|a| a["code"].as_str())
}

#[test]
fn a_private_room_is_closed_to_a_user_without_a_claim_on_every_path() {
    let mut h = harness();
    let alice = connect(&mut h, "alice", &[], grants(&["private:alice-*"], &[])).expect("alice");
    let joined = send(
        &mut h,
        alice,
        json!({"type":"join","ref":1,"room":"private:alice-bob"}),
    );
    assert_eq!(joined[0]["type"], "reply", "{joined:?}");
    let said = send(
        &mut h,
        alice,
        json!({"type":"publish","ref":2,"room":"private:alice-bob","data":"our secret plan"}),
    );
    assert_eq!(said[0]["type"], "reply", "{said:?}");
    let epoch = said[0]["id"]
        .as_str()
        .expect("id")
        .split('.')
        .next()
        .expect("epoch");

    // mallory, by join with since (the resume that replayed the secrets)...
    let mallory = connect(&mut h, "mallory", &[], Access::default()).expect("mallory");
    let since = format!("{epoch}.0");
    let answers = send(
        &mut h,
        mallory,
        json!({"type":"join","ref":1,"room":"private:alice-bob","since":since}),
    );
    assert_eq!(error_code(&answers), Some("unauthorized"), "{answers:?}");
    assert!(
        !answers.iter().any(|a| a["type"] == "message"),
        "nothing of the room reaches her: {answers:?}"
    );
    assert!(h.hub().rooms_of(mallory).is_empty());
    // ... or by a stream's rooms (SSE `?rooms=`, long-poll).
    let refused = connect(
        &mut h,
        "mallory",
        &["lobby", "private:alice-bob"],
        Access::default(),
    );
    assert!(
        matches!(refused, Err(HubError::Unauthorized(_))),
        "{refused:?}"
    );
}

#[test]
fn a_subscription_token_admits_one_join() {
    let mut h = harness();
    let bob = connect(&mut h, "bob", &[], Access::default()).expect("bob");
    let room = RoomName::new("private:alice-bob").expect("valid");
    h.feed_hub(|hub, _| hub.admit(bob, room.clone()));
    let joined = send(
        &mut h,
        bob,
        json!({"type":"join","ref":1,"room":"private:alice-bob"}),
    );
    assert_eq!(joined[0]["type"], "reply", "{joined:?}");
    let left = send(
        &mut h,
        bob,
        json!({"type":"leave","ref":2,"room":"private:alice-bob"}),
    );
    assert_eq!(left[0]["type"], "reply");
    let again = send(
        &mut h,
        bob,
        json!({"type":"join","ref":3,"room":"private:alice-bob"}),
    );
    assert_eq!(error_code(&again), Some("unauthorized"), "spent: {again:?}");

    // An SSE stream's rooms, admitted by tokens checked at the handshake.
    let access = Access {
        admitted: vec![room.clone()],
        ..Access::default()
    };
    let stream = connect(&mut h, "bob", &["private:alice-bob"], access).expect("admitted");
    assert_eq!(h.hub().rooms_of(stream), vec![room]);
}

#[test]
fn rooms_of_unknown_namespaces_do_not_exist() {
    let mut h = harness();
    let alice = connect(&mut h, "alice", &[], grants(&["*"], &["*"])).expect("alice");
    let answers = send(
        &mut h,
        alice,
        json!({"type":"join","ref":1,"room":"nowhere:x"}),
    );
    assert_eq!(error_code(&answers), Some("unauthorized"), "{answers:?}");
    let room = RoomName::new("nowhere:x").expect("valid");
    let data = Payload::from_json("1").expect("json");
    let ticket = h.feed_hub(|hub, now| hub.publish(now, room, data));
    assert!(matches!(
        h.poll_hub_event(),
        Some(HubEvent::Done { ticket: t, result: Err(HubError::Unauthorized(_)) }) if t == ticket
    ));
}

#[test]
fn publishing_follows_the_namespace() {
    let mut h = harness();
    let writer = connect(
        &mut h,
        "w",
        &["team:a", "news:today"],
        grants(&[], &["team:*"]),
    )
    .expect("writer");
    let reader =
        connect(&mut h, "r", &["team:a", "news:today"], Access::default()).expect("reader");
    let ok = send(
        &mut h,
        writer,
        json!({"type":"publish","ref":1,"room":"team:a","data":1}),
    );
    assert!(ok.iter().any(|a| a["type"] == "reply"), "{ok:?}");
    let no = send(
        &mut h,
        reader,
        json!({"type":"publish","ref":1,"room":"team:a","data":1}),
    );
    assert_eq!(error_code(&no), Some("unauthorized"), "{no:?}");
    let no = send(
        &mut h,
        writer,
        json!({"type":"publish","ref":2,"room":"news:today","data":1}),
    );
    assert_eq!(error_code(&no), Some("unauthorized"), "api only: {no:?}");
    let room = RoomName::new("news:today").expect("valid");
    let data = Payload::from_json("\"headline\"").expect("json");
    h.feed_hub(|hub, now| hub.publish(now, room, data));
    assert!(matches!(
        h.poll_hub_event(),
        Some(HubEvent::Done { result: Ok(_), .. })
    ));
    let got = h.take_json(reader);
    assert!(
        got.iter()
            .any(|m| m["type"] == "message" && m["data"] == "headline"),
        "{got:?}"
    );
}

#[test]
fn presence_typing_and_history_follow_the_namespace() {
    let mut h = harness();
    let a = connect(&mut h, "a", &[], Access::default()).expect("a");
    let b = connect(&mut h, "b", &[], Access::default()).expect("b");
    send(&mut h, a, json!({"type":"join","ref":1,"room":"news:x"}));
    let joined = send(&mut h, b, json!({"type":"join","ref":1,"room":"news:x"}));
    assert_eq!(
        joined[0]["members"],
        json!([]),
        "presence is off: {joined:?}"
    );
    assert!(
        !h.take_json(a).iter().any(|m| m["type"] == "presence"),
        "no presence diff where presence is off"
    );
    let typing = send(
        &mut h,
        a,
        json!({"type":"typing","ref":2,"room":"news:x","typing":true}),
    );
    assert_eq!(error_code(&typing), Some("unauthorized"), "{typing:?}");
    assert!(h.take_json(b).is_empty());

    // The namespace keeps 2 messages: a resume from the start is not whole, one from the first
    // message is.
    let room = RoomName::new("news:x").expect("valid");
    for n in 0..3 {
        let data = Payload::from_json(&n.to_string()).expect("json");
        h.feed_hub(|hub, now| hub.publish(now, room.clone(), data));
    }
    let got = h.take_json(b);
    let epoch = got[0]["id"]
        .as_str()
        .expect("id")
        .split('.')
        .next()
        .expect("epoch")
        .to_owned();
    let c = connect(&mut h, "c", &[], Access::default()).expect("c");
    let since = format!("{epoch}.0");
    let answers = send(
        &mut h,
        c,
        json!({"type":"join","ref":1,"room":"news:x","since":since}),
    );
    assert_eq!(answers[0]["recovered"], false, "{answers:?}");
    send(&mut h, c, json!({"type":"leave","ref":2,"room":"news:x"}));
    let since = format!("{epoch}.1");
    let answers = send(
        &mut h,
        c,
        json!({"type":"join","ref":3,"room":"news:x","since":since}),
    );
    assert_eq!(answers[0]["recovered"], true, "{answers:?}");
    assert_eq!(answers[0]["replayed"], 2, "{answers:?}");

    // The default namespace keeps presence and typing.
    send(&mut h, a, json!({"type":"join","ref":3,"room":"lobby"}));
    let joined = send(&mut h, b, json!({"type":"join","ref":4,"room":"lobby"}));
    assert_eq!(joined[0]["members"], json!(["a", "b"]));
    h.advance(Duration::from_millis(1));
    assert!(h.take_json(a).iter().any(|m| m["type"] == "presence"));
}
