//! The engine exchange: the hub's streams behind an engine, as operations and events.
//!
//! The hub does not own its logs. An engine does: in memory ([`MemoryEngine`]), on disk
//! (`roomcast-store`), or in Redis. The hub queues [`Operation`]s, which a driver drains with
//! [`Hub::poll_engine`](crate::hub::Hub::poll_engine) as it drains the hub's transmits, and
//! hands the engine's [`EngineEvent`]s back with
//! [`Hub::handle_engine`](crate::hub::Hub::handle_engine). The hub never waits for an engine, as
//! it never waits for a session: an engine may answer in the same call (memory), after an fsync
//! (the store), or over a network (Redis).
//!
//! The rules every engine keeps, and the hub relies on:
//!
//! - **Streams** have an epoch and offsets 1, 2, 3... An engine assigns both; a stream it has
//!   no record of gets a fresh epoch, so a client's old position is recognised as lost.
//! - **Every append comes back as [`Live`](EngineEvent::Live)** to every follower of the stream,
//!   the appending hub included when it follows the stream, in offset order per stream; the hub
//!   delivers only from `Live` (and from reads that fill a gap), one delivery path whatever the
//!   engine. An engine may deliver a `Live` twice or late (the hub drops what it has seen and
//!   fills a jump with a read), but an [`Appended`](EngineEvent::Appended) means the record is
//!   stored as durably as the engine stores anything.
//! - **Reads are whole or say so**: a read gives the stream's [`View`] with its records, and the
//!   hub decides from the view whether a position is still covered.
//! - **A loss changes the epoch.** An engine that loses records it acknowledged (a Redis
//!   failover that lost what was not yet replicated) starts the stream on a new epoch, never
//!   reuses an offset in the old one: the hub then tells every reader `recovered: false`.
//! - **Lives may be lost** (an engine over a network): the hub finds a gap at the next `Live`
//!   of the stream, and a lost last one by asking the heads of what it follows now and then
//!   ([`Operation::Tops`]), and after [`LinkUp`](EngineEvent::LinkUp).
//!
//! Anchor: centrifuge's `Broker` and `PresenceManager` interfaces, as sans-IO operations and
//! events rather than an async trait.

mod memory;
mod record;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use self::memory::{MemoryEngine, MemoryLimits, MemoryStats};
pub use self::record::{Message, Origin, Record, RecordError};
use crate::cursor::Position;
use crate::names::{RoomName, UserId};

/// A stream an engine keeps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamId {
    /// A room's messages.
    Room(RoomName),
    /// A user's outbox: direct messages, notifications, receipts.
    Outbox(UserId),
    /// The broadcast feed.
    Broadcast,
}

impl StreamId {
    /// The stream's key, for engines that store by name: `r:NAME`, `u:NAME`, `b`.
    pub fn key(&self) -> String {
        match self {
            Self::Room(room) => format!("r:{room}"),
            Self::Outbox(user) => format!("u:{user}"),
            Self::Broadcast => "b".to_owned(),
        }
    }

    /// The stream a [`key`](Self::key) names, if it names one.
    pub fn from_key(key: &str) -> Option<Self> {
        match key.split_once(':') {
            Some(("r", room)) => RoomName::new(room).ok().map(Self::Room),
            Some(("u", user)) => UserId::new(user).ok().map(Self::Outbox),
            None if key == "b" => Some(Self::Broadcast),
            _ => None,
        }
    }

    /// What kind of stream this is, for budgets and figures.
    pub fn kind(&self) -> StreamKind {
        match self {
            Self::Room(_) => StreamKind::Room,
            Self::Outbox(_) => StreamKind::Outbox,
            Self::Broadcast => StreamKind::Broadcast,
        }
    }
}

/// The kinds of stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamKind {
    /// Rooms.
    Room,
    /// Outboxes.
    Outbox,
    /// The broadcast feed.
    Broadcast,
}

/// An operation's number, unique among a hub's operations and rising: the answer names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

/// How much of a stream is kept: the oldest records go once any bound is passed. An append
/// carries its stream's retention, so an engine applies it in the append's own transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Most records kept.
    pub max_messages: usize,
    /// Most bytes of records kept (their encoded size, [`Record::size`]).
    pub max_bytes: usize,
    /// Oldest record kept.
    pub max_age: Duration,
}

/// What the hub asks of an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Append `record` (its offset is the engine's to give): answered
    /// [`Appended`](EngineEvent::Appended) or [`Failed`](EngineEvent::Failed); the record then
    /// comes back [`Live`](EngineEvent::Live) to the stream's followers. The stream's oldest
    /// records past `retention` go in the same step.
    Append {
        /// Its number.
        op: OpId,
        /// The stream.
        stream: StreamId,
        /// The record; its `offset` is ignored.
        record: Record,
        /// The stream's bounds.
        retention: Retention,
    },
    /// The stream's view, and its records after `after` (at most `max`) if `after` is of the
    /// stream's epoch and still covered: answered [`Read`](EngineEvent::Read).
    Read {
        /// Its number.
        op: OpId,
        /// The stream.
        stream: StreamId,
        /// The position the records follow; `None` for the view alone.
        after: Option<Position>,
        /// Most records in the answer.
        max: usize,
    },
    /// Send the stream's appends as [`Live`](EngineEvent::Live) events from now on. The
    /// retention says how long the stream is remembered (its epoch, for a client's position)
    /// once it holds nothing and nobody follows it.
    Follow {
        /// The stream.
        stream: StreamId,
        /// Its bounds.
        retention: Retention,
    },
    /// Stop sending them.
    Unfollow(StreamId),
    /// Mark `user`'s outbox read up to `upto` (a mark never moves back): answered
    /// [`Marked`](EngineEvent::Marked).
    MarkRead {
        /// Its number.
        op: OpId,
        /// Whose outbox.
        user: UserId,
        /// The position read up to.
        upto: Position,
    },
    /// Drop the records past their stream's age, as of now: a housekeeping sweep (a read never
    /// returns such a record anyway).
    Expire,
    /// The heads of these streams: answered [`Tops`](EngineEvent::Tops). The hub asks now and
    /// then for the streams it follows, to find a `Live` the engine lost that no later one
    /// reveals.
    Tops {
        /// Its number.
        op: OpId,
        /// The streams.
        streams: Vec<StreamId>,
    },
    /// `user` became present in `room` on this hub's node (`present`), or stopped being
    /// (its last session left and its grace ended). An engine shared by many nodes tells the
    /// others ([`Presence`](EngineEvent::Presence)) and keeps it, refreshed while it lasts, for
    /// [`PresenceSnapshot`](EngineEvent::PresenceSnapshot)s; an engine of one node ignores it.
    Presence {
        /// This hub's node number.
        node: u64,
        /// The room.
        room: RoomName,
        /// The user.
        user: UserId,
        /// Present, or gone.
        present: bool,
    },
    /// `user` started or stopped typing in `room` on this hub's node: an engine shared by many
    /// nodes relays it to the others ([`Typing`](EngineEvent::Typing)), keeping nothing; an
    /// engine of one node ignores it.
    Typing {
        /// This hub's node number.
        node: u64,
        /// The room.
        room: RoomName,
        /// The user.
        user: UserId,
        /// Started, or stopped.
        typing: bool,
    },
}

impl Operation {
    /// The operation's number, for those that are answered (append, read, mark, heads): what
    /// an engine that cannot take one fails it with.
    pub fn op(&self) -> Option<OpId> {
        match self {
            Self::Append { op, .. }
            | Self::Read { op, .. }
            | Self::MarkRead { op, .. }
            | Self::Tops { op, .. } => Some(*op),
            _ => None,
        }
    }
}

/// Where a stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// The epoch and the offset of the last record: `epoch.0` for a stream without any.
    pub head: Position,
    /// The offset of the oldest record kept; `head.offset + 1` when none is kept.
    pub first: u64,
    /// For an outbox: the offset its user has read up to (0: none); 0 for other streams.
    pub read: u64,
}

impl View {
    /// Whether every record after `position` is still kept: the same epoch, not beyond the
    /// head, and not before the oldest record kept.
    pub fn covers(&self, position: Position) -> bool {
        position.epoch == self.head.epoch
            && position.offset <= self.head.offset
            && position.offset + 1 >= self.first
    }
}

/// Why an operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The engine cannot take it now (unreachable, or its queue is full): retry later.
    Unavailable(String),
    /// A storage budget would be passed: the append is refused.
    LimitReached(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(why) => write!(f, "unavailable: {why}"),
            Self::LimitReached(what) => write!(f, "limit reached: {what}"),
        }
    }
}

/// What an engine tells the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// An append is stored at `at`.
    Appended {
        /// The append.
        op: OpId,
        /// Its position.
        at: Position,
        /// For an outbox: a node of a shared engine follows it (a session of its user is live
        /// there) as it was stored: the `delivered` of a `direct`. Always false for an engine
        /// of one node: the hub knows its own sessions.
        online: bool,
    },
    /// An operation failed.
    Failed {
        /// The operation.
        op: OpId,
        /// Why.
        fault: Fault,
    },
    /// A read's answer.
    Read {
        /// The read.
        op: OpId,
        /// The stream.
        stream: StreamId,
        /// Where the stream stands.
        view: View,
        /// The records after the read's position, in order, when the view covers it.
        records: Vec<Arc<Record>>,
    },
    /// A record appended to a followed stream.
    Live {
        /// The stream.
        stream: StreamId,
        /// The record's position.
        at: Position,
        /// The record.
        record: Arc<Record>,
    },
    /// A read mark moved (or stayed: `read` is the mark now).
    Marked {
        /// The mark's operation.
        op: OpId,
        /// Whose outbox.
        user: UserId,
        /// The mark before.
        before: u64,
        /// The mark now, in the outbox's epoch.
        read: Position,
    },
    /// The heads asked for: each stream's epoch and last offset (`epoch.0` when it holds
    /// nothing). A stream the engine does not know may be left out, or started as a read
    /// starts it.
    Tops {
        /// The question.
        op: OpId,
        /// The heads.
        heads: Vec<(StreamId, Position)>,
    },
    /// Another node's [`Operation::Presence`]: `user` became present in `room` on `node`, or
    /// stopped being. (A hub ignores its own node's.)
    Presence {
        /// The room.
        room: RoomName,
        /// The node.
        node: u64,
        /// The user.
        user: UserId,
        /// Present, or gone.
        present: bool,
    },
    /// Another node's [`Operation::Typing`]. (A hub ignores its own node's.)
    Typing {
        /// The room.
        room: RoomName,
        /// The node.
        node: u64,
        /// The user.
        user: UserId,
        /// Started, or stopped.
        typing: bool,
    },
    /// Everyone present in `room` on every node, as the engine holds it now (entries of nodes
    /// that stopped refreshing them, such as a node that died, have expired): sent when a room
    /// is followed, and now and then, so that presence converges whatever was missed.
    PresenceSnapshot {
        /// The room.
        room: RoomName,
        /// Each user present, with the node it is present on.
        members: Vec<(UserId, u64)>,
    },
    /// The engine lost its link (to Redis): appends fail until [`LinkUp`](Self::LinkUp).
    LinkDown,
    /// The link is back: what was followed may have moved meanwhile.
    LinkUp,
}

/// A pure engine: operations in, events out, time an argument. [`MemoryEngine`] is one; a
/// driver may put an engine with IO behind the same exchange without this trait.
pub trait Engine {
    /// Takes an operation. Its answers wait in [`poll_event`](Self::poll_event).
    fn handle(&mut self, now: Instant, operation: Operation);

    /// The next event.
    fn poll_event(&mut self) -> Option<EngineEvent>;
}
