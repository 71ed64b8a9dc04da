//! One test per hub rule, driven through its public API with JSON frames; the invariants are
//! checked after every step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::engine::{MemoryEngine, MemoryLimits, MemoryStats};
use crate::envelope::Codec;
use crate::harness::Harness;
use crate::session::{self, SessionKind};

/// The hub, its sessions and the clock ([`Harness`]), with the hub's invariants checked after
/// every step.
struct World {
    h: Harness,
}

impl World {
    fn new() -> Self {
        Self::with(HubConfig::default())
    }

    fn with(config: HubConfig) -> Self {
        Self::with_limits(config, MemoryLimits::default())
    }

    fn with_limits(config: HubConfig, limits: MemoryLimits) -> Self {
        let engine = MemoryEngine::new(limits, 7);
        Self {
            h: Harness::with_engine(Hub::new(config), engine, crate::testing::start()),
        }
    }

    /// What the engine holds.
    fn stored(&self) -> MemoryStats {
        self.h.engine().stats()
    }

    fn now(&self) -> Instant {
        self.h.now()
    }

    fn hub(&self) -> &Hub {
        self.h.hub()
    }

    fn connect(&mut self, user: &str) -> SessionId {
        self.connect_with(user, false, &[], None)
    }

    /// A WebSocket session of `user`, its `welcome` taken: what it transmits next is the hub's.
    fn connect_with(
        &mut self,
        user: &str,
        broadcast: bool,
        rooms: &[&str],
        cursor: Option<&str>,
    ) -> SessionId {
        let connect = Connect {
            access: Default::default(),
            user: UserId::new(user).expect("valid user"),
            broadcast,
            rooms: rooms
                .iter()
                .map(|r| RoomName::new(r).expect("valid room"))
                .collect(),
            cursor: cursor.map(|c| c.parse().expect("valid cursor")),
        };
        let session = self
            .h
            .connect(SessionKind::WebSocket, connect)
            .expect("connects");
        let welcome = self.h.poll_transmit(session);
        assert!(
            matches!(&welcome, Some(session::Transmit::Frame(d)) if d.frame.as_str().starts_with(r#"{"type":"welcome""#)),
            "{welcome:?}"
        );
        self.check();
        session
    }

    /// A frame from the client of `session`, through its session to the hub.
    fn send(&mut self, session: SessionId, frame: Value) {
        self.h
            .handle_text(session, &frame.to_string())
            .expect("a WebSocket session takes frames");
        self.check();
    }

    /// A command to the hub (a server-side publish, a notification, ...), and its result.
    fn command(
        &mut self,
        command: impl FnOnce(&mut Hub, Instant) -> Ticket,
    ) -> Result<Published, HubError> {
        let ticket = self.h.feed_hub(command);
        self.check();
        match self.h.poll_hub_event() {
            Some(HubEvent::Done {
                ticket: done,
                result,
            }) if done == ticket => result,
            other => panic!("no result for {ticket:?}: {other:?}"),
        }
    }

    /// The connection of `session` is gone: the hub lets go of it, and what it had not sent is
    /// lost.
    fn drop_connection(&mut self, session: SessionId) {
        self.h.remove(session);
        self.check();
    }

    fn advance(&mut self, by: Duration) {
        self.h.advance(by);
        self.check();
    }

    /// Lets the presence changes waiting for a room's window go out.
    fn past_window(&mut self) {
        self.advance(self.hub().config().presence_window);
    }

    fn check(&self) {
        if let Err(broken) = self.hub().check_invariants() {
            panic!("invariant broken: {broken}");
        }
        assert_eq!(self.h.strays(), 0, "deliveries to sessions not in the hub");
    }

    /// Everything delivered to `session` since the last call, as JSON.
    fn take(&mut self, session: SessionId) -> Vec<Value> {
        self.h.take_json(session)
    }

    fn take_shared(&mut self, session: SessionId) -> Vec<Shared> {
        self.h.take_frames(session)
    }

    fn types(&mut self, session: SessionId) -> Vec<String> {
        self.take(session)
            .iter()
            .map(|v| v["type"].as_str().unwrap_or("?").to_owned())
            .collect()
    }
}

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("valid room")
}

fn user(name: &str) -> UserId {
    UserId::new(name).expect("valid user")
}

fn data(json: &str) -> Payload {
    Payload::from_json(json).expect("JSON")
}

#[test]
fn a_connection_starts_with_where_its_streams_resume() {
    let mut w = World::new();
    let alice = w.connect_with("alice", true, &["lobby"], None);
    let frames = w.take(alice);
    assert_eq!(frames.len(), 1);
    let streams = frames[0]["streams"].as_array().expect("streams");
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["stream"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["user", "all", "room:lobby"]);
    assert!(
        streams
            .iter()
            .all(|s| s["id"].as_str().is_some_and(|id| id.ends_with(".0")))
    );
    assert!(streams.iter().all(|s| s.get("recovered").is_none()));
}

#[test]
fn join_answers_with_members_and_announces_newcomers_to_others() {
    let mut w = World::new();
    let (alice, bob) = (w.connect("alice"), w.connect("bob"));
    w.take(alice);
    w.take(bob);
    w.send(alice, json!({"type": "join", "ref": 1, "room": "lobby"}));
    let reply = &w.take(alice)[0];
    assert_eq!(reply["members"], json!(["alice"]));
    assert!(
        reply["id"].as_str().is_some_and(|id| id.ends_with(".0")),
        "an empty room resumes at <epoch>.0"
    );
    assert!(reply.get("recovered").is_none());
    w.send(bob, json!({"type": "join", "ref": 2, "room": "lobby"}));
    assert_eq!(w.take(bob)[0]["members"], json!(["alice", "bob"]));
    assert_eq!(
        w.take(alice),
        [json!({"type": "presence", "room": "lobby", "joins": ["bob"], "leaves": []})]
    );
}

#[test]
fn a_user_with_many_sessions_is_one_member() {
    let mut w = World::new();
    let (tab1, tab2, bob) = (w.connect("alice"), w.connect("alice"), w.connect("bob"));
    w.send(bob, json!({"type": "join", "room": "lobby"}));
    w.send(tab1, json!({"type": "join", "room": "lobby"}));
    w.take(bob);
    w.take(tab2);
    w.send(tab2, json!({"type": "join", "room": "lobby"}));
    assert_eq!(w.take(bob), Vec::<Value>::new(), "alice is already present");
    assert_eq!(
        w.hub().members(&room("lobby")),
        [user("alice"), user("bob")]
    );
    w.send(tab1, json!({"type": "leave", "room": "lobby"}));
    assert_eq!(
        w.take(bob),
        Vec::<Value>::new(),
        "alice still has a session here"
    );
    w.send(tab2, json!({"type": "leave", "ref": 9, "room": "lobby"}));
    assert_eq!(
        w.take(tab2),
        [json!({"type": "reply", "ref": 9, "room": "lobby"})]
    );
    w.past_window(); // alice's join went out just now
    assert_eq!(
        w.take(bob),
        [json!({"type": "presence", "room": "lobby", "joins": [], "leaves": ["alice"]})]
    );
}

#[test]
fn a_disconnect_is_announced_after_the_grace_period_and_a_reload_does_not_flap() {
    let mut w = World::new();
    let (alice, bob) = (w.connect("alice"), w.connect("bob"));
    w.send(alice, json!({"type": "join", "room": "lobby"}));
    w.send(bob, json!({"type": "join", "room": "lobby"}));
    w.take(alice);
    w.drop_connection(bob);
    w.advance(Duration::from_secs(4));
    assert_eq!(
        w.take(alice),
        Vec::<Value>::new(),
        "within the grace period"
    );
    let bob = w.connect("bob"); // the reload
    w.send(bob, json!({"type": "join", "room": "lobby"}));
    w.advance(Duration::from_secs(10));
    assert_eq!(
        w.take(alice),
        Vec::<Value>::new(),
        "no leave, no join: no flap"
    );
    w.drop_connection(bob);
    assert_eq!(
        w.hub().poll_timeout(),
        Some(w.now() + Duration::from_secs(5))
    );
    w.advance(Duration::from_secs(5));
    assert_eq!(
        w.take(alice),
        [json!({"type": "presence", "room": "lobby", "joins": [], "leaves": ["bob"]})]
    );
}

#[test]
fn leaves_due_together_come_in_one_presence_message() {
    let mut w = World::new();
    let watcher = w.connect("watcher");
    w.send(watcher, json!({"type": "join", "room": "lobby"}));
    let others: Vec<SessionId> = ["a", "b", "c"].iter().map(|u| w.connect(u)).collect();
    for &s in &others {
        w.send(s, json!({"type": "join", "room": "lobby"}));
    }
    w.past_window();
    w.take(watcher);
    for s in others {
        w.drop_connection(s);
    }
    w.advance(Duration::from_secs(5));
    assert_eq!(
        w.take(watcher),
        [json!({"type": "presence", "room": "lobby", "joins": [], "leaves": ["a", "b", "c"]})]
    );
}

#[test]
fn publish_stores_then_delivers_to_everyone_but_the_sending_session() {
    let mut w = World::new();
    let (alice, alice_tab2, bob) = (w.connect("alice"), w.connect("alice"), w.connect("bob"));
    for s in [alice, alice_tab2, bob] {
        w.send(s, json!({"type": "join", "room": "lobby"}));
    }
    for s in [alice, alice_tab2, bob] {
        w.take(s);
    }
    w.send(
        alice,
        json!({"type": "publish", "ref": "p1", "room": "lobby", "data": {"text": "hi"}}),
    );
    let reply = &w.take(alice)[0];
    assert_eq!(
        (reply["type"].as_str(), reply["ref"].as_str()),
        (Some("reply"), Some("p1"))
    );
    let id = reply["id"].as_str().expect("an id").to_owned();
    assert!(id.ends_with(".1"));
    let message = json!({"type": "message", "room": "lobby", "id": id, "from": "alice", "data": {"text": "hi"}});
    assert_eq!(w.take(bob), std::slice::from_ref(&message));
    assert_eq!(
        w.take(alice_tab2),
        [message],
        "exclude-sender is per session"
    );
}

#[test]
fn a_message_is_encoded_once_for_every_recipient() {
    let mut w = World::new();
    let sessions: Vec<SessionId> = (0..5).map(|i| w.connect(&format!("u{i}"))).collect();
    for &s in &sessions {
        w.send(s, json!({"type": "join", "room": "lobby"}));
    }
    for &s in &sessions {
        w.take(s);
    }
    w.command(|hub, now| hub.publish(now, room("lobby"), data("1")))
        .expect("stored");
    let deliveries: Vec<Shared> = sessions.iter().flat_map(|&s| w.take_shared(s)).collect();
    assert_eq!(deliveries.len(), 5);
    assert!(deliveries.windows(2).all(|d| Arc::ptr_eq(&d[0], &d[1])));
}

#[test]
fn history_is_the_same_for_every_reader_including_the_sender() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.send(alice, json!({"type": "join", "ref": 1, "room": "lobby"}));
    let start = w.take(alice).last().expect("reply")["id"].clone();
    w.send(
        alice,
        json!({"type": "publish", "room": "lobby", "data": 1}),
    );
    assert_eq!(w.take(alice), Vec::<Value>::new(), "not echoed live");
    let tab = w.connect("alice");
    w.send(
        tab,
        json!({"type": "join", "ref": 2, "room": "lobby", "since": start}),
    );
    assert_eq!(
        w.types(tab),
        ["streams", "reply", "message"],
        "but replayed from history"
    );
}

#[test]
fn resume_inside_the_window_replays_exactly_the_missed_messages() {
    let mut w = World::new();
    let (alice, bob) = (w.connect("alice"), w.connect("bob"));
    w.send(alice, json!({"type": "join", "room": "lobby"}));
    w.send(bob, json!({"type": "join", "room": "lobby"}));
    w.command(|hub, now| hub.publish(now, room("lobby"), data("1")))
        .expect("stored");
    let seen = w.take(bob).last().expect("a message")["id"].clone();
    w.drop_connection(bob);
    for n in 2..=4 {
        w.command(|hub, now| hub.publish(now, room("lobby"), data(&n.to_string())))
            .expect("stored");
    }
    let bob = w.connect("bob");
    w.take(bob);
    w.send(
        bob,
        json!({"type": "join", "ref": 1, "room": "lobby", "since": seen}),
    );
    let frames = w.take(bob);
    assert_eq!(frames[0]["recovered"], json!(true));
    assert_eq!(frames[0]["replayed"], json!(3));
    assert_eq!(
        frames[0]["id"], seen,
        "the resume point: the messages after it follow"
    );
    let replayed: Vec<&Value> = frames[1..].iter().map(|f| &f["data"]).collect();
    assert_eq!(replayed, [&json!(2), &json!(3), &json!(4)]);
}

#[test]
fn resume_outside_the_window_says_not_recovered_and_replays_nothing() {
    let mut config = HubConfig::default();
    config.room_history.max_messages = 2;
    let mut w = World::with(config);
    let alice = w.connect("alice");
    w.send(alice, json!({"type": "join", "ref": 1, "room": "lobby"}));
    let start = w.take(alice).last().expect("reply")["id"].clone();
    for n in 1..=3 {
        w.command(|hub, now| hub.publish(now, room("lobby"), data(&n.to_string())))
            .expect("stored");
    }
    let head = w.take(alice).last().expect("message")["id"].clone();
    let tab = w.connect("alice");
    w.take(tab);
    w.send(
        tab,
        json!({"type": "join", "ref": 2, "room": "lobby", "since": start}),
    );
    assert_eq!(
        w.take(tab),
        [
            json!({"type": "reply", "ref": 2, "room": "lobby", "members": ["alice"], "id": head, "recovered": false, "replayed": 0})
        ]
    );
    // A position of another epoch is not recovered either.
    let other = w.connect("carol");
    w.take(other);
    w.send(
        other,
        json!({"type": "join", "ref": 3, "room": "lobby", "since": "ffff.1"}),
    );
    assert_eq!(w.take(other)[0]["recovered"], json!(false));
}

#[test]
fn a_member_joining_again_gets_nothing_twice() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.send(alice, json!({"type": "join", "ref": 1, "room": "lobby"}));
    let start = w.take(alice).last().expect("reply")["id"].clone();
    w.command(|hub, now| hub.publish(now, room("lobby"), data("1")))
        .expect("stored");
    // The client has not read message 1 yet and joins again from where it was.
    w.send(
        alice,
        json!({"type": "join", "ref": 2, "room": "lobby", "since": start}),
    );
    let frames = w.take(alice);
    assert_eq!(
        frames.len(),
        2,
        "the message once, then the reply: {frames:?}"
    );
    assert_eq!(frames[0]["type"], "message");
    assert_eq!(
        frames[1]["id"], frames[0]["id"],
        "the reply's id is where the client now is"
    );
    assert_eq!(
        (&frames[1]["recovered"], &frames[1]["replayed"]),
        (&json!(true), &json!(0))
    );
}

#[test]
fn history_ages_out_and_an_unused_stream_is_forgotten() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.send(alice, json!({"type": "join", "room": "lobby"}));
    w.command(|hub, now| hub.publish(now, room("lobby"), data("1")))
        .expect("stored");
    w.send(alice, json!({"type": "leave", "room": "lobby"}));
    assert_eq!(w.hub().room_count(), 0, "an empty room is removed");
    assert_eq!(w.stored().records, 1, "its history stays for resumes");
    assert_eq!(w.stored().rooms_with_history, 1);
    // The engine is asked the heads of the followed streams every 5 s (alice's outbox), and
    // to expire history every 10 s.
    assert_eq!(
        w.hub().poll_timeout(),
        Some(w.now() + Duration::from_secs(5))
    );
    w.advance(Duration::from_secs(5));
    assert_eq!(
        w.hub().poll_timeout(),
        Some(w.now() + Duration::from_secs(5)),
        "both at once"
    );
    w.advance(Duration::from_secs(600));
    assert_eq!((w.stored().records, w.stored().bytes), (0, 0));
    assert_eq!(
        w.stored().streams,
        2,
        "the lobby's position is remembered a while longer"
    );
    w.advance(Duration::from_secs(610));
    assert_eq!(
        w.stored().streams,
        1,
        "then forgotten; alice's outbox is followed"
    );
}

#[test]
fn typing_is_relayed_to_the_others_and_not_stored() {
    let mut w = World::new();
    let (alice, bob) = (w.connect("alice"), w.connect("bob"));
    w.send(alice, json!({"type": "join", "room": "lobby"}));
    w.send(bob, json!({"type": "join", "room": "lobby"}));
    w.take(alice);
    w.take(bob);
    w.send(
        alice,
        json!({"type": "typing", "room": "lobby", "typing": true}),
    );
    assert_eq!(w.take(alice), Vec::<Value>::new());
    assert_eq!(
        w.take(bob),
        [json!({"type": "typing", "room": "lobby", "user": "alice", "typing": true})]
    );
    assert_eq!(w.stored().records, 0);
}

#[test]
fn room_requests_need_membership() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.take(alice);
    for (n, frame) in [
        json!({"type": "publish", "ref": 1, "room": "lobby", "data": 1}),
        json!({"type": "typing", "ref": 2, "room": "lobby", "typing": true}),
        json!({"type": "leave", "ref": 3, "room": "lobby"}),
    ]
    .into_iter()
    .enumerate()
    {
        w.send(alice, frame);
        let error = &w.take(alice)[0];
        assert_eq!(
            (error["code"].as_str(), error["ref"].as_u64()),
            (Some("not_member"), Some(n as u64 + 1))
        );
    }
}

#[test]
fn rooms_per_session_are_limited() {
    let mut w = World::with(HubConfig {
        max_rooms_per_session: 2,
        ..HubConfig::default()
    });
    let alice = w.connect("alice");
    w.send(alice, json!({"type": "join", "room": "a"}));
    w.send(alice, json!({"type": "join", "room": "b"}));
    w.take(alice);
    w.send(alice, json!({"type": "join", "ref": 1, "room": "b"}));
    assert_eq!(
        w.take(alice)[0]["type"],
        "reply",
        "re-joining is not a new room"
    );
    w.send(alice, json!({"type": "join", "ref": 2, "room": "c"}));
    assert_eq!(w.take(alice)[0]["code"], "limit_reached");
    let rooms = ["a", "b", "c"].map(room).to_vec();
    let connect = Connect {
        access: Default::default(),
        user: user("bob"),
        broadcast: false,
        rooms,
        cursor: None,
    };
    assert!(matches!(
        w.h.connect(SessionKind::WebSocket, connect),
        Err(HubError::LimitReached(_))
    ));
}

#[test]
fn a_direct_message_to_a_live_user_is_delivered_with_a_receipt() {
    let mut w = World::new();
    let (alice, bob1, bob2) = (w.connect("alice"), w.connect("bob"), w.connect("bob"));
    for s in [alice, bob1, bob2] {
        w.take(s);
    }
    w.send(
        alice,
        json!({"type": "direct", "ref": 1, "to": "bob", "data": "hey"}),
    );
    let reply = &w.take(alice)[0];
    assert_eq!(reply["delivered"], json!(true));
    let expected = json!({"type": "direct", "id": reply["id"], "from": "alice", "data": "hey"});
    assert_eq!(w.take(bob1), std::slice::from_ref(&expected));
    assert_eq!(w.take(bob2), [expected], "every session of the user");
}

#[test]
fn a_direct_message_to_an_offline_user_waits_in_the_outbox() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.send(
        alice,
        json!({"type": "direct", "ref": 1, "to": "bob", "data": 1}),
    );
    w.send(
        alice,
        json!({"type": "direct", "ref": 2, "to": "bob", "data": 2}),
    );
    assert_eq!(
        w.take(alice).last().expect("reply")["delivered"],
        json!(false)
    );
    let bob = w.connect("bob");
    let frames = w.take(bob);
    assert_eq!(frames[0]["streams"][0]["replayed"], json!(2));
    let data: Vec<&Value> = frames[1..].iter().map(|f| &f["data"]).collect();
    assert_eq!(data, [&json!(1), &json!(2)]);
    // Delivered now: the next connection does not get them again.
    // Not read yet: every device of bob's without a cursor gets them, not only the first.
    let bob2 = w.connect("bob");
    let frames = w.take(bob2);
    assert_eq!(frames[0]["streams"][0]["unread"], json!(2));
    assert_eq!(frames.len(), 3, "`streams` and both messages: {frames:?}");
}

#[test]
fn outboxes_are_bounded_by_count_and_age() {
    let mut config = HubConfig::default();
    config.outbox_history.max_messages = 3;
    let mut w = World::with(config);
    for n in 1..=5 {
        w.command(|hub, now| hub.notify(now, user("bob"), None, data(&n.to_string())))
            .expect("stored");
    }
    let bob = w.connect("bob");
    let kept: Vec<Value> = w.take(bob)[1..].iter().map(|f| f["data"].clone()).collect();
    assert_eq!(kept, [json!(3), json!(4), json!(5)], "the oldest dropped");
    w.drop_connection(bob);
    w.command(|hub, now| hub.notify(now, user("bob"), Some("later".into()), data("6")))
        .expect("stored");
    w.advance(Duration::from_secs(7 * 24 * 3600));
    assert_eq!(w.stored().records, 0, "aged out");
    assert_eq!(
        w.stored().streams,
        1,
        "bob's stream position is remembered a while longer"
    );
    w.advance(Duration::from_secs(7 * 24 * 3600));
    assert_eq!(w.stored().streams, 0, "then forgotten");
    let bob = w.connect("bob");
    assert_eq!(w.take(bob).len(), 1, "nothing left to deliver");
}

#[test]
fn a_user_who_comes_back_resumes_their_outbox_even_when_it_was_empty() {
    let mut w = World::new();
    let first = w.connect("bob");
    let start = w.take(first)[0]["streams"][0]["id"]
        .as_str()
        .expect("user stream")
        .to_owned();
    w.drop_connection(first);
    w.advance(Duration::from_secs(3600));
    let again = w.connect_with("bob", false, &[], Some(&format!("user={start}")));
    assert_eq!(
        w.take(again)[0]["streams"][0],
        json!({"stream": "user", "id": start, "recovered": true, "replayed": 0}),
        "the same stream, not a new epoch"
    );
}

#[test]
fn an_outbox_that_keeps_nothing_forgets_its_offline_user() {
    let mut w = World::with(HubConfig {
        outbox_history: HistoryLimit {
            max_messages: 0,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(60),
        },
        ..HubConfig::default()
    });
    assert!(
        w.command(|hub, now| hub.notify(now, user("a"), None, data("1")))
            .is_ok()
    );
    assert_eq!(
        (w.stored().streams, w.stored().records),
        (1, 0),
        "remembered for the history age"
    );
    w.advance(Duration::from_secs(60));
    assert_eq!(
        w.stored().streams,
        0,
        "then forgotten: no entry lives forever"
    );
}

#[test]
fn a_room_named_twice_at_connect_is_joined_and_resumed_once() {
    let mut w = World::new();
    let alice = w.connect_with("alice", false, &["lobby"], None);
    w.command(|hub, now| hub.publish(now, room("lobby"), data("1")))
        .expect("stored");
    let first = w.take(alice).last().expect("a message")["id"].clone();
    w.command(|hub, now| hub.publish(now, room("lobby"), data("2")))
        .expect("stored");
    let cursor = format!("room:lobby={}", first.as_str().expect("an id"));
    let bob = w.connect_with("bob", false, &["lobby", "lobby"], Some(&cursor));
    let frames = w.take(bob);
    assert_eq!(frames[0]["streams"].as_array().expect("streams").len(), 2);
    let messages: Vec<_> = frames.iter().filter(|f| f["type"] == "message").collect();
    assert_eq!(messages.len(), 1, "message 2, once: {frames:?}");
}

#[test]
fn outboxes_of_users_away_are_limited() {
    let limits = MemoryLimits {
        max_outboxes: 1,
        ..MemoryLimits::default()
    };
    let mut w = World::with_limits(HubConfig::default(), limits);
    assert!(
        w.command(|hub, now| hub.notify(now, user("a"), None, data("1")))
            .is_ok()
    );
    assert!(
        w.command(|hub, now| hub.notify(now, user("a"), None, data("2")))
            .is_ok(),
        "same user: no new outbox"
    );
    assert!(matches!(
        w.command(|hub, now| hub.notify(now, user("b"), None, data("1"))),
        Err(HubError::LimitReached(_))
    ));
    let c = w.connect("c");
    assert!(
        w.command(|hub, now| hub.notify(now, user("c"), None, data("1")))
            .is_ok(),
        "users here are not limited"
    );
    w.send(c, json!({"type": "direct", "ref": 1, "to": "d", "data": 1}));
    assert_eq!(w.take(c).last().expect("error")["code"], "limit_reached");
}

#[test]
fn broadcast_reaches_followers_only_and_resumes() {
    let mut w = World::new();
    let (follower, other) = (w.connect_with("a", true, &[], None), w.connect("b"));
    let start = w.take(follower)[0]["streams"][1]["id"]
        .as_str()
        .expect("all")
        .to_owned();
    w.take(other);
    let published = w.command(|hub, now| hub.broadcast(now, Some("news".into()), data("{}")));
    assert_eq!(published.expect("stored").sessions, 1);
    assert_eq!(w.types(follower), ["broadcast"]);
    assert_eq!(w.types(other), Vec::<String>::new());
    let again = w.connect_with("a", true, &[], Some(&format!("all={start}")));
    let frames = w.take(again);
    assert_eq!(
        frames[0]["streams"][1],
        json!({"stream": "all", "id": start, "recovered": true, "replayed": 1})
    );
    assert_eq!(frames[1]["event"], "news");
}

/// The cursor an SSE transport keeps for a connection: `streams` sets every stream's start,
/// then each streamed delivery moves its stream forward.
fn track(cursor: &mut Cursor, deliveries: &[Shared]) {
    for delivery in deliveries {
        if let Some((stream, position)) = &delivery.stream {
            cursor.set(stream.clone(), *position).expect("few streams");
            continue;
        }
        let frame: Value = serde_json::from_str(delivery.frame.as_str()).expect("JSON");
        for start in frame["streams"].as_array().into_iter().flatten() {
            let stream = start["stream"]
                .as_str()
                .expect("stream")
                .parse()
                .expect("valid");
            let position = start["id"].as_str().expect("id").parse().expect("valid");
            cursor.set(stream, position).expect("few streams");
        }
    }
}

#[test]
fn one_cursor_resumes_every_stream_of_a_connection() {
    let mut w = World::new();
    let first = w.connect_with("alice", true, &["a", "b"], None);
    w.command(|hub, now| hub.notify(now, user("alice"), None, data("0")))
        .expect("stored");
    let mut cursor = Cursor::new();
    track(&mut cursor, &w.take_shared(first));
    w.drop_connection(first);
    w.command(|hub, now| hub.publish(now, room("a"), data("\"a1\"")))
        .expect("stored");
    w.command(|hub, now| hub.broadcast(now, None, data("\"all1\"")))
        .expect("stored");
    w.command(|hub, now| hub.notify(now, user("alice"), None, data("\"u1\"")))
        .expect("stored");
    let second = w.connect_with("alice", true, &["a", "b"], Some(&cursor.to_string()));
    let frames = w.take(second);
    let starts = frames[0]["streams"].as_array().expect("streams");
    assert!(
        starts.iter().all(|s| s["recovered"] == json!(true)),
        "{starts:?}"
    );
    let replayed: Vec<&Value> = frames[1..].iter().map(|f| &f["data"]).collect();
    assert_eq!(replayed, [&json!("u1"), &json!("all1"), &json!("a1")]);
}

#[test]
fn a_slow_consumer_disconnected_by_its_driver_resumes_without_loss() {
    let mut w = World::new();
    let (alice, bob) = (w.connect("alice"), w.connect("bob"));
    w.send(alice, json!({"type": "join", "room": "lobby"}));
    w.send(bob, json!({"type": "join", "ref": 1, "room": "lobby"}));
    let start = w.take(bob).last().expect("reply")["id"].clone();
    for n in 0..6 {
        w.command(|hub, now| hub.publish(now, room("lobby"), data(&n.to_string())))
            .expect("stored");
    }
    // bob's queue is full in the driver: it drops his connection and what was queued.
    w.drop_connection(bob);
    assert_eq!(
        w.hub().members(&room("lobby")),
        [user("alice"), user("bob")],
        "bob is in his grace period"
    );
    let bob = w.connect("bob");
    w.send(
        bob,
        json!({"type": "join", "ref": 2, "room": "lobby", "since": start}),
    );
    let frames = w.take(bob);
    assert_eq!(frames[1]["replayed"], json!(6));
    let replayed: Vec<Value> = frames[2..].iter().map(|f| f["data"].clone()).collect();
    assert_eq!(replayed, (0..6).map(|n| json!(n)).collect::<Vec<_>>());
}

/// Records the fan-outs of stored messages it sees.
#[derive(Default)]
struct Fanouts(Vec<(Members, Option<SessionId>)>);

impl crate::harness::Tap for Fanouts {
    fn hub_transmit(&mut self, _: Instant, transmit: &mut Transmit) {
        if let Transmit::Fanout {
            sessions,
            except,
            delivery,
        } = transmit
            && delivery.stream.is_some()
        {
            self.0.push((Arc::clone(sessions), *except));
        }
    }
}

#[test]
fn a_fan_out_is_one_transmit_with_the_receivers_when_the_message_comes_back() {
    let hub = Hub::new(HubConfig::default());
    let mut h = Harness::new(hub, crate::testing::start()).with_tap(Fanouts::default());
    let connect = |h: &mut Harness<Fanouts>, name: &str| {
        let connect = Connect {
            access: Default::default(),
            user: user(name),
            broadcast: false,
            rooms: vec![room("lobby")],
            cursor: None,
        };
        h.connect(SessionKind::WebSocket, connect)
            .expect("connects")
    };
    let (alice, bob) = (connect(&mut h, "alice"), connect(&mut h, "bob"));
    let publish = Codec::new()
        .decode_client(r#"{"type":"publish","room":"lobby","data":1}"#)
        .expect("valid");
    // Past the harness: nothing moves until `drive`, so carol joins after the message was
    // published and before the engine has it.
    let now = h.now();
    h.hub_mut().handle_request(now, alice, publish);
    let carol = Connect {
        access: Default::default(),
        user: user("carol"),
        broadcast: false,
        rooms: vec![room("lobby")],
        cursor: None,
    };
    let carol = h.hub_mut().connect(now, carol).expect("connects");
    h.drive();
    let fanouts = &h.tap().0;
    assert_eq!(fanouts.len(), 1, "one transmit for the whole room");
    let (sessions, except) = &fanouts[0];
    let mut receivers = sessions.to_vec();
    receivers.sort();
    assert_eq!((receivers, *except), (vec![alice, bob], Some(alice)));
    assert!(
        !sessions.contains(&carol),
        "carol, still starting, gets it in her replay, not live"
    );
}

#[test]
fn requests_from_unknown_sessions_are_ignored() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.take(alice);
    // The hub forgets alice while her connection stays open.
    w.h.feed_hub(|hub, now| hub.disconnect(now, alice));
    w.send(alice, json!({"type": "join", "ref": 1, "room": "lobby"}));
    assert_eq!(w.take(alice), Vec::<Value>::new());
    w.h.feed_hub(|hub, now| hub.disconnect(now, alice)); // twice: harmless
}

#[test]
fn epochs_differ_per_stream_and_per_seed() {
    let epoch = |seed, name: &str| {
        let engine = MemoryEngine::new(MemoryLimits::default(), seed);
        let hub = Hub::new(HubConfig::default());
        let mut h = Harness::with_engine(hub, engine, crate::testing::start());
        h.feed_hub(|hub, now| hub.publish(now, room(name), data("1")));
        match h.poll_hub_event() {
            Some(HubEvent::Done { result, .. }) => result.expect("stored").id.epoch,
            other => panic!("{other:?}"),
        }
    };
    let (a, b, a2) = (epoch(1, "a"), epoch(1, "b"), epoch(2, "a"));
    assert_ne!(a, a2, "per seed");
    assert_eq!(epoch(1, "a"), a, "same seed, same epochs");
    let mut w = World::new();
    let one = w.command(|hub, now| hub.publish(now, room("a"), data("1")));
    let two = w.command(|hub, now| hub.publish(now, room("b"), data("1")));
    assert_ne!(
        one.expect("stored").id.epoch,
        two.expect("stored").id.epoch,
        "per stream"
    );
    let _ = b;
}

#[test]
fn every_device_without_a_cursor_gets_what_its_user_has_not_marked_read() {
    let mut w = World::new();
    let alice = w.connect("alice");
    for n in 1..=3 {
        w.send(
            alice,
            json!({"type": "direct", "ref": n, "to": "bob", "data": n}),
        );
    }
    let ids: Vec<Value> = w
        .take(alice)
        .iter()
        .filter(|f| f["type"] == "reply")
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(ids.len(), 3);
    // Two devices: each gets the three, unread.
    let (phone, laptop) = (w.connect("bob"), w.connect("bob"));
    for device in [phone, laptop] {
        let frames = w.take(device);
        assert_eq!(frames[0]["streams"][0]["unread"], json!(3), "{frames:?}");
        let data: Vec<&Value> = frames[1..].iter().map(|f| &f["data"]).collect();
        assert_eq!(data, [&json!(1), &json!(2), &json!(3)]);
    }
    // The phone reads up to the second: it is answered, and the laptop is told.
    w.send(phone, json!({"type": "read", "ref": 9, "upto": ids[1]}));
    assert_eq!(
        w.take(phone),
        [json!({"type": "reply", "ref": 9, "id": ids[1], "unread": 1})]
    );
    assert_eq!(
        w.take(laptop),
        [json!({"type": "read", "upto": ids[1], "unread": 1})]
    );
    // A mark never moves back.
    w.send(phone, json!({"type": "read", "ref": 10, "upto": ids[0]}));
    assert_eq!(w.take(phone)[0]["id"], ids[1]);
    w.take(laptop);
    // A third device gets only what is left unread.
    let tablet = w.connect("bob");
    let frames = w.take(tablet);
    assert_eq!(frames[0]["streams"][0]["unread"], json!(1));
    assert_eq!(frames[0]["streams"][0]["id"], ids[1]);
    let data: Vec<&Value> = frames[1..].iter().map(|f| &f["data"]).collect();
    assert_eq!(data, [&json!(3)]);
}

#[test]
fn the_senders_of_what_a_user_marks_read_get_a_receipt_on_every_device() {
    let mut w = World::new();
    let (alice, alice2, carol) = (w.connect("alice"), w.connect("alice"), w.connect("carol"));
    let direct = |w: &mut World, from: SessionId, n: u64| {
        w.send(
            from,
            json!({"type": "direct", "ref": n, "to": "bob", "data": n}),
        );
        w.take(from).pop().expect("a reply")["id"].clone()
    };
    let one = direct(&mut w, alice, 1);
    let two = direct(&mut w, carol, 2);
    let three = direct(&mut w, alice, 3);
    w.h.remove(carol);
    w.take(alice2);
    let bob = w.connect("bob");
    assert_eq!(w.take(bob)[0]["streams"][0]["unread"], json!(3));
    // Bob reads up to carol's: one receipt each for alice (both devices) and carol (away).
    w.send(bob, json!({"type": "read", "ref": 9, "upto": two}));
    assert_eq!(
        w.take(bob),
        [json!({"type": "reply", "ref": 9, "id": two, "unread": 1})]
    );
    for device in [alice, alice2] {
        let frames = w.take(device);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["type"], "receipt");
        assert_eq!(frames[0]["from"], "bob");
        assert_eq!(frames[0]["upto"], two);
    }
    // Carol gets hers on return; it is replayed, and not counted as unread.
    let carol = w.connect("carol");
    let frames = w.take(carol);
    assert_eq!(frames[0]["streams"][0]["replayed"], json!(1), "{frames:?}");
    assert_eq!(frames[0]["streams"][0]["unread"], json!(0), "{frames:?}");
    assert_eq!(frames[1]["type"], "receipt");
    assert_eq!(frames[1]["upto"], two);
    // Marking the same again tells nobody; reading on reaches alice alone.
    w.send(bob, json!({"type": "read", "ref": 10, "upto": two}));
    w.take(bob);
    assert_eq!(w.take(alice), Vec::<Value>::new());
    w.send(bob, json!({"type": "read", "ref": 11, "upto": three}));
    assert_eq!(
        w.take(bob),
        [json!({"type": "reply", "ref": 11, "id": three, "unread": 0})]
    );
    let frames = w.take(alice);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["upto"], three);
    assert_eq!(w.take(carol), Vec::<Value>::new());
    let _ = one;
}

#[test]
fn receipts_are_not_counted_unread_and_nobody_gets_one_for_their_own_messages() {
    let mut w = World::new();
    let (alice, bob) = (w.connect("alice"), w.connect("bob"));
    w.take(alice);
    w.take(bob);
    // Bob writes to alice and to himself; alice reads: bob gets a receipt.
    w.send(
        bob,
        json!({"type": "direct", "ref": 1, "to": "alice", "data": "hi"}),
    );
    w.send(
        bob,
        json!({"type": "direct", "ref": 2, "to": "bob", "data": "note to self"}),
    );
    let frames = w.take(bob);
    let own = frames
        .iter()
        .find(|f| f["type"] == "direct")
        .expect("his own note")["id"]
        .clone();
    let to_alice = w.take(alice).pop().expect("the direct")["id"].clone();
    w.send(alice, json!({"type": "read", "ref": 3, "upto": to_alice}));
    w.take(alice);
    let receipt = w.take(bob).pop().expect("a receipt");
    assert_eq!(receipt["type"], "receipt", "{receipt}");
    // Bob's outbox: his note and the receipt; one unread.
    let bob2 = w.connect("bob");
    let frames = w.take(bob2);
    assert_eq!(frames[0]["streams"][0]["replayed"], json!(2), "{frames:?}");
    assert_eq!(frames[0]["streams"][0]["unread"], json!(1), "{frames:?}");
    // He reads his note: no receipt to himself, and nothing left unread (the receipt after
    // the note is not counted).
    w.send(bob, json!({"type": "read", "ref": 4, "upto": own}));
    assert_eq!(w.take(bob)[0]["unread"], json!(0));
    assert!(
        w.take(bob2).iter().all(|f| f["type"] == "read"),
        "no receipt for his own note"
    );
}

#[test]
fn a_mark_past_messages_the_outbox_dropped_sends_receipts_for_those_kept() {
    let mut config = HubConfig::default();
    config.outbox_history.max_messages = 3;
    let mut w = World::with(config);
    let (alice, carol) = (w.connect("alice"), w.connect("carol"));
    w.send(
        carol,
        json!({"type": "direct", "ref": 1, "to": "bob", "data": 1}),
    );
    let mut ids = Vec::new();
    for n in 2..=5 {
        w.send(
            alice,
            json!({"type": "direct", "ref": n, "to": "bob", "data": n}),
        );
        ids.push(w.take(alice).pop().expect("a reply")["id"].clone());
    }
    w.take(carol);
    let bob = w.connect("bob");
    let frames = w.take(bob);
    assert_eq!(frames[0]["streams"][0]["unread"], json!(3), "{frames:?}");
    // Carol's message went before bob read it: no receipt for it.
    w.send(bob, json!({"type": "read", "ref": 9, "upto": ids[2]}));
    assert_eq!(
        w.take(bob),
        [json!({"type": "reply", "ref": 9, "id": ids[2], "unread": 1})]
    );
    let receipts = w.take(alice);
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0]["upto"], ids[2]);
    assert_eq!(w.take(carol), Vec::<Value>::new());
}

/// Presence another node reports (`EngineEvent::Presence`) into the lobby.
fn remote(w: &mut World, node: u64, user: &str, present: bool) {
    let event = EngineEvent::Presence {
        room: RoomName::new("lobby").expect("valid"),
        node,
        user: UserId::new(user).expect("valid"),
        present,
    };
    w.h.feed_hub(|hub, now| hub.handle_engine(now, event));
    w.check();
}

fn presence(joins: &[&str], leaves: &[&str]) -> Value {
    json!({"type": "presence", "room": "lobby", "joins": joins, "leaves": leaves})
}

#[test]
fn a_user_present_on_another_node_is_one_member_announced_once() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.send(alice, json!({"type": "join", "ref": 1, "room": "lobby"}));
    w.take(alice);
    let lobby = RoomName::new("lobby").expect("valid");
    // Bob joins on node 99: alice is told, and he is a member.
    remote(&mut w, 99, "bob", true);
    assert_eq!(w.take(alice), [presence(&["bob"], &[])]);
    let members: Vec<String> = w
        .hub()
        .members(&lobby)
        .iter()
        .map(|u| u.to_string())
        .collect();
    assert_eq!(members, ["alice", "bob"]);
    // Bob here as well: his reply lists both, and nobody is told he joined again.
    let bob = w.connect("bob");
    w.send(bob, json!({"type": "join", "ref": 2, "room": "lobby"}));
    let reply = w.take(bob).pop().expect("a reply");
    assert_eq!(reply["members"], json!(["alice", "bob"]));
    assert_eq!(w.take(alice), Vec::<Value>::new());
    // Bob leaves here: still on node 99, so no leave; then there too.
    w.send(bob, json!({"type": "leave", "ref": 3, "room": "lobby"}));
    assert_eq!(w.take(alice), Vec::<Value>::new());
    remote(&mut w, 99, "bob", false);
    w.past_window(); // bob's join went out just now
    assert_eq!(w.take(alice), [presence(&[], &["bob"])]);
    // This node's own reports are not another node's.
    remote(&mut w, HubConfig::default().node, "carol", true);
    assert_eq!(w.take(alice), Vec::<Value>::new());
}

#[test]
fn a_presence_snapshot_replaces_what_other_nodes_said() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.send(alice, json!({"type": "join", "ref": 1, "room": "lobby"}));
    w.take(alice);
    remote(&mut w, 98, "carol", true);
    remote(&mut w, 98, "dave", true);
    w.past_window();
    w.take(alice);
    // Node 98 died (its entries expired) and erin is on 97: carol and dave go, erin comes.
    let user = |name: &str| UserId::new(name).expect("valid");
    let event = EngineEvent::PresenceSnapshot {
        room: RoomName::new("lobby").expect("valid"),
        members: vec![
            (user("alice"), HubConfig::default().node),
            (user("erin"), 97),
        ],
    };
    w.h.feed_hub(|hub, now| hub.handle_engine(now, event));
    w.past_window();
    assert_eq!(w.take(alice), [presence(&["erin"], &["carol", "dave"])]);
    // A room nobody here is in is not tracked.
    let event = EngineEvent::PresenceSnapshot {
        room: RoomName::new("elsewhere").expect("valid"),
        members: vec![(user("zed"), 97)],
    };
    w.h.feed_hub(|hub, now| hub.handle_engine(now, event));
    w.check();
    assert!(
        w.hub()
            .members(&RoomName::new("elsewhere").expect("valid"))
            .is_empty()
    );
}

#[test]
fn typing_on_another_node_reaches_the_rooms_sessions_here() {
    let mut w = World::new();
    let alice = w.connect("alice");
    w.send(alice, json!({"type": "join", "ref": 1, "room": "lobby"}));
    w.take(alice);
    let typing = |node: u64, room: &str| EngineEvent::Typing {
        room: RoomName::new(room).expect("valid"),
        node,
        user: UserId::new("bob").expect("valid"),
        typing: true,
    };
    let event = typing(99, "lobby");
    w.h.feed_hub(|hub, now| hub.handle_engine(now, event));
    assert_eq!(
        w.take(alice),
        [json!({"type": "typing", "room": "lobby", "user": "bob", "typing": true})]
    );
    // Its own node's, and a room nobody here is in: nothing.
    for event in [
        typing(HubConfig::default().node, "lobby"),
        typing(99, "elsewhere"),
    ] {
        w.h.feed_hub(|hub, now| hub.handle_engine(now, event));
    }
    assert_eq!(w.take(alice), Vec::<Value>::new());
    w.check();
}
