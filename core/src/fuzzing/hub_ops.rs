//! The hub under any sequence of connects, requests, server publishes and time, with small
//! limits and histories so that every limit and expiry is reached, and cursors that are old,
//! made up or from another epoch.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::input::Input;
use crate::cursor::{Cursor, Position, Stream};
use crate::delivery::{SessionId, Shared};
use crate::engine::{MemoryEngine, MemoryLimits, StreamId};
use crate::envelope::{ClientEnvelope, ClientMessage, Codec, Payload, Ref, ServerMessage};
use crate::harness::Harness;
use crate::hub::{Connect, HistoryLimit, Hub, HubConfig, HubEvent};
use crate::names::{RoomName, UserId};
use crate::session::{Session, SessionConfig, SessionKind};

const SLOTS: usize = 8;
const USERS: usize = 4;
const ROOMS: usize = 3;

/// Drives a [`Hub`] and its sessions ([`Harness`]) with the program the input spells; after
/// every step, with every session's frames read:
/// - `check_invariants()` holds;
/// - every transmit goes to live sessions only, and every session stays open;
/// - every request with a `ref` is answered exactly once, to the session that sent it;
/// - within one epoch, each session receives a stream's positions in increasing order, each
///   at most once;
/// - stored messages stay within the history budgets (rooms, outboxes and broadcast), and
///   remembered users within the live ones plus `max_offline_users`;
/// - a server-side read ([`Hub::read_stream`]) is answered once, with at most the records
///   asked for, consecutive and right after the position when the view covers it, none
///   otherwise.
pub fn hub_ops(input: &[u8]) {
    let mut input = Input::new(input);
    let mut run = Run::new(&mut input);
    while !input.is_empty() {
        run.step(&mut input);
        run.read();
        run.check();
    }
}

struct Run {
    server: Harness,
    codec: Codec,
    /// The session in each slot, and its user.
    slots: [Option<(SessionId, usize)>; SLOTS],
    /// Positions seen in any stream, to resume from (old ones included).
    seen: Vec<Position>,
    /// Per session and stream: the last position received.
    last: BTreeMap<(SessionId, Stream), Position>,
    /// Refs awaiting their answer: ref -> the session that sent it.
    pending: BTreeMap<u64, SessionId>,
    answered: BTreeSet<u64>,
    next_ref: u64,
}

impl Run {
    #[allow(clippy::disallowed_methods)] // one real instant to offset from; only offsets matter
    fn new(input: &mut Input<'_>) -> Self {
        let mut history = || HistoryLimit {
            max_messages: input.below(8),
            max_bytes: 1 << 20,
            max_age: input.millis(60_000),
        };
        let config = HubConfig {
            room_history: history(),
            outbox_history: history(),
            broadcast_history: history(),
            presence_grace: input.millis(10_000),
            max_rooms_per_session: input.below(ROOMS + 1),
            ..HubConfig::default()
        };
        let limits = MemoryLimits {
            max_outboxes: input.below(USERS + 1),
            ..MemoryLimits::default()
        };
        let engine = MemoryEngine::new(limits, u64::from(input.byte()));
        let hub = Hub::new(config);
        // The hub is under test: sessions that neither limit the rate nor ping, read after every
        // step, so each stays open and every request reaches the hub.
        let sessions = SessionConfig {
            rate_per_sec: 0,
            ping_interval: Duration::ZERO,
            ..SessionConfig::default()
        };
        Self {
            server: Harness::with_engine(hub, engine, Instant::now())
                .with_session_config(sessions, Codec::new()),
            codec: Codec::new(),
            slots: [None; SLOTS],
            seen: Vec::new(),
            last: BTreeMap::new(),
            pending: BTreeMap::new(),
            answered: BTreeSet::new(),
            next_ref: 0,
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let slot = input.below(SLOTS);
        match input.byte() % 13 {
            0 => self.connect(input, slot),
            1 => {
                if let Some((session, _)) = self.slots[slot].take() {
                    self.server.remove(session);
                }
            }
            2 => {
                let (room, since) = (room(input), self.position(input));
                if let Some((session, _)) = self.slots[slot] {
                    // A join restarts the room's stream at the client's choice of position.
                    self.last.remove(&(session, Stream::Room(room.clone())));
                }
                self.request(
                    slot,
                    ClientMessage::Join {
                        token: None,
                        room,
                        since,
                    },
                );
            }
            3 => self.request(slot, ClientMessage::Leave { room: room(input) }),
            4 => self.request(slot, publish(input)),
            5 => {
                let typing = input.byte() & 1 == 0;
                self.request(
                    slot,
                    ClientMessage::Typing {
                        room: room(input),
                        typing,
                    },
                );
            }
            6 => {
                let to = user(input.below(USERS));
                self.request(slot, ClientMessage::Direct { to, data: data() });
            }
            7 => {
                let room = room(input);
                self.server
                    .feed_hub(|hub, now| hub.publish(now, room, data()));
            }
            8 => {
                let user = user(input.below(USERS));
                self.server
                    .feed_hub(|hub, now| hub.notify(now, user, None, data()));
            }
            9 => {
                self.server
                    .feed_hub(|hub, now| hub.broadcast(now, None, data()));
            }
            10 => {
                // Time passes: by a random step, or exactly to the next timer of the hub.
                let now = self.server.now();
                let at = match (input.byte() & 1, self.server.hub().poll_timeout()) {
                    (0, Some(at)) if at > now => at,
                    _ => now + input.millis(20_000),
                };
                self.server.advance_to(at);
                if let Some(next) = self.server.hub().poll_timeout() {
                    assert!(
                        next > self.server.now(),
                        "a timer at or before now after handle_timeout"
                    );
                }
            }
            11 => self.read_room(input),
            _ => {
                // A request without a ref: acted on, never answered with a reply.
                if let Some((session, _)) = self.slots[slot] {
                    let message = ClientMessage::Join {
                        token: None,
                        room: room(input),
                        since: None,
                    };
                    self.send(session, None, message);
                }
            }
        }
    }

    fn connect(&mut self, input: &mut Input<'_>, slot: usize) {
        if self.slots[slot].is_some() {
            return;
        }
        let u = input.below(USERS);
        let rooms = (0..input.below(ROOMS + 1)).map(|_| room(input)).collect();
        let mut cursor = Cursor::new();
        for _ in 0..input.below(4) {
            let stream = match input.below(3) {
                0 => Stream::User,
                1 => Stream::All,
                _ => Stream::Room(room(input)),
            };
            if let Some(position) = self.position(input) {
                cursor.set(stream, position).expect("a few streams");
            }
        }
        let connect = Connect {
            access: Default::default(),
            user: user(u),
            broadcast: input.byte() & 1 == 0,
            rooms,
            cursor: (!cursor.is_empty()).then_some(cursor),
        };
        if let Ok(session) = self.server.connect(SessionKind::WebSocket, connect) {
            assert!(
                !self.slots.iter().flatten().any(|(s, _)| *s == session),
                "a live session's id reused"
            );
            self.slots[slot] = Some((session, u));
        }
    }

    /// A server-side read of a room, and its answer checked: whole, or nothing.
    fn read_room(&mut self, input: &mut Input<'_>) {
        let stream = StreamId::Room(room(input));
        let (after, max) = (self.position(input), input.below(6));
        let ticket = self
            .server
            .feed_hub(|hub, _| hub.read_stream(stream, after, max));
        let mut answers = Vec::new();
        while let Some(event) = self.server.poll_hub_event() {
            if let HubEvent::Read { ticket: t, result } = event
                && t == ticket
            {
                answers.push(result);
            }
        }
        assert_eq!(
            answers.len(),
            1,
            "a read is answered once, at once by memory"
        );
        let Some(Ok(page)) = answers.pop() else {
            return; // refused: unavailable (too much pending), which a memory engine never is
        };
        assert!(page.records.len() <= max, "more records than asked for");
        match after {
            Some(after) if page.view.covers(after) => {
                for (i, record) in page.records.iter().enumerate() {
                    assert_eq!(
                        record.offset,
                        after.offset + 1 + i as u64,
                        "a gap in a read"
                    );
                }
                let last = page.records.last().map_or(after.offset, |r| r.offset);
                assert!(last <= page.view.head.offset, "a record past the head");
            }
            _ => assert!(
                page.records.is_empty(),
                "records for a position not covered"
            ),
        }
    }

    /// None, a position seen before (maybe long gone), or one made up.
    fn position(&self, input: &mut Input<'_>) -> Option<Position> {
        match input.below(3) {
            0 => None,
            1 if !self.seen.is_empty() => Some(self.seen[input.below(self.seen.len())]),
            _ => Some(Position {
                epoch: input.below(4) as u64,
                offset: input.below(20) as u64,
            }),
        }
    }

    fn request(&mut self, slot: usize, message: ClientMessage) {
        let Some((session, _)) = self.slots[slot] else {
            return;
        };
        self.next_ref += 1;
        self.pending.insert(self.next_ref, session);
        self.send(session, Some(Ref::Number(self.next_ref)), message);
    }

    /// A request from the client of `session`, as the frame it sends.
    fn send(&mut self, session: SessionId, reference: Option<Ref>, message: ClientMessage) {
        let frame = ClientEnvelope { reference, message }.encode();
        self.server
            .handle_text(session, &frame)
            .expect("a WebSocket session takes frames");
    }

    /// Every live session's client reads what its session sent.
    fn read(&mut self) {
        let live: Vec<SessionId> = self.slots.iter().flatten().map(|(s, _)| *s).collect();
        for session in live {
            for delivery in self.server.take_frames(session) {
                self.receive(session, &delivery);
            }
        }
    }

    fn receive(&mut self, session: SessionId, delivery: &Shared) {
        if let Some((stream, position)) = &delivery.stream {
            self.seen.push(*position);
            let key = (session, stream.clone());
            if let Some(last) = self.last.insert(key, *position) {
                assert!(
                    last.epoch != position.epoch || last.offset < position.offset,
                    "{session} got {stream:?} {position} after {last}"
                );
            }
        }
        let message = self
            .codec
            .decode_server(delivery.frame.as_str())
            .expect("the hub sends valid frames");
        let reference = match message {
            ServerMessage::Reply(reply) => Some(reply.reference),
            ServerMessage::Error { reference, .. } => reference,
            _ => None,
        };
        match reference {
            Some(Ref::Number(n)) => {
                assert_eq!(
                    self.pending.remove(&n),
                    Some(session),
                    "ref {n}: a stray answer"
                );
                assert!(self.answered.insert(n), "ref {n} answered twice");
            }
            Some(other) => panic!("an answer to {other:?}, never sent"),
            None => {}
        }
    }

    fn check(&mut self) {
        if let Err(broken) = self.server.hub().check_invariants() {
            panic!("hub invariant: {broken}");
        }
        assert_eq!(
            self.server.strays(),
            0,
            "deliveries to sessions not in the hub"
        );
        assert!(
            self.pending.is_empty(),
            "refs without an answer: {:?}",
            self.pending
        );
        let live: Vec<_> = self.slots.iter().flatten().collect();
        for (session, _) in &live {
            let open = self.server.session(*session).is_some_and(Session::is_open);
            assert!(open, "{session} closed behind the program's back");
        }
        assert_eq!(self.server.hub().session_count(), live.len());
        let config = self.server.hub().config();
        let budget = ROOMS * config.room_history.max_messages
            + USERS * config.outbox_history.max_messages
            + config.broadcast_history.max_messages;
        let stored = self.server.engine().stats();
        assert!(
            stored.records <= budget,
            "{} stored, over {budget}",
            stored.records
        );
        let online: BTreeSet<_> = live.iter().map(|(_, u)| u).collect();
        assert!(self.server.hub().user_count() <= online.len());
        assert!(self.server.hub().room_count() <= ROOMS);
        // Bounded bookkeeping of this run: forget what old sessions received.
        self.last
            .retain(|(s, _), _| live.iter().any(|(l, _)| l == s));
        if self.seen.len() > 64 {
            self.seen.drain(..32);
        }
    }
}

fn user(u: usize) -> UserId {
    UserId::new(&format!("u{u}")).expect("valid")
}

fn room(input: &mut Input<'_>) -> RoomName {
    RoomName::new(&format!("r{}", input.below(ROOMS))).expect("valid")
}

fn data() -> Payload {
    Payload::from_json("1").expect("JSON")
}

fn publish(input: &mut Input<'_>) -> ClientMessage {
    ClientMessage::Publish {
        room: room(input),
        data: data(),
    }
}
