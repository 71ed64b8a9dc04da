//! Messages from the server.

use serde::ser::{SerializeMap, Serializer};
use smol_str::SmolStr;

use super::{ErrorCode, Frame, Payload, Ref};
use crate::cursor::{Position, Stream};
use crate::names::{RoomName, UserId};

/// The protocol version this crate speaks, sent in `welcome`.
pub const PROTOCOL_VERSION: u64 = 1;

/// What the server sends (protocol v1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// `welcome`: the first message of a session.
    Welcome {
        /// The session's id.
        session: SmolStr,
        /// The authenticated user.
        user: UserId,
        /// How often the server pings, in milliseconds.
        ping_interval_ms: u64,
        /// How long the server waits for any frame after a ping before closing, in milliseconds.
        ping_timeout_ms: u64,
        /// The largest frame the server accepts, in bytes.
        max_frame: u64,
    },
    /// `reply`: the one answer to a client message that carried a `ref`, when it succeeded.
    Reply(Reply),
    /// `error`: the one answer to a client message that failed (or one without a `ref`).
    Error {
        /// The `ref` of the message that failed, if it had one that could be read.
        reference: Option<Ref>,
        /// The stable code.
        code: ErrorCode,
        /// A human-readable explanation.
        message: String,
    },
    /// `message`: a message published to a room.
    Message {
        /// The room.
        room: RoomName,
        /// Its position in the room's stream, usable as `since`.
        id: Position,
        /// The user who published it; absent when the server did.
        from: Option<UserId>,
        /// The application's name for its kind (a server publish may set one).
        event: Option<SmolStr>,
        /// Any JSON value.
        data: Payload,
    },
    /// `presence`: who came online in a room and who left it, coalesced over a short window;
    /// in a room above the size where presence is counts only, how many are present.
    Presence {
        /// The room.
        room: RoomName,
        /// What changed.
        change: PresenceChange,
    },
    /// `typing`: a user started or stopped typing in a room.
    Typing {
        /// The room.
        room: RoomName,
        /// Who.
        user: UserId,
        /// Started (true) or stopped (false).
        typing: bool,
    },
    /// `direct`: a message from another user, from the recipient's outbox stream.
    Direct {
        /// Its position in the recipient's outbox stream.
        id: Position,
        /// The sender.
        from: UserId,
        /// Any JSON value.
        data: Payload,
    },
    /// `notify`: a notification from the application to this user, from the outbox stream.
    Notify {
        /// Its position in the recipient's outbox stream.
        id: Position,
        /// The application's name for the kind of notification.
        event: Option<SmolStr>,
        /// Any JSON value.
        data: Payload,
    },
    /// `broadcast`: a message to everyone, from the broadcast stream.
    Broadcast {
        /// Its position in the broadcast stream.
        id: Position,
        /// The application's name for the kind of message.
        event: Option<SmolStr>,
        /// Any JSON value.
        data: Payload,
    },
    /// `receipt`: a user this one sent direct messages read their outbox up to `upto`: every
    /// direct message of this user to them whose id is at or before it is read. From the
    /// outbox stream, like a direct message.
    Receipt {
        /// Its position in this user's outbox stream.
        id: Position,
        /// The reader.
        from: UserId,
        /// The reader's read mark: a position in the reader's outbox, as direct ids are.
        upto: Position,
    },
    /// `streams`: sent once a connection starts: where each stream it follows resumes. The
    /// messages after each position follow, in order, before any live message of that stream.
    Streams {
        /// One entry per stream followed.
        streams: Vec<StreamStart>,
    },
    /// `read`: the user marked their outbox read (on this device or another): up to `upto`,
    /// `unread` messages left.
    Read {
        /// The position read up to.
        upto: Position,
        /// Messages of the outbox after it.
        unread: u64,
    },
    /// `shutdown`: the server is going away; reconnect after `reconnect_ms` and resume.
    Shutdown {
        /// Why.
        reason: String,
        /// How long to wait before reconnecting, in milliseconds.
        reconnect_ms: u64,
    },
    /// `expiring`: the connection's token expires in `in_ms`; send `refresh` with a fresh one
    /// before then, or the session closes with 4003.
    Expiring {
        /// Milliseconds until the token expires.
        in_ms: u64,
    },
}

/// Where one stream of a new connection resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamStart {
    /// The stream.
    pub stream: Stream,
    /// The position before the messages that follow: the client's position in this stream once
    /// it has them. `<epoch>.0` for a stream without messages.
    pub id: Position,
    /// When the connection's cursor named this stream: whether every message after it follows
    /// (true) or the history no longer covers the gap (false).
    pub recovered: Option<bool>,
    /// How many messages follow.
    pub replayed: u64,
    /// The user's outbox of a connection without a position for it: how many messages its
    /// user has not marked read (they follow, as far as history keeps them).
    pub unread: Option<u64>,
}

impl serde::Serialize for StreamStart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("stream", &self.stream)?;
        map.serialize_entry("id", &self.id)?;
        entry(&mut map, "recovered", &self.recovered)?;
        map.serialize_entry("replayed", &self.replayed)?;
        entry(&mut map, "unread", &self.unread)?;
        map.end()
    }
}

/// What a `presence` message says of a room's members (see `docs/protocol.md`, section 8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresenceChange {
    /// `joins`, `leaves`: users now present who were not at the room's last `presence`, and
    /// users no longer present.
    Diff {
        /// Users now present who were not.
        joins: Vec<UserId>,
        /// Users no longer present.
        leaves: Vec<UserId>,
    },
    /// `members`: everyone present, replacing what the client had. Sent when a room that was
    /// counts only comes back to the size where names are sent.
    Members(Vec<UserId>),
    /// `count`: how many users are present. The room is above the size where names are sent;
    /// the member list is the server API's.
    Count(u64),
}

/// A `reply`. Which fields are set depends on the message answered (see `docs/protocol.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The `ref` of the message answered.
    pub reference: Ref,
    /// The room joined, left or published to.
    pub room: Option<RoomName>,
    /// `join`: the users present in the room (a room at most the size where names are sent).
    pub members: Option<Vec<UserId>>,
    /// `join`: how many users are present, in a room above the size where names are sent.
    pub count: Option<u64>,
    /// `join`: the room's last message id; `publish`, `direct`: the new message's id.
    pub id: Option<Position>,
    /// `join` with `since`: whether every missed message follows (true), or the history no
    /// longer covers the gap (false).
    pub recovered: Option<bool>,
    /// `join` with `since`: how many missed messages follow the reply.
    pub replayed: Option<u64>,
    /// `direct`: whether a live session of the recipient got it (else it waits in the outbox).
    pub delivered: Option<bool>,
    /// `read`: messages of the outbox after the read mark.
    pub unread: Option<u64>,
    /// An application's own reply data.
    pub data: Option<Payload>,
}

impl Reply {
    /// A reply to `reference` with no fields set: the plain acknowledgement.
    pub fn to(reference: Ref) -> Self {
        Self {
            reference,
            room: None,
            members: None,
            count: None,
            id: None,
            recovered: None,
            replayed: None,
            delivered: None,
            unread: None,
            data: None,
        }
    }
}

impl ServerMessage {
    /// The message's `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Welcome { .. } => "welcome",
            Self::Reply(_) => "reply",
            Self::Error { .. } => "error",
            Self::Message { .. } => "message",
            Self::Presence { .. } => "presence",
            Self::Typing { .. } => "typing",
            Self::Direct { .. } => "direct",
            Self::Notify { .. } => "notify",
            Self::Broadcast { .. } => "broadcast",
            Self::Receipt { .. } => "receipt",
            Self::Streams { .. } => "streams",
            Self::Read { .. } => "read",
            Self::Shutdown { .. } => "shutdown",
            Self::Expiring { .. } => "expiring",
        }
    }

    /// Encodes the message once, into a frame to share with every recipient.
    pub fn encode(&self) -> Frame {
        Frame::from_json(
            serde_json::to_string(self).expect("every key is a string: serializing cannot fail"),
        )
    }
}

impl serde::Serialize for ServerMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.kind())?;
        match self {
            Self::Welcome {
                session,
                user,
                ping_interval_ms,
                ping_timeout_ms,
                max_frame,
            } => {
                map.serialize_entry("protocol", &PROTOCOL_VERSION)?;
                map.serialize_entry("session", session)?;
                map.serialize_entry("user", user)?;
                map.serialize_entry("ping_interval_ms", ping_interval_ms)?;
                map.serialize_entry("ping_timeout_ms", ping_timeout_ms)?;
                map.serialize_entry("max_frame", max_frame)?;
            }
            Self::Reply(reply) => {
                map.serialize_entry("ref", &reply.reference)?;
                entry(&mut map, "room", &reply.room)?;
                entry(&mut map, "members", &reply.members)?;
                entry(&mut map, "count", &reply.count)?;
                entry(&mut map, "id", &reply.id)?;
                entry(&mut map, "recovered", &reply.recovered)?;
                entry(&mut map, "replayed", &reply.replayed)?;
                entry(&mut map, "delivered", &reply.delivered)?;
                entry(&mut map, "unread", &reply.unread)?;
                entry(&mut map, "data", &reply.data)?;
            }
            Self::Error {
                reference,
                code,
                message,
            } => {
                entry(&mut map, "ref", reference)?;
                map.serialize_entry("code", code)?;
                map.serialize_entry("message", message)?;
            }
            Self::Message {
                room,
                id,
                from,
                event,
                data,
            } => {
                map.serialize_entry("room", room)?;
                map.serialize_entry("id", id)?;
                entry(&mut map, "from", from)?;
                entry(&mut map, "event", event)?;
                map.serialize_entry("data", data)?;
            }
            Self::Presence { room, change } => {
                map.serialize_entry("room", room)?;
                match change {
                    PresenceChange::Diff { joins, leaves } => {
                        map.serialize_entry("joins", joins)?;
                        map.serialize_entry("leaves", leaves)?;
                    }
                    PresenceChange::Members(members) => map.serialize_entry("members", members)?,
                    PresenceChange::Count(count) => map.serialize_entry("count", count)?,
                }
            }
            Self::Typing { room, user, typing } => {
                map.serialize_entry("room", room)?;
                map.serialize_entry("user", user)?;
                map.serialize_entry("typing", typing)?;
            }
            Self::Direct { id, from, data } => {
                map.serialize_entry("id", id)?;
                map.serialize_entry("from", from)?;
                map.serialize_entry("data", data)?;
            }
            Self::Notify { id, event, data } | Self::Broadcast { id, event, data } => {
                map.serialize_entry("id", id)?;
                entry(&mut map, "event", event)?;
                map.serialize_entry("data", data)?;
            }
            Self::Receipt { id, from, upto } => {
                map.serialize_entry("id", id)?;
                map.serialize_entry("from", from)?;
                map.serialize_entry("upto", upto)?;
            }
            Self::Streams { streams } => map.serialize_entry("streams", streams)?,
            Self::Read { upto, unread } => {
                map.serialize_entry("upto", upto)?;
                map.serialize_entry("unread", unread)?;
            }
            Self::Shutdown {
                reason,
                reconnect_ms,
            } => {
                map.serialize_entry("reason", reason)?;
                map.serialize_entry("reconnect_ms", reconnect_ms)?;
            }
            Self::Expiring { in_ms } => map.serialize_entry("in_ms", in_ms)?,
        }
        map.end()
    }
}

/// Writes an optional field only when it is set.
fn entry<M: SerializeMap, T: serde::Serialize>(
    map: &mut M,
    key: &str,
    value: &Option<T>,
) -> Result<(), M::Error> {
    match value {
        Some(value) => map.serialize_entry(key, value),
        None => Ok(()),
    }
}
