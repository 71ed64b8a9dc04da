//! Messages from clients.

use std::sync::Arc;

use serde::ser::{SerializeMap, Serializer};
use smol_str::SmolStr;

use super::{Payload, Ref};
use crate::cursor::Position;
use crate::names::{RoomName, UserId};

/// A client message with its optional `ref`. A message with a `ref` gets exactly one reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEnvelope {
    /// The client's correlation id.
    pub reference: Option<Ref>,
    /// The message.
    pub message: ClientMessage,
}

/// What a client can ask of the server (protocol v1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// `join`: enter a room; with `since`, also receive the messages after that position.
    Join {
        /// The room.
        room: RoomName,
        /// The id of the last message the client saw in this room.
        since: Option<Position>,
        /// A subscription token for this room, for a namespace that admits by one.
        token: Option<Arc<str>>,
    },
    /// `leave`: leave a room.
    Leave {
        /// The room.
        room: RoomName,
    },
    /// `publish`: send `data` to everyone in a room the session has joined.
    Publish {
        /// The room.
        room: RoomName,
        /// Any JSON value.
        data: Payload,
    },
    /// `typing`: say that the user started or stopped typing in a room.
    Typing {
        /// The room.
        room: RoomName,
        /// Started (true) or stopped (false).
        typing: bool,
    },
    /// `direct`: send `data` to every session of one user, or to their outbox if none is online.
    Direct {
        /// The recipient.
        to: UserId,
        /// Any JSON value.
        data: Payload,
    },
    /// `ping`: an application-level liveness check (browsers cannot send WebSocket pings).
    Ping,
    /// `read`: the user has read their outbox (directs, notifications) up to this position,
    /// on every device.
    Read {
        /// The position read up to.
        upto: Position,
    },
    /// `refresh`: a fresh connection token for the same user, before the current one expires
    /// (the server's `expiring` message says when).
    Refresh {
        /// The new token.
        token: Arc<str>,
    },
    /// A message of a type the application registered with [`Codec::with_app_type`](super::Codec::with_app_type).
    App(AppMessage),
}

/// A message of an application's own type: the whole frame, for the application to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppMessage {
    /// Its `type`.
    pub kind: SmolStr,
    /// The whole frame, as received.
    pub frame: Arc<str>,
}

impl AppMessage {
    /// Reads the frame into the application's own type.
    pub fn parse<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.frame)
    }
}

impl ClientMessage {
    /// The message's `type` on the wire.
    pub fn kind(&self) -> &str {
        match self {
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
            Self::Publish { .. } => "publish",
            Self::Typing { .. } => "typing",
            Self::Direct { .. } => "direct",
            Self::Ping => "ping",
            Self::Read { .. } => "read",
            Self::Refresh { .. } => "refresh",
            Self::App(app) => &app.kind,
        }
    }
}

impl ClientEnvelope {
    /// The JSON text a client sends. An [`AppMessage`] is sent as its frame, unchanged.
    pub fn encode(&self) -> String {
        if let ClientMessage::App(app) = &self.message {
            return app.frame.to_string();
        }
        serde_json::to_string(self).expect("every key is a string: serializing cannot fail")
    }
}

impl serde::Serialize for ClientEnvelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.message.kind())?;
        if let Some(reference) = &self.reference {
            map.serialize_entry("ref", reference)?;
        }
        match &self.message {
            ClientMessage::Join { room, since, token } => {
                map.serialize_entry("room", room)?;
                if let Some(since) = since {
                    map.serialize_entry("since", since)?;
                }
                if let Some(token) = token {
                    map.serialize_entry("token", &**token)?;
                }
            }
            ClientMessage::Refresh { token } => map.serialize_entry("token", &**token)?,
            ClientMessage::Leave { room } => map.serialize_entry("room", room)?,
            ClientMessage::Publish { room, data } => {
                map.serialize_entry("room", room)?;
                map.serialize_entry("data", data)?;
            }
            ClientMessage::Typing { room, typing } => {
                map.serialize_entry("room", room)?;
                map.serialize_entry("typing", typing)?;
            }
            ClientMessage::Direct { to, data } => {
                map.serialize_entry("to", to)?;
                map.serialize_entry("data", data)?;
            }
            ClientMessage::Read { upto } => map.serialize_entry("upto", upto)?,
            ClientMessage::Ping | ClientMessage::App(_) => {}
        }
        map.end()
    }
}
