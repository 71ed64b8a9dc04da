//! The hub: routes messages between rooms, users and sessions, with presence, history and resume.
//!
//! It is to a [`Session`](crate::session::Session) what quinn's `Endpoint` is to a `Connection`:
//! one pure state machine for all sessions. Inputs are commands (`connect`, `disconnect`,
//! `publish`, `notify`, `broadcast`) and `handle_request` / `handle_timeout`; outputs are drained
//! with `poll_transmit` ([`Transmit`]s: what to deliver to whom) and `poll_timeout`.
//!
//! - **Rooms**: membership per session, presence per user. A user with several sessions is one
//!   member; they come online with their first session and go offline a grace period after the
//!   last one disconnects (an explicit `leave` is announced at once), so reloads do not flap.
//! - **Streams**: every room, every user's outbox and the broadcast feed is a stream with an epoch,
//!   offsets that grow by one, and a bounded history. A client resumes from a position and gets
//!   exactly the messages after it, or `recovered: false`: never a silent gap.
//! - **Encode once**: a message is encoded into one [`Shared`] delivery, and handed out once as a
//!   [`Transmit::Fanout`] with the member list at that moment (shared, not copied); the driver
//!   pushes one pointer per recipient. Exclude-sender applies when deliveries leave, so every
//!   reader's history is the same.
//! - **Slow consumers** are the driver's to catch, where the bytes pile up: it pushes into each
//!   session's bounded queue without waiting, and when one is full it calls [`Hub::disconnect`]
//!   and closes that connection with 4000; the client resumes from its cursor and loses nothing.
//! - **Bounded**: histories, outboxes, rooms per session and offline outboxes.

mod deliver;
mod invariants;
mod log;
mod room;
mod rooms;
mod slots;
mod streams;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol_str::SmolStr;

use crate::cursor::{Cursor, Position};
use crate::delivery::{SessionId, Shared};
use crate::envelope::{ClientEnvelope, ClientMessage, ErrorCode, Payload, Reply};
use crate::names::{RoomName, UserId};

pub use log::HistoryLimit;

use self::log::Log;
use self::room::Room;
use self::slots::Slots;
use self::streams::StreamKey;

/// The hub's limits and timings. `Default` gives the protocol's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// History kept per room: 1,000 messages or 10 minutes.
    pub room_history: HistoryLimit,
    /// History kept per user outbox: 1,000 messages or 7 days.
    pub outbox_history: HistoryLimit,
    /// History kept of the broadcast feed: 1,000 messages or 10 minutes.
    pub broadcast_history: HistoryLimit,
    /// How long a user whose last session disconnected stays present: 5 s.
    pub presence_grace: Duration,
    /// Most rooms one session may be in: 100. More gets `limit_reached`.
    pub max_rooms_per_session: usize,
    /// Most users without a session the hub remembers: 100,000. It remembers an offline user
    /// while their outbox holds messages, and for the outbox's history age after their last
    /// session left, so a reconnecting client's cursor still finds their stream. A message to an
    /// unknown offline user past the limit gets `limit_reached`; a user leaving past it is forgotten
    /// at once, unless their outbox holds a message no session has received (their next cursor
    /// gets `recovered: false`), so the limit bounds the offline users held.
    pub max_offline_users: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            room_history: HistoryLimit {
                max_messages: 1000,
                max_age: Duration::from_secs(10 * 60),
            },
            outbox_history: HistoryLimit {
                max_messages: 1000,
                max_age: Duration::from_secs(7 * 24 * 3600),
            },
            broadcast_history: HistoryLimit {
                max_messages: 1000,
                max_age: Duration::from_secs(10 * 60),
            },
            presence_grace: Duration::from_secs(5),
            max_rooms_per_session: 100,
            max_offline_users: 100_000,
        }
    }
}

/// A new connection: who it is and what it follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The authenticated user.
    pub user: UserId,
    /// Whether it follows the broadcast feed.
    pub broadcast: bool,
    /// Rooms it joins at once (an SSE stream's `?rooms=`); WebSocket clients `join` instead.
    /// A room named twice is joined and resumed once.
    pub rooms: Vec<RoomName>,
    /// Where it resumes from: the cursor of its previous connection, if any.
    pub cursor: Option<Cursor>,
}

/// What a server-side publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// The message's position in its stream.
    pub id: Position,
    /// How many live sessions it was queued for.
    pub sessions: usize,
}

/// A command the hub refused: the caller's to handle (the session's faults are answered instead).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubError {
    /// A configured limit is reached.
    LimitReached(String),
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LimitReached(what) => write!(f, "limit reached: {what}"),
        }
    }
}

impl std::error::Error for HubError {}

/// Sessions, shared: a snapshot of a member list, copied only when it changes while a fan-out
/// still holds it.
pub type Members = Arc<Vec<SessionId>>;

/// An output of the hub: what to deliver to whom. Deliveries to one session come out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transmit {
    /// Deliveries for one session, in order: answers, a resume's replay. A driver hands them to
    /// the session as one batch ([`Session::deliver_batch`](crate::session::Session::deliver_batch)).
    To {
        /// The session.
        session: SessionId,
        /// What to deliver.
        deliveries: Vec<Shared>,
    },
    /// One delivery for every session in `sessions` except `except` (the publishing session).
    Fanout {
        /// The sessions it was published to, at the moment it was published.
        sessions: Members,
        /// A session of `sessions` that does not get it.
        except: Option<SessionId>,
        /// What to deliver.
        delivery: Shared,
    },
}

impl Transmit {
    /// Calls `f` for each (recipient, delivery) this transmit stands for, in order, skipping the
    /// excluded sender: for a driver that takes deliveries one at a time (the blocking SSE
    /// server of `examples/`). A driver on a runtime hands a `To` batch over whole instead.
    pub fn for_each_delivery(&self, mut f: impl FnMut(SessionId, &Shared)) {
        match self {
            Self::To {
                session,
                deliveries,
            } => deliveries.iter().for_each(|delivery| f(*session, delivery)),
            Self::Fanout {
                sessions,
                except,
                delivery,
            } => recipients(sessions, *except).for_each(|session| f(session, delivery)),
        }
    }
}

/// The routing state machine. See the [module docs](self).
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    slots: Slots,
    rooms: BTreeMap<RoomName, Room>,
    room_logs: BTreeMap<RoomName, Log>,
    users: BTreeMap<UserId, User>,
    all: Log,
    /// Sessions following the broadcast feed; removal swaps the last one in.
    all_followers: Members,
    /// Users with no session (remembered for their messages or their stream position).
    offline_users: usize,
    /// Presence grace periods: (end, room, user).
    graces: BTreeSet<(Instant, RoomName, UserId)>,
    /// When a stream's oldest message ages out: (time, stream).
    expiries: BTreeSet<(Instant, StreamKey)>,
    transmits: VecDeque<Transmit>,
    /// Seeds the epochs: a new stream's epoch comes from this and a counter.
    seed: u32,
    epochs: u32,
}

#[derive(Debug)]
struct User {
    sessions: Members,
    /// When an offline user with an empty outbox is forgotten.
    forget_at: Option<Instant>,
    outbox: Log,
    /// The outbox offset up to which some live session has received every message.
    delivered: u64,
}

impl Hub {
    /// A hub with this configuration. `seed` makes stream epochs unique to this hub instance
    /// (use a random one per process) while runs with the same seed stay reproducible.
    pub fn new(config: HubConfig, seed: u64) -> Self {
        let seed = (seed ^ (seed >> 32)) as u32;
        let mut hub = Self {
            all: Log::new(0, config.broadcast_history),
            config,
            slots: Slots::default(),
            rooms: BTreeMap::new(),
            room_logs: BTreeMap::new(),
            users: BTreeMap::new(),
            all_followers: Members::default(),
            offline_users: 0,
            graces: BTreeSet::new(),
            expiries: BTreeSet::new(),
            transmits: VecDeque::new(),
            seed,
            epochs: 0,
        };
        hub.all = Log::new(hub.next_epoch(), hub.config.broadcast_history);
        hub
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Registers a connection. It receives a `streams` message saying where each stream it
    /// follows resumes, then the messages after each position: missed ones when its cursor is
    /// still covered by history, else a user's outbox messages no session has received yet.
    pub fn connect(&mut self, now: Instant, mut connect: Connect) -> Result<SessionId, HubError> {
        // A room named twice is joined once (and resumed once).
        let mut named = BTreeSet::new();
        connect.rooms.retain(|room| named.insert(room.clone()));
        if connect.rooms.len() > self.config.max_rooms_per_session {
            return Err(HubError::LimitReached(format!(
                "at most {} rooms per session",
                self.config.max_rooms_per_session
            )));
        }
        let session = self.slots.insert(connect.user.clone());
        if self
            .users
            .get(&connect.user)
            .is_some_and(|user| user.sessions.is_empty())
        {
            self.offline_users -= 1;
        }
        let user = self.user_entry(now, &connect.user);
        user.forget_at = None;
        push(&mut user.sessions, session);
        if connect.broadcast {
            let position = push(&mut self.all_followers, session);
            self.slots
                .get_mut(session)
                .expect("just inserted")
                .all_position = Some(position);
        }
        for room in &connect.rooms {
            self.enter_room(session, room);
        }
        self.start_streams(session, &connect);
        Ok(session)
    }

    /// Removes a session: it leaves its rooms, where its user stays present for the grace period.
    /// Unknown sessions are ignored. Fan-outs already handed out may still name it: a driver
    /// skips sessions it no longer has.
    pub fn disconnect(&mut self, now: Instant, session: SessionId) {
        let Some(slot) = self.slots.remove(session) else {
            return;
        };
        let grace = now + self.config.presence_grace;
        for (room, position) in slot.rooms {
            self.exit_room(&slot.user, session, &room, position, Some(grace));
        }
        if let Some(position) = slot.all_position {
            if let Some(moved) = swap_remove(&mut self.all_followers, position) {
                self.slots
                    .get_mut(moved)
                    .expect("followers are live")
                    .all_position = Some(position);
            }
        }
        if let Some(user) = self.users.get_mut(&slot.user) {
            Arc::make_mut(&mut user.sessions).retain(|s| *s != session);
            if user.sessions.is_empty() {
                self.offline_users += 1;
                let undelivered = user.delivered < user.outbox.head().offset;
                if self.offline_users > self.config.max_offline_users && !undelivered {
                    // Past the limit, and every message of the outbox reached a session: the
                    // user is forgotten, and their next cursor gets `recovered: false`.
                    self.users.remove(&slot.user);
                    self.offline_users -= 1;
                } else if user.outbox.is_empty() {
                    self.forget_later(now, &slot.user);
                }
            }
        }
    }

    /// Handles a client's request, forwarded by its session. The answer (a `reply` when the
    /// envelope has a `ref`, or an `error`) is queued for that session; unknown sessions are
    /// ignored.
    pub fn handle_request(&mut self, now: Instant, session: SessionId, request: ClientEnvelope) {
        if self.slots.get(session).is_none() {
            return;
        }
        let ClientEnvelope { reference, message } = request;
        let reference = reference.as_ref();
        let result = match message {
            ClientMessage::Join { room, since } => self.join(session, reference, room, since),
            ClientMessage::Leave { room } => self.leave(session, reference, room),
            ClientMessage::Publish { room, data } => {
                self.publish_from(now, session, reference, room, data)
            }
            ClientMessage::Typing { room, typing } => self.typing(session, reference, room, typing),
            ClientMessage::Direct { to, data } => self.direct(now, session, reference, to, data),
            ClientMessage::Ping => {
                self.answer(session, reference, Reply::to);
                Ok(())
            }
            ClientMessage::App(app) => Err((
                ErrorCode::UnknownType,
                format!("no handler for message type {:?}", app.kind.as_str()),
            )),
        };
        if let Err((code, message)) = result {
            self.queue_error(session, reference.cloned(), code, message);
        }
    }

    /// Publishes `data` to a room from the server: stored in the room's history and queued for
    /// every member session.
    pub fn publish(&mut self, now: Instant, room: RoomName, data: Payload) -> Published {
        self.publish_to_room(now, None, room, data)
    }

    /// Notifies a user: stored in their outbox and queued for every live session of theirs;
    /// delivered when they next connect if they have none.
    pub fn notify(
        &mut self,
        now: Instant,
        user: UserId,
        event: Option<SmolStr>,
        data: Payload,
    ) -> Result<Published, HubError> {
        self.store_in_outbox(now, user, |id| crate::envelope::ServerMessage::Notify {
            id,
            event,
            data,
        })
    }

    /// Broadcasts to every session following the broadcast feed; stored in its history.
    pub fn broadcast(&mut self, now: Instant, event: Option<SmolStr>, data: Payload) -> Published {
        self.broadcast_message(now, event, data)
    }

    /// Ends presence grace periods and ages out history, as of `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_graces(now);
        self.expire_history(now);
    }

    /// The next output: deliveries for one session, or one delivery for many. A driver drains
    /// them after every input, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When `handle_timeout` next has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let grace = self.graces.first().map(|(at, _, _)| *at);
        let expiry = self.expiries.first().map(|(at, _)| *at);
        grace.into_iter().chain(expiry).min()
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.slots.len()
    }

    /// Rooms with members or users in a presence grace period.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Users with a session or a stored outbox.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The user of a live session.
    pub fn user_of(&self, session: SessionId) -> Option<&UserId> {
        self.slots.get(session).map(|slot| &slot.user)
    }

    /// The users present in a room, in order.
    pub fn members(&self, room: &RoomName) -> Vec<UserId> {
        self.rooms.get(room).map(Room::present).unwrap_or_default()
    }

    /// The rooms a session is in.
    pub fn rooms_of(&self, session: SessionId) -> Vec<RoomName> {
        self.slots
            .get(session)
            .map(|slot| slot.rooms.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Messages and bytes held in all histories and outboxes.
    pub fn stored(&self) -> (usize, usize) {
        let logs = self
            .room_logs
            .values()
            .chain(self.users.values().map(|u| &u.outbox))
            .chain([&self.all]);
        logs.fold((0, 0), |(n, bytes), log| {
            (n + log.len(), bytes + log.bytes())
        })
    }

    fn next_epoch(&mut self) -> u64 {
        self.epochs = self.epochs.wrapping_add(1);
        u64::from(mix32(self.seed.wrapping_add(self.epochs)))
    }

    /// An offline user with an empty outbox is remembered for the outbox's history age, so the
    /// next connection's cursor finds the same stream, then forgotten.
    fn forget_later(&mut self, now: Instant, user: &UserId) {
        let at = now + self.config.outbox_history.max_age;
        if let Some(entry) = self.users.get_mut(user) {
            entry.forget_at = Some(at);
            self.expiries.insert((at, StreamKey::User(user.clone())));
        }
    }

    fn user_entry(&mut self, _now: Instant, user: &UserId) -> &mut User {
        if !self.users.contains_key(user) {
            let outbox = Log::new(self.next_epoch(), self.config.outbox_history);
            self.users.insert(
                user.clone(),
                User {
                    sessions: Members::default(),
                    forget_at: None,
                    outbox,
                    delivered: 0,
                },
            );
        }
        self.users.get_mut(user).expect("just made")
    }
}

/// A request refused: the code and message of the `error` answer.
type Refusal = (ErrorCode, String);

/// The sessions a [`Transmit::Fanout`] goes to: every one of `sessions` but `except`.
pub fn recipients(
    sessions: &Members,
    except: Option<SessionId>,
) -> impl Iterator<Item = SessionId> + '_ {
    sessions
        .iter()
        .copied()
        .filter(move |&session| Some(session) != except)
}

/// Appends `session` to a member list; returns its position.
fn push(members: &mut Members, session: SessionId) -> u32 {
    let members = Arc::make_mut(members);
    members.push(session);
    u32::try_from(members.len() - 1).unwrap_or(u32::MAX)
}

/// Removes the member at `position` by swapping the last one in; returns the one moved, if any.
fn swap_remove(members: &mut Members, position: u32) -> Option<SessionId> {
    let members = Arc::make_mut(members);
    let position = position as usize;
    members.swap_remove(position);
    members.get(position).copied()
}

/// A bijection on u32 (a finalizer of MurmurHash3): distinct counters give distinct epochs.
fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

#[cfg(test)]
mod tests;
