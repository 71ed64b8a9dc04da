//! The codec: frame size limit, application types, and decoding into typed messages.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Deserialize;
use smol_str::SmolStr;

use super::client::{AppMessage, ClientEnvelope, ClientMessage};
use super::server::{PROTOCOL_VERSION, PresenceChange, Reply, ServerMessage};
use super::wire::Wire;
use super::{EnvelopeError, ErrorCode, Ref};

/// The default largest frame, in bytes: 64 KiB.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

const CLIENT_TYPES: [&str; 8] = [
    "join", "leave", "publish", "typing", "direct", "ping", "read", "refresh",
];

/// Decodes frames: knows the size limit and the application's own message types.
#[derive(Clone, Debug)]
pub struct Codec {
    max_frame: usize,
    /// Deepest nesting of a payload's arrays and objects.
    max_depth: usize,
    app_types: BTreeSet<SmolStr>,
}

/// An application type that cannot be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError(String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

/// The `type` and `ref` alone: enough to route a frame whose other fields are not ours to read.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: Option<SmolStr>,
    #[serde(rename = "ref")]
    reference: Option<Ref>,
}

impl Codec {
    /// A codec with the default frame limit and no application types.
    pub fn new() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            max_depth: super::DEFAULT_MAX_DEPTH,
            app_types: BTreeSet::new(),
        }
    }

    /// Sets the largest frame accepted, in bytes; a larger one is answered `too_large`.
    #[must_use]
    pub fn with_max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Sets the deepest nesting of arrays and objects a payload may have (64 by default); a
    /// deeper one is answered `bad_frame`, as is a lone UTF-16 surrogate escape.
    #[must_use]
    pub fn with_max_depth(mut self, levels: usize) -> Self {
        self.max_depth = levels;
        self
    }

    /// The deepest nesting a payload may have.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The largest frame accepted, in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Accepts client messages of the application's own type `kind`, delivered as
    /// [`ClientMessage::App`]. Refused for a protocol type, or a name that is empty, longer than
    /// 64 bytes, or not made of ASCII letters, digits and `_ - . :`.
    pub fn with_app_type(mut self, kind: &str) -> Result<Self, CodecError> {
        if CLIENT_TYPES.contains(&kind) {
            return Err(CodecError(format!("{kind:?} is a protocol message type")));
        }
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
        if kind.is_empty() || kind.len() > 64 || !kind.chars().all(valid) {
            return Err(CodecError(format!(
                "{kind:?} is not a valid message type name"
            )));
        }
        self.app_types.insert(SmolStr::new(kind));
        Ok(self)
    }

    /// Decodes a client's frame. Every error carries the frame's `ref` when it could be read.
    pub fn decode_client(&self, text: &str) -> Result<ClientEnvelope, EnvelopeError> {
        let wire = match Wire::read(text, self.max_frame) {
            Ok(wire) => wire,
            Err(error) => return self.app_or(text, error),
        };
        let kind = wire.need(wire.kind.as_deref(), "type")?;
        let message = match kind {
            "join" => ClientMessage::Join {
                room: wire.room()?,
                since: match wire.since.as_deref() {
                    Some(since) => Some(wire.position(Some(since), "since")?),
                    None => None,
                },
                token: wire.token.as_deref().map(Arc::from),
            },
            "refresh" => ClientMessage::Refresh {
                token: Arc::from(wire.need(wire.token.as_deref(), "token")?),
            },
            "leave" => ClientMessage::Leave { room: wire.room()? },
            "publish" => ClientMessage::Publish {
                room: wire.room()?,
                data: wire.data(self.max_depth)?,
            },
            "typing" => ClientMessage::Typing {
                room: wire.room()?,
                typing: wire.need(wire.typing, "typing")?,
            },
            "direct" => ClientMessage::Direct {
                to: wire.user(wire.to.as_deref(), "to")?,
                data: wire.data(self.max_depth)?,
            },
            "ping" => ClientMessage::Ping,
            "read" => ClientMessage::Read {
                upto: wire.position(wire.upto.as_deref(), "upto")?,
            },
            kind if self.app_types.contains(kind) => app_message(kind, text),
            kind => return Err(unknown_type(kind, wire.reference)),
        };
        Ok(ClientEnvelope {
            reference: wire.reference,
            message,
        })
    }

    /// A frame our flat form could not read may still be a valid application message (its
    /// fields are its own) or of an unknown type; otherwise the read error stands.
    fn app_or(&self, text: &str, error: EnvelopeError) -> Result<ClientEnvelope, EnvelopeError> {
        if error.code != ErrorCode::BadFrame || !super::wire::is_object(text) {
            return Err(error);
        }
        let Ok(Head {
            kind: Some(kind),
            reference,
        }) = serde_json::from_str::<Head>(text)
        else {
            return Err(error);
        };
        if self.app_types.contains(&kind) {
            let message = app_message(&kind, text);
            return Ok(ClientEnvelope { reference, message });
        }
        if CLIENT_TYPES.contains(&kind.as_str()) {
            return Err(error);
        }
        Err(unknown_type(&kind, reference))
    }

    /// Decodes a server's frame, as a client does.
    pub fn decode_server(&self, text: &str) -> Result<ServerMessage, EnvelopeError> {
        let wire = Wire::read(text, self.max_frame)?;
        let kind = wire.need(wire.kind.as_deref(), "type")?;
        Ok(match kind {
            "welcome" => {
                let protocol = wire.need(wire.protocol, "protocol")?;
                if protocol != PROTOCOL_VERSION {
                    return Err(wire.bad(format!("protocol {protocol} is not {PROTOCOL_VERSION}")));
                }
                ServerMessage::Welcome {
                    session: SmolStr::new(wire.need(wire.session.as_deref(), "session")?),
                    user: wire.user(wire.user.as_deref(), "user")?,
                    ping_interval_ms: wire.need(wire.ping_interval_ms, "ping_interval_ms")?,
                    ping_timeout_ms: wire.need(wire.ping_timeout_ms, "ping_timeout_ms")?,
                    max_frame: wire.need(wire.max_frame, "max_frame")?,
                }
            }
            "reply" => ServerMessage::Reply(Reply {
                reference: wire.need(wire.reference.clone(), "ref")?,
                room: match wire.room {
                    Some(_) => Some(wire.room()?),
                    None => None,
                },
                members: match wire.members {
                    Some(_) => Some(wire.users(&wire.members, "members")?),
                    None => None,
                },
                count: wire.count,
                id: match wire.id.as_deref() {
                    Some(id) => Some(wire.position(Some(id), "id")?),
                    None => None,
                },
                recovered: wire.recovered,
                replayed: wire.replayed,
                delivered: wire.delivered,
                unread: wire.unread,
                data: wire.data.map(super::Payload::from_raw),
            }),
            "error" => {
                let code = wire.need(wire.code.as_deref(), "code")?;
                ServerMessage::Error {
                    reference: wire.reference.clone(),
                    code: ErrorCode::from_wire(code)
                        .ok_or_else(|| wire.bad(format!("unknown error code {code:?}")))?,
                    message: wire.need(wire.message.as_deref(), "message")?.to_owned(),
                }
            }
            "message" => ServerMessage::Message {
                room: wire.room()?,
                id: wire.position(wire.id.as_deref(), "id")?,
                from: match wire.from.as_deref() {
                    Some(from) => Some(wire.user(Some(from), "from")?),
                    None => None,
                },
                event: wire.event.as_deref().map(SmolStr::new),
                data: wire.data(self.max_depth)?,
            },
            "presence" => ServerMessage::Presence {
                room: wire.room()?,
                // One form per message: a diff, the whole list, or a count.
                change: match (&wire.members, wire.count) {
                    (None, None) => PresenceChange::Diff {
                        joins: wire.users(&wire.joins, "joins")?,
                        leaves: wire.users(&wire.leaves, "leaves")?,
                    },
                    (Some(_), None) if wire.joins.is_none() && wire.leaves.is_none() => {
                        PresenceChange::Members(wire.users(&wire.members, "members")?)
                    }
                    (None, Some(count)) if wire.joins.is_none() && wire.leaves.is_none() => {
                        PresenceChange::Count(count)
                    }
                    _ => {
                        return Err(
                            wire.bad("a presence carries joins and leaves, members, or count")
                        );
                    }
                },
            },
            "typing" => ServerMessage::Typing {
                room: wire.room()?,
                user: wire.user(wire.user.as_deref(), "user")?,
                typing: wire.need(wire.typing, "typing")?,
            },
            "direct" => ServerMessage::Direct {
                id: wire.position(wire.id.as_deref(), "id")?,
                from: wire.user(wire.from.as_deref(), "from")?,
                data: wire.data(self.max_depth)?,
            },
            "notify" | "broadcast" => {
                let id = wire.position(wire.id.as_deref(), "id")?;
                let event = wire.event.as_deref().map(SmolStr::new);
                let data = wire.data(self.max_depth)?;
                if kind == "notify" {
                    ServerMessage::Notify { id, event, data }
                } else {
                    ServerMessage::Broadcast { id, event, data }
                }
            }
            "receipt" => ServerMessage::Receipt {
                id: wire.position(wire.id.as_deref(), "id")?,
                from: wire.user(wire.from.as_deref(), "from")?,
                upto: wire.position(wire.upto.as_deref(), "upto")?,
            },
            "streams" => ServerMessage::Streams {
                streams: wire.streams()?,
            },
            "read" => ServerMessage::Read {
                upto: wire.position(wire.upto.as_deref(), "upto")?,
                unread: wire.need(wire.unread, "unread")?,
            },
            "shutdown" => ServerMessage::Shutdown {
                reason: wire.need(wire.reason.as_deref(), "reason")?.to_owned(),
                reconnect_ms: wire.need(wire.reconnect_ms, "reconnect_ms")?,
            },
            "expiring" => ServerMessage::Expiring {
                in_ms: wire.need(wire.in_ms, "in_ms")?,
            },
            kind => return Err(unknown_type(kind, wire.reference)),
        })
    }
}

fn app_message(kind: &str, frame: &str) -> ClientMessage {
    ClientMessage::App(AppMessage {
        kind: SmolStr::new(kind),
        frame: Arc::from(frame),
    })
}

fn unknown_type(kind: &str, reference: Option<Ref>) -> EnvelopeError {
    let shown: String = kind.chars().take(64).collect();
    EnvelopeError::new(
        ErrorCode::UnknownType,
        reference,
        format!("unknown message type {shown:?}"),
    )
}

#[cfg(test)]
mod tests;
