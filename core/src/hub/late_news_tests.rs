//! The hub behind an engine whose news comes late, out of order or not at all (one across a
//! network): each test holds the engine's events and lets them through in the order that once
//! broke a promise. The simulation found each of these; here each is one scripted case.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::*;
use crate::engine::{Engine, EngineEvent, MemoryEngine, MemoryLimits};
use crate::harness::Harness;
use crate::session::SessionKind;

/// The memory engine, its events held until the test lets them through.
struct Held {
    inner: MemoryEngine,
    held: VecDeque<EngineEvent>,
    out: VecDeque<EngineEvent>,
}

impl Engine for Held {
    fn handle(&mut self, now: Instant, operation: Operation) {
        self.inner.handle(now, operation);
        while let Some(event) = self.inner.poll_event() {
            self.held.push_back(event);
        }
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        self.out.pop_front()
    }
}

impl Held {
    /// Lets through, in order, the held events `pass` picks.
    fn release(&mut self, pass: impl Fn(&EngineEvent) -> bool) {
        let (go, stay): (VecDeque<_>, VecDeque<_>) = self.held.drain(..).partition(&pass);
        self.out.extend(go);
        self.held = stay;
    }

    /// Drops the held events `lost` picks: they never come.
    fn lose(&mut self, lost: impl Fn(&EngineEvent) -> bool) {
        self.held.retain(|event| !lost(event));
    }
}

fn is_live(offset: u64) -> impl Fn(&EngineEvent) -> bool {
    move |event| matches!(event, EngineEvent::Live { at, .. } if at.offset == offset)
}

fn is_appended(offset: u64) -> impl Fn(&EngineEvent) -> bool {
    move |event| matches!(event, EngineEvent::Appended { at, .. } if at.offset == offset)
}

fn not_live(event: &EngineEvent) -> bool {
    !matches!(event, EngineEvent::Live { .. })
}

struct World {
    h: Harness<(), Held>,
}

impl World {
    fn new() -> Self {
        let engine = Held {
            inner: MemoryEngine::new(MemoryLimits::default(), 3),
            held: VecDeque::new(),
            out: VecDeque::new(),
        };
        let h = Harness::with_engine(
            Hub::new(HubConfig::default()),
            engine,
            crate::testing::start(),
        );
        Self { h }
    }

    /// Lets the engine's events through as `release` says, and moves what follows.
    fn engine(&mut self, release: impl FnOnce(&mut Held)) {
        release(self.h.engine_mut());
        self.h.drive();
        self.check();
    }

    /// Every held event through, until nothing is held.
    fn settle(&mut self) {
        while !self.h.engine().held.is_empty() {
            self.engine(|e| e.release(|_| true));
        }
    }

    fn check(&self) {
        if let Err(broken) = self.h.hub().check_invariants() {
            panic!("invariant broken: {broken}");
        }
        assert_eq!(self.h.strays(), 0, "deliveries to sessions not in the hub");
    }

    /// A WebSocket session of `user` in `lobby`, its opening frames taken.
    fn member(&mut self, user: &str) -> SessionId {
        let connect = Connect {
            access: Default::default(),
            user: UserId::new(user).expect("valid"),
            broadcast: false,
            rooms: vec![],
            cursor: None,
        };
        let session = self
            .h
            .connect(SessionKind::WebSocket, connect)
            .expect("connects");
        self.settle();
        self.send(session, json!({"type": "join", "ref": 0, "room": "lobby"}));
        self.settle();
        self.h.take_frames(session);
        session
    }

    fn send(&mut self, session: SessionId, frame: Value) {
        self.h
            .handle_text(session, &frame.to_string())
            .expect("a WebSocket session takes frames");
        self.check();
    }

    fn publish(&mut self, session: SessionId, reference: u64) {
        let frame =
            json!({"type": "publish", "ref": reference, "room": "lobby", "data": reference});
        self.send(session, frame);
    }

    /// What `session` was sent, each frame as `type` and `id` (and `ref`).
    fn frames(&mut self, session: SessionId) -> Vec<String> {
        self.h
            .take_json(session)
            .iter()
            .map(|frame| {
                let offset = frame["id"]
                    .as_str()
                    .and_then(|id| id.split('.').nth(1))
                    .unwrap_or("-");
                match &frame["ref"] {
                    Value::Null => format!("{} {offset}", frame["type"].as_str().unwrap_or("?")),
                    reference => format!("reply {reference} {offset}"),
                }
            })
            .collect()
    }
}

/// Alice's message is at 1, Bob's at 2. The Live of 1 is lost, so the hub learns of 1 by the
/// read that fills the gap 2 reveals. Alice's reply (her position) must still come before
/// Bob's message 2, whatever order `Appended` and the fill come in.
#[test]
fn a_reply_comes_before_the_next_message_when_a_fill_brings_both() {
    let mut w = World::new();
    let alice = w.member("alice");
    let bob = w.member("bob");
    w.frames(alice); // bob's presence
    w.publish(alice, 1);
    w.publish(bob, 2);
    w.engine(|e| e.lose(is_live(1)));
    w.engine(|e| e.release(|event| is_appended(1)(event) || is_appended(2)(event)));
    w.engine(|e| e.release(is_live(2)));
    w.settle();
    assert_eq!(w.frames(alice), ["reply 1 1", "message 2"]);
    assert_eq!(w.frames(bob), ["message 1", "reply 2 2"]);
}

/// As above, but the engine's `Appended` for 1 comes last of all: the message's own `Live`,
/// brought by the fill, answers Alice's publish.
#[test]
fn a_reply_comes_with_its_message_when_appended_is_late() {
    let mut w = World::new();
    let alice = w.member("alice");
    let bob = w.member("bob");
    w.frames(alice); // bob's presence
    w.publish(alice, 1);
    w.publish(bob, 2);
    w.engine(|e| e.lose(is_live(1)));
    w.engine(|e| e.release(|event| is_appended(2)(event) || is_live(2)(event)));
    w.engine(|e| e.release(|event| matches!(event, EngineEvent::Read { .. })));
    assert_eq!(w.frames(alice), ["reply 1 1", "message 2"]);
    w.settle();
    assert_eq!(w.frames(alice), Vec::<String>::new(), "answered once");
    assert_eq!(w.frames(bob), ["message 1", "reply 2 2"]);
}

/// A joiner's read is answered late, with a head older than what the feed has delivered since:
/// the view is stale, not a sign that history moved on. Nobody is told `recovered: false`.
#[test]
fn a_late_read_does_not_reset_a_feed_that_moved_on() {
    let mut w = World::new();
    let alice = w.member("alice");
    let carol = w.member("carol");
    w.publish(alice, 1);
    w.publish(alice, 2);
    w.settle();
    w.frames(alice);
    w.frames(carol);
    // Carol's second connection resumes the lobby from 1: its read waits.
    let connect = Connect {
        access: Default::default(),
        user: UserId::new("carol").expect("valid"),
        broadcast: false,
        rooms: vec![],
        cursor: None,
    };
    let again =
        w.h.connect(SessionKind::WebSocket, connect)
            .expect("connects");
    w.settle();
    let lobby = StreamId::Room(RoomName::new("lobby").expect("valid"));
    let seen = w.h.hub().feeds[&lobby].seen.expect("followed");
    let since = Position { offset: 1, ..seen };
    w.send(
        again,
        json!({"type": "join", "ref": 5, "room": "lobby", "since": since.to_string()}),
    );
    // Two more messages go through while the read's answer waits.
    w.publish(alice, 3);
    w.publish(alice, 4);
    w.engine(|e| e.release(|event| !matches!(event, EngineEvent::Read { .. })));
    w.settle();
    assert_eq!(w.frames(alice), ["reply 3 3", "reply 4 4"], "no reset");
    assert_eq!(w.frames(carol), ["message 3", "message 4"]);
    let joined: Vec<String> = w.frames(again).into_iter().skip(2).collect();
    assert_eq!(
        joined,
        ["reply 5 1", "message 2", "message 3", "message 4"],
        "the join replays from 1"
    );
}

/// The last member leaves with a publish not yet answered: the hub lets the room's feed go,
/// and the publish is answered after the leave, since its id is no position the leaver reached.
#[test]
fn a_leave_is_answered_before_the_publishes_it_cut_short() {
    let mut w = World::new();
    let alice = w.member("alice");
    w.publish(alice, 1);
    w.engine(|e| e.release(not_live));
    w.send(alice, json!({"type": "leave", "ref": 2, "room": "lobby"}));
    w.settle();
    assert_eq!(w.frames(alice), ["reply 2 -", "reply 1 1"]);
}

/// A session goes while its publish waits for the engine: the answer comes to nobody.
#[test]
fn an_answer_for_a_session_gone_goes_nowhere() {
    let mut w = World::new();
    let alice = w.member("alice");
    let bob = w.member("bob");
    w.publish(alice, 1);
    w.h.remove(alice);
    w.settle();
    assert_eq!(
        w.frames(bob),
        ["message 1"],
        "alice stays present for her grace"
    );
}

/// The Live of the last message is lost and nothing follows it: the hub's check of the heads
/// finds it within `check_every`.
#[test]
fn a_lost_last_message_is_found_by_the_heads_check() {
    let mut w = World::new();
    let alice = w.member("alice");
    let bob = w.member("bob");
    w.publish(alice, 1);
    w.engine(|e| e.lose(is_live(1)));
    w.settle();
    assert_eq!(w.frames(bob), Vec::<String>::new(), "lost on the way");
    w.h.advance(HubConfig::default().check_every);
    w.settle();
    assert_eq!(w.frames(bob), ["message 1"]);
}

/// The engine loses the lobby twice (two new epochs) while Alice's publish waits: it was
/// stored in the first new epoch, whose news never came, and the hub goes from the old epoch
/// straight to the second. The epoch of her answer was skipped, not one still to come: she is
/// answered once the hub is reset past it.
#[test]
fn an_answer_in_an_epoch_the_feed_skipped_goes() {
    let mut w = World::new();
    let alice = w.member("alice");
    let bob = w.member("bob");
    w.frames(alice);
    let lobby = StreamId::Room(RoomName::new("lobby").expect("valid"));
    let now = w.h.now();
    w.h.engine_mut().inner.lose(now, &lobby);
    w.publish(alice, 1);
    w.engine(|e| e.lose(is_live(1)));
    w.engine(|e| e.release(is_appended(1)));
    let now = w.h.now();
    w.h.engine_mut().inner.lose(now, &lobby);
    w.h.advance(HubConfig::default().check_every);
    w.settle();
    assert_eq!(w.frames(alice), ["streams -", "reply 1 1"]);
    assert_eq!(w.frames(bob), ["streams -"]);
}

/// A direct to a user with no session here is `delivered` when the engine found a session of
/// theirs on another node (an engine shared by nodes says so in `Appended`), and only then.
#[test]
fn a_direct_is_delivered_when_the_engine_finds_its_user_online_elsewhere() {
    let mut w = World::new();
    let alice = w.member("alice");
    for (reference, elsewhere) in [(1, true), (2, false)] {
        let direct = json!({"type": "direct", "ref": reference, "to": "bob", "data": 1});
        w.send(alice, direct);
        w.engine(|e| {
            for event in &mut e.held {
                if let EngineEvent::Appended { online, .. } = event {
                    *online = elsewhere;
                }
            }
        });
        w.settle();
        let reply = w.h.take_json(alice).pop().expect("a reply");
        assert_eq!(reply["ref"], json!(reference));
        assert_eq!(reply["delivered"], json!(elsewhere), "{reply}");
    }
}
