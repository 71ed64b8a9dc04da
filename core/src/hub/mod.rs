//! The hub: routes messages between rooms, users and sessions, with presence; its streams live
//! in an engine.
//!
//! It is to a [`Session`](crate::session::Session) what quinn's `Endpoint` is to a `Connection`:
//! one pure state machine for all sessions. Inputs are commands (`connect`, `disconnect`,
//! `publish`, `notify`, `broadcast`) and `handle_request`, `handle_engine`, `handle_timeout`;
//! outputs are drained with `poll_transmit` ([`Transmit`]s: what to deliver to whom),
//! `poll_engine` ([`Operation`]s for the engine), `poll_event` ([`HubEvent`]s: the results of
//! the commands) and `poll_timeout`.
//!
//! - **Rooms**: membership per session, presence per user. A user with several sessions is one
//!   member; they come online with their first session and go offline a grace period after the
//!   last one disconnects (an explicit `leave` is announced at once), so reloads do not flap.
//! - **Streams**: every room, every user's outbox and the broadcast feed is a stream with an
//!   epoch, offsets that grow by one, and a bounded history, kept by an engine
//!   ([`crate::engine`]). The hub appends, reads and follows; it delivers only what comes back
//!   [`Live`](crate::engine::EngineEvent::Live) (or from a read that fills a gap), in offset
//!   order, each offset once. A client resumes from a position and gets exactly the messages
//!   after it, or `recovered: false`: never a silent gap.
//! - **Encode once**: a record is encoded once into one [`Shared`] delivery, kept with the
//!   record for every replay, and handed out once as a [`Transmit::Fanout`] with the member list
//!   at that moment (shared, not copied); the driver pushes one pointer per recipient.
//!   Exclude-sender applies when deliveries leave, so every reader's history is the same.
//! - **Never waiting**: an engine answers when it answers. What waits for it (a publish's reply,
//!   a join's replay, a connection's start) waits in the hub, bounded: past
//!   [`HubConfig::max_pending`] operations in flight, an append is answered `unavailable`.
//! - **Slow consumers** are the driver's to catch, where the bytes pile up: it pushes into each
//!   session's bounded queue without waiting, and when one is full it calls [`Hub::disconnect`]
//!   and closes that connection with 4000; the client resumes from its cursor and loses nothing.

mod api;
mod config;
mod deliver;
mod feeds;
mod invariants;
mod marks;
mod ops;
mod outbox;
mod policy;
mod presence;
mod remote;
mod room;
mod rooms;
mod slots;
mod starts;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use smol_str::SmolStr;

use crate::access::Access;
use crate::cursor::{Cursor, Position};
use crate::delivery::{SessionId, Shared};
use crate::engine::{EngineEvent, OpId, Operation, Retention, StreamId};
use crate::envelope::{ClientEnvelope, ClientMessage, ErrorCode, Payload, Reply};
use crate::names::{RoomName, UserId};

pub use self::api::{MemberPresence, RoomSummary, StreamPage, UserSession};
pub use self::config::{HistoryLimit, HubConfig};
use self::feeds::Feed;
use self::ops::Pending;
use self::room::Room;
use self::slots::Slots;
use self::starts::Start;

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
    /// What its credentials grant, checked against the namespaces' policies for `rooms` now
    /// and for every later `join` and `publish`.
    pub access: Access,
}

/// What a server-side publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// The message's position in its stream.
    pub id: Position,
    /// How many live sessions of this hub it is for.
    pub sessions: usize,
}

/// A command the hub refused or could not carry out: the caller's to handle (the session's
/// faults are answered instead).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubError {
    /// A configured limit is reached.
    LimitReached(String),
    /// The engine cannot take it now: try again later.
    Unavailable(String),
    /// The policy of the room's namespace does not allow it (or the namespace is unknown).
    Unauthorized(String),
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LimitReached(what) => write!(f, "limit reached: {what}"),
            Self::Unavailable(why) => write!(f, "unavailable: {why}"),
            Self::Unauthorized(why) => write!(f, "unauthorized: {why}"),
        }
    }
}

impl std::error::Error for HubError {}

/// A server-side command's number: its result comes back as [`HubEvent::Done`] with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// What the hub tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubEvent {
    /// A server-side `publish`, `notify` or `broadcast` is stored (or failed).
    Done {
        /// The command.
        ticket: Ticket,
        /// Where it is stored.
        result: Result<Published, HubError>,
    },
    /// A server-side read ([`Hub::read_stream`]) is answered.
    Read {
        /// The read.
        ticket: Ticket,
        /// What the engine holds.
        result: Result<StreamPage, HubError>,
    },
}

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
        /// The sessions it goes to, at the moment it was handed out.
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
    /// Users with a session here: their receiving sessions.
    users: BTreeMap<UserId, Members>,
    /// Sessions receiving the broadcast feed; removal swaps the last one in.
    all_followers: Members,
    /// The streams this hub follows, and where each has got to.
    feeds: BTreeMap<StreamId, Feed>,
    /// Sessions starting on streams (a connection, a join), waiting for reads.
    starts: BTreeMap<u64, Start>,
    /// Each session's starts, oldest first: they are answered in that order.
    session_starts: BTreeMap<SessionId, VecDeque<u64>>,
    /// Entries of starts (start, index) with no read in flight, by stream: the feed's next
    /// move takes them on.
    parked: BTreeMap<StreamId, BTreeSet<(u64, usize)>>,
    next_start: u64,
    /// Presence grace periods: (end, room, user).
    graces: BTreeSet<(Instant, RoomName, UserId)>,
    /// Rooms with presence changes waiting for their frame: (when it goes out, room).
    presence_due: BTreeSet<(Instant, RoomName)>,
    /// Presence frames delivered (one per recipient).
    presence_sent: u64,
    /// When the engine is next asked to expire history.
    next_expire: Option<Instant>,
    /// When the engine is next asked the heads of the followed streams: armed by the first
    /// connection, disarmed while nothing is followed.
    next_check: Option<Instant>,
    transmits: VecDeque<Transmit>,
    /// Operations for the engine, not yet drained.
    operations: VecDeque<Operation>,
    /// Operations sent and not answered, and what waits on each.
    pending: BTreeMap<OpId, Pending>,
    next_op: u64,
    /// Operations to send again once their time comes (an engine was unavailable).
    retries: BTreeSet<(Instant, ops::Retry)>,
    events: VecDeque<HubEvent>,
    next_ticket: u64,
    /// The engine said its link is down: appends are refused at once until it is back.
    link_down: bool,
    /// Answers a feed let go of owed, sent at the end of the input (see `lose_interest`).
    owed: Vec<(Position, ops::Waiter)>,
    /// Read receipts the engine refused to store (a budget, or unavailable).
    receipts_lost: u64,
}

impl Hub {
    /// A hub with this configuration.
    pub fn new(config: HubConfig) -> Self {
        Self {
            config,
            slots: Slots::default(),
            rooms: BTreeMap::new(),
            users: BTreeMap::new(),
            all_followers: Members::default(),
            feeds: BTreeMap::new(),
            starts: BTreeMap::new(),
            session_starts: BTreeMap::new(),
            parked: BTreeMap::new(),
            next_start: 0,
            graces: BTreeSet::new(),
            presence_due: BTreeSet::new(),
            presence_sent: 0,
            next_expire: None,
            next_check: None,
            transmits: VecDeque::new(),
            operations: VecDeque::new(),
            pending: BTreeMap::new(),
            next_op: 0,
            retries: BTreeSet::new(),
            events: VecDeque::new(),
            next_ticket: 0,
            link_down: false,
            owed: Vec::new(),
            receipts_lost: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Registers a connection. It receives a `streams` message saying where each stream it
    /// follows resumes, then the messages after each position, once the engine has answered:
    /// missed ones when its cursor is still covered by history, else (for the user's outbox)
    /// the messages after what the user has read.
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
        self.may_enter(&connect.access, &connect.rooms)?;
        let grants = Arc::clone(&connect.access.grants);
        let session = self.slots.insert(connect.user.clone(), grants);
        self.next_check.get_or_insert(now + self.config.check_every);
        self.users.entry(connect.user.clone()).or_default();
        for room in &connect.rooms {
            self.enter_room(now, session, room);
        }
        self.start_connection(session, &connect);
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
            self.exit_room(now, &slot.user, session, &room, position, Some(grace));
        }
        if let Some(position) = slot.all_position
            && let Some(moved) = room::swap_remove(&mut self.all_followers, position)
        {
            self.slots
                .get_mut(moved)
                .expect("followers are live")
                .all_position = Some(position);
        }
        if slot.broadcast {
            self.lose_interest(&StreamId::Broadcast);
        }
        if let Some(sessions) = self.users.get_mut(&slot.user) {
            Arc::make_mut(sessions).retain(|s| *s != session);
            if !self.slots.iter().any(|other| other.user == slot.user) {
                self.users.remove(&slot.user);
            }
        }
        self.lose_interest(&StreamId::Outbox(slot.user.clone()));
        self.cancel_starts(session);
        self.release_owed();
    }

    /// Handles a client's request, forwarded by its session. The answer (a `reply` when the
    /// envelope has a `ref`, or an `error`) is queued for that session, at once or once the
    /// engine has answered; unknown sessions are ignored.
    pub fn handle_request(&mut self, now: Instant, session: SessionId, request: ClientEnvelope) {
        if self.slots.get(session).is_none() {
            return;
        }
        let ClientEnvelope { reference, message } = request;
        let reference = reference.as_ref();
        let result = match message {
            ClientMessage::Join { room, since, .. } => {
                self.join(now, session, reference, room, since)
            }
            // A driver that checks credentials answers `refresh` itself.
            ClientMessage::Refresh { .. } => Err((
                ErrorCode::Unauthorized,
                "this server has no credentials to refresh".to_owned(),
            )),
            ClientMessage::Leave { room } => self.leave(now, session, reference, room),
            ClientMessage::Publish { room, data } => {
                self.publish_from(now, session, reference, room, data)
            }
            ClientMessage::Typing { room, typing } => self.typing(session, reference, room, typing),
            ClientMessage::Direct { to, data } => self.direct(now, session, reference, to, data),
            ClientMessage::Ping => {
                self.answer(session, reference, Reply::to);
                Ok(())
            }
            ClientMessage::Read { upto } => {
                self.mark_read(session, reference, upto);
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

    /// Publishes `data` to a room from the server: stored in the room's history, then queued
    /// for every member session. The result comes back as [`HubEvent::Done`]; a room of an
    /// unknown namespace is refused ([`HubError::Unauthorized`]).
    pub fn publish(&mut self, now: Instant, room: RoomName, data: Payload) -> Ticket {
        self.publish_event(now, room, None, data)
    }

    /// As [`publish`](Self::publish), the message named `event` (the application's name for
    /// its kind, as a notification's).
    pub fn publish_event(
        &mut self,
        now: Instant,
        room: RoomName,
        event: Option<SmolStr>,
        data: Payload,
    ) -> Ticket {
        let ticket = self.ticket();
        if let Err(why) = self.config.namespaces.get(&room) {
            let result = Err(HubError::Unauthorized(why));
            self.events.push_back(HubEvent::Done { ticket, result });
            return ticket;
        }
        let waiter = ops::Waiter::Api(ticket, StreamId::Room(room.clone()));
        self.publish_to_room(now, waiter, None, room, (event, data));
        ticket
    }

    /// Notifies a user: stored in their outbox and queued for every live session of theirs;
    /// delivered when they next connect if they have none. The result comes back as
    /// [`HubEvent::Done`].
    pub fn notify(
        &mut self,
        now: Instant,
        user: UserId,
        event: Option<SmolStr>,
        data: Payload,
    ) -> Ticket {
        let ticket = self.ticket();
        let message = crate::engine::Message::Notify { event, data };
        let waiter = ops::Waiter::Api(ticket, StreamId::Outbox(user.clone()));
        self.store_in_outbox(now, waiter, None, user, message);
        ticket
    }

    /// Broadcasts to every session following the broadcast feed; stored in its history. The
    /// result comes back as [`HubEvent::Done`].
    pub fn broadcast(&mut self, now: Instant, event: Option<SmolStr>, data: Payload) -> Ticket {
        let ticket = self.ticket();
        self.broadcast_message(now, ticket, event, data);
        ticket
    }

    /// Takes an engine's answer or news (see [`crate::engine`]).
    pub fn handle_engine(&mut self, now: Instant, event: EngineEvent) {
        self.engine_event(now, event);
    }

    /// Ends presence grace periods, sends the presence frames due, sends again what an engine could not take, and asks the
    /// engine to expire history, as of `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_graces(now);
        self.announce_due(now);
        self.retry_due(now);
        if self.next_expire.is_some_and(|at| at <= now) {
            self.next_expire = Some(now + self.config.expire_every);
            self.operations.push_back(Operation::Expire);
        }
        if self.next_check.is_some_and(|at| at <= now) {
            self.next_check = self.check_heads().then(|| now + self.config.check_every);
        }
    }

    /// The next output: deliveries for one session, or one delivery for many. A driver drains
    /// them after every input, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next operation for the engine. A driver drains them after every input and hands
    /// each to the engine, in order; the engine's answers come back through
    /// [`handle_engine`](Self::handle_engine).
    pub fn poll_engine(&mut self) -> Option<Operation> {
        self.operations.pop_front()
    }

    /// The next result of a server-side command.
    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` next has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let grace = self.graces.first().map(|(at, _, _)| *at);
        let retry = self.retries.first().map(|(at, _)| *at);
        let presence = self.next_announcement();
        [grace, presence, retry, self.next_expire, self.next_check]
            .into_iter()
            .flatten()
            .min()
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.slots.len()
    }

    /// Rooms with members or users in a presence grace period.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Users with a session.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Presence frames delivered so far, one per recipient.
    pub fn presence_sent(&self) -> u64 {
        self.presence_sent
    }

    /// Engine operations sent and not yet answered.
    pub fn pending_operations(&self) -> usize {
        self.pending.len()
    }

    /// Read receipts the engine refused to store (a storage budget reached, or the engine
    /// unavailable): their senders never see those messages marked read.
    pub fn receipts_lost(&self) -> u64 {
        self.receipts_lost
    }

    /// Whether the hub follows `stream`: a session here follows it (receives it, or is
    /// starting to).
    pub fn is_followed(&self, stream: &StreamId) -> bool {
        self.feeds.contains_key(stream)
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

    /// The bounds of a stream's history.
    fn retention(&self, stream: &StreamId) -> Retention {
        match stream {
            StreamId::Room(room) => self.room_history(room),
            StreamId::Outbox(_) => self.config.outbox_history,
            StreamId::Broadcast => self.config.broadcast_history,
        }
    }

    fn ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        Ticket(self.next_ticket)
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

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod late_news_tests;
#[cfg(test)]
mod presence_tests;
#[cfg(test)]
mod tests;
