//! A stored record: what a stream's message says, who appended it, and its bytes for engines
//! that store bytes.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use smol_str::SmolStr;

use super::OpId;
use crate::cursor::Position;
use crate::delivery::{SessionId, Shared};
use crate::envelope::Payload;
use crate::names::UserId;

/// Who appended a record: a session of a hub (a node), with the append's number there. The hub
/// that appended it does not deliver it live to that session (exclude-sender), and answers the
/// append when its `Live` comes (it may come before `Appended`); every reader's history is the
/// same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The hub's node number ([`HubConfig::node`](crate::hub::HubConfig::node)).
    pub node: u64,
    /// The session.
    pub session: SessionId,
    /// The append's number at that hub (set by the hub as it sends the append).
    pub op: OpId,
}

/// What a record says; its stream and position make the rest of the frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A room message.
    Room {
        /// The user who published it; `None` when the server did.
        from: Option<UserId>,
        /// The application's name for its kind (server publishes only).
        event: Option<SmolStr>,
        /// Any JSON value.
        data: Payload,
    },
    /// A direct message, in the recipient's outbox.
    Direct {
        /// The sender.
        from: UserId,
        /// Any JSON value.
        data: Payload,
    },
    /// A notification, in the user's outbox.
    Notify {
        /// The application's name for its kind.
        event: Option<SmolStr>,
        /// Any JSON value.
        data: Payload,
    },
    /// A broadcast.
    Broadcast {
        /// The application's name for its kind.
        event: Option<SmolStr>,
        /// Any JSON value.
        data: Payload,
    },
    /// A read receipt, in the outbox of a user who sent `from` direct messages: `from` has
    /// read their outbox up to `upto`, so every direct message whose id (its position in
    /// `from`'s outbox) is at or before it.
    Receipt {
        /// The reader.
        from: UserId,
        /// The reader's read mark, in the reader's outbox.
        upto: Position,
    },
}

impl Message {
    /// Whether a person reads it: every message but a receipt, which a client shows as the
    /// state of messages it sent. The unread counts leave receipts out.
    pub fn is_readable(&self) -> bool {
        !matches!(self, Self::Receipt { .. })
    }
}

/// A record of a stream.
#[derive(Debug)]
pub struct Record {
    /// Its offset in its stream (an append's is ignored: the engine gives it).
    pub offset: u64,
    /// Who appended it, if a session did.
    pub origin: Option<Origin>,
    /// What it says.
    pub message: Message,
    /// Its frame, encoded once for every session and every replay of this record.
    delivery: OnceLock<Shared>,
}

impl Clone for Record {
    fn clone(&self) -> Self {
        Self::new(self.offset, self.origin, self.message.clone())
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        (self.offset, self.origin, &self.message) == (other.offset, other.origin, &other.message)
    }
}

impl Eq for Record {}

/// A record's bytes that do not decode.
#[derive(Debug)]
pub struct RecordError(serde_json::Error);

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a stored record does not decode: {}", self.0)
    }
}

impl std::error::Error for RecordError {}

/// The stored form, JSON: `{"t":"room","f":"alice","d":{...}}` and `"o":[node,session,op]`
/// when a session appended it. The offset is the engine's key, not part of the bytes.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    #[serde(rename = "t")]
    kind: &'a str,
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    origin: Option<(u64, u64, u64)>,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(rename = "d", borrow)]
    data: &'a RawValue,
}

impl Record {
    /// A record.
    pub fn new(offset: u64, origin: Option<Origin>, message: Message) -> Self {
        Self {
            offset,
            origin,
            message,
            delivery: OnceLock::new(),
        }
    }

    /// The same record at `offset`.
    pub fn at(self, offset: u64) -> Self {
        Self { offset, ..self }
    }

    /// Its size for the storage budgets: the payload, the names, and a fixed overhead for the
    /// rest, the same in every engine.
    pub fn size(&self) -> usize {
        const OVERHEAD: usize = 32;
        let (data, names) = match &self.message {
            Message::Room { from, event, data } => (
                data,
                from.as_ref().map_or(0, |u| u.as_str().len())
                    + event.as_ref().map_or(0, |e| e.len()),
            ),
            Message::Direct { from, data } => (data, from.as_str().len()),
            Message::Notify { event, data } | Message::Broadcast { event, data } => {
                (data, event.as_ref().map_or(0, |e| e.len()))
            }
            Message::Receipt { from, .. } => return OVERHEAD + 24 + from.as_str().len(),
        };
        OVERHEAD + data.as_json().len() + names
    }

    /// Its frame, encoded by `encode` the first time it is asked for, then shared.
    pub fn delivery(&self, encode: impl FnOnce(&Message) -> Shared) -> Shared {
        self.delivery.get_or_init(|| encode(&self.message)).clone()
    }

    /// Its bytes, for an engine that stores bytes.
    pub fn encode(&self) -> Vec<u8> {
        // A receipt's position is its data: a JSON string.
        let upto;
        let (kind, from, event, data) = match &self.message {
            Message::Room { from, event, data } => (
                "room",
                from.as_ref().map(UserId::as_str),
                event.as_deref(),
                data,
            ),
            Message::Direct { from, data } => ("direct", Some(from.as_str()), None, data),
            Message::Notify { event, data } => ("notify", None, event.as_deref(), data),
            Message::Broadcast { event, data } => ("broadcast", None, event.as_deref(), data),
            Message::Receipt { from, upto: at } => {
                upto = Payload::from_json(&format!("\"{at}\"")).expect("a position is JSON");
                ("receipt", Some(from.as_str()), None, &upto)
            }
        };
        let stored = Stored {
            kind,
            origin: self.origin.map(|o| (o.node, o.session.0, o.op.0)),
            from,
            event,
            data: data.as_raw(),
        };
        serde_json::to_vec(&stored).expect("a record serializes")
    }

    /// The record [`encode`](Self::encode) made these bytes of, at `offset`.
    pub fn decode(offset: u64, bytes: &[u8]) -> Result<Self, RecordError> {
        let stored: Stored<'_> = serde_json::from_slice(bytes).map_err(RecordError)?;
        let data = Payload::from_raw(stored.data);
        let invalid = |what: &str| RecordError(serde::de::Error::custom(what));
        let user = |name: Option<&str>| {
            name.map(|name| UserId::new(name).map_err(|_| invalid("an invalid user")))
                .transpose()
        };
        let message = match stored.kind {
            "room" => Message::Room {
                from: user(stored.from)?,
                event: stored.event.map(SmolStr::new),
                data,
            },
            "direct" => Message::Direct {
                from: user(stored.from)?.ok_or_else(|| invalid("a direct without a sender"))?,
                data,
            },
            "notify" => Message::Notify {
                event: stored.event.map(SmolStr::new),
                data,
            },
            "broadcast" => Message::Broadcast {
                event: stored.event.map(SmolStr::new),
                data,
            },
            "receipt" => Message::Receipt {
                from: user(stored.from)?.ok_or_else(|| invalid("a receipt without a reader"))?,
                upto: serde_json::from_str::<&str>(stored.data.get())
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| invalid("a receipt without a position"))?,
            },
            _ => return Err(invalid("an unknown kind of record")),
        };
        let origin = stored.origin.map(|(node, session, op)| Origin {
            node,
            session: SessionId(session),
            op: OpId(op),
        });
        Ok(Self::new(offset, origin, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(json: &str) -> Payload {
        Payload::from_json(json).expect("JSON")
    }

    #[test]
    fn every_kind_of_record_decodes_to_itself() {
        let alice = UserId::new("alice").expect("valid");
        let origin = Some(Origin {
            node: 7,
            session: SessionId(u64::MAX),
            op: OpId(u64::MAX),
        });
        let records = [
            Record::new(
                1,
                origin,
                Message::Room {
                    event: None,
                    from: Some(alice.clone()),
                    data: payload(r#"{"text":"hi","n":[1,2.5,null]}"#),
                },
            ),
            Record::new(
                2,
                None,
                Message::Room {
                    event: None,
                    from: None,
                    data: payload("\"\\u2028 \\ud83d\\ude00\""),
                },
            ),
            Record::new(
                3,
                origin,
                Message::Direct {
                    from: alice,
                    data: payload("[]"),
                },
            ),
            Record::new(
                4,
                None,
                Message::Notify {
                    event: Some("invoice".into()),
                    data: payload("1"),
                },
            ),
            Record::new(
                u64::MAX,
                None,
                Message::Broadcast {
                    event: None,
                    data: payload("{}"),
                },
            ),
            Record::new(
                5,
                None,
                Message::Receipt {
                    from: UserId::new("bob").expect("valid"),
                    upto: "1f.42".parse().expect("valid"),
                },
            ),
        ];
        for record in records {
            let bytes = record.encode();
            let decoded = Record::decode(record.offset, &bytes).expect("decodes");
            assert_eq!(decoded, record, "{}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn bytes_that_are_not_a_record_are_an_error() {
        for bad in [
            &b"not json"[..],
            br#"{"t":"room"}"#,
            br#"{"t":"other","d":1}"#,
            br#"{"t":"direct","d":1}"#,
            br#"{"t":"room","f":"","d":1}"#,
            br#"{"t":"receipt","d":"1.2"}"#,
            br#"{"t":"receipt","f":"bob","d":1}"#,
            br#"{"t":"receipt","f":"bob","d":"1"}"#,
        ] {
            assert!(
                Record::decode(1, bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_record_is_encoded_into_its_frame_once() {
        let record = Record::new(
            1,
            None,
            Message::Broadcast {
                event: None,
                data: payload("1"),
            },
        );
        let mut encodes = 0;
        let mut encode = |_: &Message| {
            encodes += 1;
            crate::delivery::Delivery::unstreamed(crate::envelope::Frame::from_json("{}".into()))
        };
        let first = record.delivery(&mut encode);
        let again = record.delivery(&mut encode);
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        assert_eq!(encodes, 1);
    }
}
