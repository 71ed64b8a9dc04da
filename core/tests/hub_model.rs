//! The hub against a reference model, under random operation sequences: connect, disconnect,
//! join (resuming from the last message seen), leave, publish (by a session or the server),
//! direct, time passing, and tabs that stop reading until their driver drops them as slow
//! consumers.
//!
//! The hub runs with its sessions in the core's harness (`roomcast_core::harness`), as a driver
//! runs it; a tab that stops reading leaves its frames in its session, whose queue holds
//! `BACKLOG` of them before it closes as a slow consumer.
//!
//! Clients are browser tabs that survive their connections: each remembers the last message it
//! saw in each room and in its user's outbox, and resumes from there. After every step:
//! `check_invariants()` holds; every message a tab receives in a stream directly follows the one
//! before it (exactly once, in order, no gap); a drained tab in a room has seen up to the room's
//! last message; a resume is `recovered` exactly when the model says history covers it; and
//! presence equals the model's (member sessions, plus users in their grace period).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use roomcast_core::cursor::{Cursor, Position, Stream};
use roomcast_core::delivery::{SessionId, Shared};
use roomcast_core::envelope::{ClientEnvelope, ClientMessage, Codec, Payload, Ref, ServerMessage};
use roomcast_core::harness::Harness;
use roomcast_core::hub::{Connect, HistoryLimit, Hub, HubConfig, HubEvent};
use roomcast_core::names::{RoomName, UserId};
use roomcast_core::session::{Session, SessionConfig, SessionKind};

const TABS: usize = 6;
const USERS: usize = 3;
const ROOMS: usize = 2;
const GRACE: Duration = Duration::from_secs(5);
const HISTORY: HistoryLimit = HistoryLimit {
    max_messages: 6,
    max_bytes: 1 << 20,
    max_age: Duration::from_secs(60),
};

#[derive(Clone, Debug)]
enum Op {
    Connect(usize),
    Disconnect(usize),
    Join(usize, usize),
    Leave(usize, usize),
    Publish(usize, usize),
    ServerPublish(usize),
    Direct(usize, usize),
    Advance(u64),
    /// The tab stops reading (or starts again). Past `BACKLOG` unread frames, its session closes
    /// as a slow consumer, the driver drops its connection, and the tab must resume.
    Stall(usize),
}

const BACKLOG: usize = 8;

fn op() -> impl Strategy<Value = Op> {
    let tab = 0..TABS;
    prop_oneof![
        3 => tab.clone().prop_map(Op::Connect),
        1 => tab.clone().prop_map(Op::Disconnect),
        3 => (tab.clone(), 0..ROOMS).prop_map(|(t, r)| Op::Join(t, r)),
        1 => (tab.clone(), 0..ROOMS).prop_map(|(t, r)| Op::Leave(t, r)),
        4 => (tab.clone(), 0..ROOMS).prop_map(|(t, r)| Op::Publish(t, r)),
        2 => (0..ROOMS).prop_map(Op::ServerPublish),
        2 => (tab, 0..USERS).prop_map(|(t, u)| Op::Direct(t, u)),
        2 => (0u64..20_000).prop_map(Op::Advance),
        1 => (0..TABS).prop_map(Op::Stall),
    ]
}

/// A browser tab: its user, its current session, and what it has seen.
#[derive(Default)]
struct Tab {
    session: Option<SessionId>,
    rooms: BTreeSet<usize>,
    /// Last message seen per room, and in the user's outbox.
    seen: BTreeMap<usize, Position>,
    seen_user: Option<Position>,
    stalled: bool,
}

struct Sim {
    server: Harness,
    codec: Codec,
    tabs: Vec<Tab>,
    /// Per room: (offset, time) of every message, to know what history still covers.
    published: Vec<Vec<(u64, Instant)>>,
    /// Per room: the epoch of its current history, once seen.
    epochs: Vec<Option<u64>>,
    /// Per room: since when its stream has been still (made, published to, or left by its last
    /// member session), to know when the engine forgets it.
    still_since: Vec<Option<Instant>>,
    /// Users in a presence grace period: (room, user) -> end.
    grace: BTreeMap<(usize, usize), Instant>,
    refs: u64,
    /// Refs of joins sent by a tab already in the room.
    rejoins: BTreeSet<u64>,
    /// Refs of the other joins, the `since` each was sent with, and whether history covered
    /// it then. A stalled tab reads the reply later, when its own position may have moved on
    /// (it may read, from before a leave, messages the join then replays) and history may have
    /// aged past it: the hub answered as of the join.
    joins: BTreeMap<u64, (Option<Position>, bool)>,
}

fn user_of(tab: usize) -> usize {
    tab % USERS
}

fn user(u: usize) -> UserId {
    UserId::new(&format!("user{u}")).expect("valid")
}

fn room(r: usize) -> RoomName {
    RoomName::new(&format!("room{r}")).expect("valid")
}

#[allow(clippy::disallowed_methods)] // a test needs one real instant to offset from
fn start() -> Instant {
    Instant::now()
}

impl Sim {
    fn new() -> Self {
        let config = HubConfig {
            room_history: HISTORY,
            presence_grace: GRACE,
            ..HubConfig::default()
        };
        // The hub is under test: sessions that neither limit the rate nor ping; a queue of
        // `BACKLOG` frames.
        let sessions = SessionConfig {
            queue_frames: BACKLOG,
            rate_per_sec: 0,
            ping_interval: Duration::ZERO,
            ..SessionConfig::default()
        };
        Self {
            server: Harness::new(Hub::new(config), start())
                .with_session_config(sessions, Codec::new()),
            codec: Codec::new(),
            tabs: (0..TABS).map(|_| Tab::default()).collect(),
            published: vec![Vec::new(); ROOMS],
            epochs: vec![None; ROOMS],
            still_since: vec![None; ROOMS],
            grace: BTreeMap::new(),
            refs: 0,
            rejoins: BTreeSet::new(),
            joins: BTreeMap::new(),
        }
    }

    fn request(&mut self, tab: usize, message: ClientMessage) {
        let Some(session) = self.tabs[tab].session else {
            return;
        };
        self.refs += 1;
        let request = ClientEnvelope {
            reference: Some(Ref::Number(self.refs)),
            message,
        };
        self.server
            .handle_text(session, &request.encode())
            .expect("a WebSocket session takes frames");
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Connect(t) if self.tabs[t].session.is_none() => {
                let mut cursor = Cursor::new();
                if let Some(position) = self.tabs[t].seen_user {
                    cursor.set(Stream::User, position).expect("one stream");
                }
                let connect = Connect {
                    access: Default::default(),
                    user: user(user_of(t)),
                    broadcast: false,
                    rooms: vec![],
                    cursor: Some(cursor),
                };
                self.tabs[t].session = Some(
                    self.server
                        .connect(SessionKind::WebSocket, connect)
                        .expect("no rooms, no limit"),
                );
            }
            Op::Disconnect(t) => {
                if let Some(session) = self.tabs[t].session {
                    self.server.remove(session);
                    self.lost_session(t);
                }
            }
            Op::Join(t, r) if self.tabs[t].session.is_some() => {
                let since = self.tabs[t].seen.get(&r).copied();
                if self.tabs[t].rooms.insert(r) {
                    let covered = since.is_some_and(|since| self.covered(r, since));
                    self.joins.insert(self.refs + 1, (since, covered));
                } else {
                    self.rejoins.insert(self.refs + 1);
                }
                self.grace.remove(&(r, user_of(t)));
                self.request(
                    t,
                    ClientMessage::Join {
                        token: None,
                        room: room(r),
                        since,
                    },
                );
            }
            Op::Leave(t, r)
                if self.tabs[t].rooms.contains(&r) && self.tabs[t].session.is_some() =>
            {
                self.tabs[t].rooms.remove(&r);
                self.request(t, ClientMessage::Leave { room: room(r) });
            }
            Op::Publish(t, r)
                if self.tabs[t].rooms.contains(&r) && self.tabs[t].session.is_some() =>
            {
                self.record(r);
                let data = Payload::from_json("1").expect("JSON");
                self.request(
                    t,
                    ClientMessage::Publish {
                        room: room(r),
                        data,
                    },
                );
            }
            Op::ServerPublish(r) => {
                self.record(r);
                let data = Payload::from_json("2").expect("JSON");
                let ticket = self
                    .server
                    .feed_hub(|hub, now| hub.publish(now, room(r), data));
                let id = match self.server.poll_hub_event() {
                    Some(HubEvent::Done {
                        ticket: done,
                        result,
                    }) if done == ticket => result.expect("stored").id,
                    other => panic!("no result for {ticket:?}: {other:?}"),
                };
                self.epochs[r] = Some(id.epoch);
            }
            Op::Direct(t, u) if self.tabs[t].session.is_some() => {
                let data = Payload::from_json("3").expect("JSON");
                self.request(t, ClientMessage::Direct { to: user(u), data });
            }
            Op::Stall(t) if self.tabs[t].session.is_some() => {
                self.tabs[t].stalled = !self.tabs[t].stalled;
            }
            Op::Advance(ms) => self.server.advance(Duration::from_millis(ms)),
            _ => {}
        }
    }

    /// A tab's session ended: its user's presence in its rooms enters the grace period when it
    /// was their last session there.
    fn lost_session(&mut self, t: usize) {
        let rooms = std::mem::take(&mut self.tabs[t].rooms);
        self.tabs[t].session = None;
        self.tabs[t].stalled = false;
        for r in rooms {
            if !self.member_sessions(r).contains(&user_of(t)) {
                self.grace
                    .insert((r, user_of(t)), self.server.now() + GRACE);
            }
        }
    }

    fn member_sessions(&self, r: usize) -> BTreeSet<usize> {
        (0..TABS)
            .filter(|&t| self.tabs[t].session.is_some() && self.tabs[t].rooms.contains(&r))
            .map(user_of)
            .collect()
    }

    /// Does what a driver does with a session closed as a slow consumer (drops its connection),
    /// then every tab that reads takes what its session sent.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        for t in 0..TABS {
            if let Some(session) = self.tabs[t].session
                && !self.server.session(session).is_some_and(Session::is_open)
            {
                self.server.remove(session);
                self.lost_session(t);
            }
        }
        for t in 0..TABS {
            if let (Some(session), false) = (self.tabs[t].session, self.tabs[t].stalled) {
                for delivery in self.server.take_frames(session) {
                    self.receive(t, &delivery)?;
                }
            }
        }
        Ok(())
    }

    /// A tab reads one frame.
    fn receive(&mut self, t: usize, delivery: &Shared) -> Result<(), TestCaseError> {
        let message = self
            .codec
            .decode_server(delivery.frame.as_str())
            .expect("the hub sends valid frames");
        let room_index = |name: &RoomName| name.as_str()[4..].parse::<usize>().expect("roomN");
        match message {
            ServerMessage::Message { room, id, .. } => {
                self.epochs[room_index(&room)] = Some(id.epoch);
                advance(&mut self.tabs[t].seen, room_index(&room), id)?
            }
            ServerMessage::Direct { id, .. } | ServerMessage::Receipt { id, .. } => {
                let seen = self.tabs[t].seen_user;
                prop_assert!(
                    seen.is_none_or(|s| s.epoch != id.epoch || s.offset + 1 == id.offset),
                    "outbox gap: {seen:?} then {id}"
                );
                self.tabs[t].seen_user = Some(id);
            }
            ServerMessage::Reply(reply) => {
                if let (Some(room), Some(id)) = (&reply.room, reply.id) {
                    let r = room_index(room);
                    self.epochs[r] = Some(id.epoch);
                    if reply.members.is_some() {
                        let rejoin =
                            matches!(reply.reference, Ref::Number(n) if self.rejoins.remove(&n));
                        if rejoin {
                            // Already a member: nothing replayed, and every message up to the
                            // head has arrived ahead of this reply.
                            prop_assert_eq!(reply.replayed.unwrap_or(0), 0);
                            prop_assert_eq!(
                                self.tabs[t].seen.get(&r),
                                Some(&id),
                                "re-join in room{}",
                                r
                            );
                        } else {
                            // A join: `recovered` is what history covers after the `since` it
                            // was sent with, and a recovered join resumes from there.
                            let (since, covered) = match reply.reference {
                                Ref::Number(n) => self.joins.remove(&n),
                                _ => None,
                            }
                            .expect("a reply to a join the model sent");
                            // Without `since`, the reply says nothing of recovery.
                            prop_assert_eq!(reply.recovered.is_some(), since.is_some());
                            if let (Some(recovered), Some(since)) = (reply.recovered, since) {
                                prop_assert_eq!(recovered, covered, "room{} from {}", r, since);
                                if recovered {
                                    prop_assert_eq!(id, since);
                                }
                            }
                        }
                        // The protocol: the position in the room is the reply's `id`, then each
                        // message's as it arrives.
                        self.tabs[t].seen.insert(r, id);
                    } else {
                        // A publish: the sender's own message, which it does not receive.
                        advance(&mut self.tabs[t].seen, r, id)?;
                    }
                }
            }
            ServerMessage::Streams { streams } => {
                for start in streams {
                    if start.stream == Stream::User {
                        self.tabs[t].seen_user = Some(start.id);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the room's history still holds every message after `since`.
    fn covered(&self, r: usize, since: Position) -> bool {
        if self.epochs[r] != Some(since.epoch) {
            return false;
        }
        let all = &self.published[r];
        let head = all.len() as u64;
        let mut kept = all
            .iter()
            .rev()
            .take(HISTORY.max_messages)
            .filter(|(_, at)| self.server.now().saturating_duration_since(*at) < HISTORY.max_age);
        let first = kept.next_back().map_or(head + 1, |(offset, _)| *offset);
        since.offset <= head && since.offset + 1 >= first.min(head + 1)
    }

    /// A message is about to be stored in room `r`.
    fn record(&mut self, r: usize) {
        let offset = self.published[r].len() as u64 + 1;
        self.published[r].push((offset, self.server.now()));
        self.still_since[r] = Some(self.server.now());
    }

    /// After every step: grace periods end, and a room no session is in whose stream holds
    /// nothing and has been still for the history's age is forgotten by the engine, so its
    /// next message starts a new epoch at offset 1. (Still: since it was made, published to,
    /// left by its last member session, or emptied, its last message's age reached.)
    fn settle(&mut self) {
        let now = self.server.now();
        self.grace.retain(|_, end| *end > now);
        for r in 0..ROOMS {
            if !self.member_sessions(r).is_empty() {
                self.still_since[r] = None;
                continue;
            }
            let since = *self.still_since[r].get_or_insert(now);
            let emptied = self.published[r]
                .last()
                .map(|(_, at)| *at + HISTORY.max_age);
            let still = emptied.map_or(since, |emptied| since.max(emptied));
            if now.saturating_duration_since(still) >= HISTORY.max_age {
                self.published[r].clear();
                self.epochs[r] = None;
            }
        }
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        if let Err(broken) = self.server.hub().check_invariants() {
            return Err(TestCaseError::fail(broken));
        }
        prop_assert_eq!(
            self.server.strays(),
            0,
            "deliveries to sessions not in the hub"
        );
        for r in 0..ROOMS {
            // Presence: member sessions' users, plus those in their grace period.
            let mut expected: BTreeSet<usize> = self.member_sessions(r);
            expected.extend(
                self.grace
                    .keys()
                    .filter(|(gr, _)| *gr == r)
                    .map(|(_, u)| *u),
            );
            let actual: BTreeSet<usize> = self
                .server
                .hub()
                .members(&room(r))
                .iter()
                .map(|u| u.as_str()[4..].parse().expect("userN"))
                .collect();
            prop_assert_eq!(&actual, &expected, "presence in room{}", r);
            // Every drained member tab has seen up to the room's last message.
            let head = self.published[r].len() as u64;
            for (t, tab) in self.tabs.iter().enumerate() {
                if tab.session.is_some() && !tab.stalled && tab.rooms.contains(&r) {
                    let seen = tab.seen.get(&r).map(|p| p.offset);
                    prop_assert_eq!(seen, Some(head), "tab {} in room{}", t, r);
                }
            }
        }
        Ok(())
    }
}

/// A message at `id` must directly follow the last one seen in the room.
fn advance(
    seen: &mut BTreeMap<usize, Position>,
    r: usize,
    id: Position,
) -> Result<(), TestCaseError> {
    if let Some(last) = seen.get(&r) {
        prop_assert!(
            last.epoch == id.epoch && last.offset + 1 == id.offset,
            "room{r}: {last} then {id}"
        );
    }
    seen.insert(r, id);
    Ok(())
}

/// Runs `ops` against the model, checking after every step.
fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut sim = Sim::new();
    for op in ops {
        sim.apply(op);
        sim.settle();
        sim.drain()?;
        sim.check()?;
    }
    sim.drain()?;
    sim.settle();
    sim.check()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_hub_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }
}

/// Found by the proptest in a CI run: a tab that stops reading, then leaves and joins again,
/// reads a message from before its leave, and then the same message replayed after the join
/// (which it sent with the position it had read to). The join resumes from that position.
#[test]
fn a_stalled_tab_that_leaves_and_joins_again_resumes_from_what_it_sent() {
    let ops = [
        Op::Connect(0),
        Op::Join(0, 0),
        Op::Stall(0),
        Op::ServerPublish(0),
        Op::Leave(0, 0),
        Op::Join(0, 0),
        Op::Stall(0),
    ];
    if let Err(error) = run(&ops) {
        panic!("{error}");
    }
}

/// Found by the proptest in a CI run: a stalled tab's join is answered `recovered: true` (its
/// position was covered then), and the tab reads the reply a minute later, when history has
/// aged past that position. The hub answered as of the join, and so must the model.
#[test]
fn a_join_read_late_is_judged_as_of_when_it_was_answered() {
    let ops = [
        Op::Connect(4),
        Op::Join(4, 0),
        Op::Stall(4),
        Op::Publish(4, 0),
        Op::Leave(4, 0),
        Op::Join(4, 0),
        Op::Advance(11547),
        Op::Advance(17092),
        Op::Advance(15969),
        Op::Advance(15392),
        Op::Stall(4),
    ];
    if let Err(error) = run(&ops) {
        panic!("{error}");
    }
}
