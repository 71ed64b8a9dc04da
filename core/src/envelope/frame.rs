//! The pieces every envelope shares: refs, payloads, error codes and encoded frames.

use std::fmt;

use bytestring::ByteString;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use smol_str::SmolStr;

/// Longest text `ref`, in bytes.
pub const MAX_REF_LEN: usize = 64;

/// A client's correlation id, echoed unchanged in the one reply to its message: a JSON string of
/// at most 64 bytes, or a non-negative integer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ref {
    /// A number, as in `"ref": 7`.
    Number(u64),
    /// A string, as in `"ref": "a7"`.
    Text(SmolStr),
}

impl From<u64> for Ref {
    fn from(n: u64) -> Self {
        Self::Number(n)
    }
}

impl From<&str> for Ref {
    fn from(text: &str) -> Self {
        Self::Text(SmolStr::new(text))
    }
}

impl Serialize for Ref {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => serializer.serialize_u64(*n),
            Self::Text(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        impl Visitor<'_> for RefVisitor {
            type Value = Ref;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a string of at most {MAX_REF_LEN} bytes or a non-negative integer"
                )
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Ref, E> {
                Ok(Ref::Number(n))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Ref, E> {
                if text.len() > MAX_REF_LEN {
                    return Err(E::invalid_length(text.len(), &self));
                }
                Ok(Ref::from(text))
            }
        }
        deserializer.deserialize_any(RefVisitor)
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(text) => write!(f, "{text:?}"),
        }
    }
}

/// Application data: any JSON value, kept as the exact text it arrived in, so relaying it costs
/// no parsing and no re-serialization.
#[derive(Clone, Debug)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// Checks that `json` is one JSON value every client can read (nested at most
    /// [`DEFAULT_MAX_DEPTH`](super::DEFAULT_MAX_DEPTH) levels, no lone surrogate) and wraps it.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        Self::from_json_within(json, super::DEFAULT_MAX_DEPTH)
    }

    /// As [`from_json`](Self::from_json), nested at most `max_depth` levels.
    pub fn from_json_within(json: &str, max_depth: usize) -> Result<Self, serde_json::Error> {
        let raw = RawValue::from_string(json.to_owned())?;
        super::safe_json::check(raw.get(), max_depth)
            .map_err(<serde_json::Error as serde::de::Error>::custom)?;
        Ok(Self(raw))
    }

    /// Serializes `value` into a payload.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    pub(crate) fn from_raw(raw: &RawValue) -> Self {
        Self(raw.to_owned())
    }

    pub(crate) fn as_raw(&self) -> &RawValue {
        &self.0
    }

    /// The JSON text.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// Parses the payload into `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl Eq for Payload {}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// An encoded message: JSON text, shared. Cloning it clones a pointer, so a message sent to many
/// sessions is serialized once. The text is kept as [`bytes::Bytes`] (through `bytestring`), so
/// IO layers built on `bytes` take it per recipient without an allocation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Frame(ByteString);

/// The `type` of a frame this crate encoded (`{"type":"...` comes first), or `message` for text
/// that does not start so.
pub fn message_type(frame: &str) -> &str {
    // A byte loop, not `split_once`'s memchr: types are a few bytes long, and this runs for
    // every frame to every SSE stream (its event name) and to the metrics.
    let Some(rest) = frame.strip_prefix(r#"{"type":""#) else {
        return "message";
    };
    match rest.bytes().position(|b| b == b'"') {
        // A '"' is ASCII, so the split is at a character boundary.
        Some(end) => &rest[..end],
        None => "message",
    }
}

impl Frame {
    /// Wraps already encoded JSON text.
    pub(crate) fn from_json(json: String) -> Self {
        Self(ByteString::from(json))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The message's `type`, read from the frame's head (where this crate always writes it).
    pub fn message_type(&self) -> &str {
        message_type(&self.0)
    }

    /// The JSON text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Frames are never empty; here for completeness.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The frame as [`bytes::Bytes`] sharing the same memory, for IO layers built on `bytes`.
    pub fn to_bytes(&self) -> bytes::Bytes {
        self.0.as_bytes().clone()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({})", &*self.0)
    }
}

/// The stable code of an `error` reply. Clients branch on the code, never on the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not valid JSON, not an object, or a field is missing or of the wrong kind.
    BadFrame,
    /// The `type` is not one the server knows.
    UnknownType,
    /// The frame is larger than the server accepts.
    TooLarge,
    /// The message names a room the session has not joined.
    NotMember,
    /// The session may not do this.
    Unauthorized,
    /// The session sends faster than its rate limit; the message was dropped.
    RateLimited,
    /// A limit (such as the number of rooms joined, or a storage budget) is reached.
    LimitReached,
    /// The server cannot store it now (its engine is unreachable or behind): retry later.
    Unavailable,
    /// The server failed; the message may be retried.
    Internal,
}

impl ErrorCode {
    /// Every code, in wire order.
    pub const ALL: [Self; 9] = [
        Self::BadFrame,
        Self::UnknownType,
        Self::TooLarge,
        Self::NotMember,
        Self::Unauthorized,
        Self::RateLimited,
        Self::LimitReached,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadFrame => "bad_frame",
            Self::UnknownType => "unknown_type",
            Self::TooLarge => "too_large",
            Self::NotMember => "not_member",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::LimitReached => "limit_reached",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The code named `text`, if any.
    pub fn from_wire(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A frame the codec refused, with the `ref` to answer when one could be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeError {
    /// What kind of fault.
    pub code: ErrorCode,
    /// The frame's `ref`, if it could be read.
    pub reference: Option<Ref>,
    /// A human-readable explanation.
    pub message: String,
}

/// Longest error message, in bytes: an answer never grows with the frame that caused it.
pub const MAX_ERROR_MESSAGE: usize = 200;

impl EnvelopeError {
    pub(crate) fn new(code: ErrorCode, reference: Option<Ref>, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_ERROR_MESSAGE {
            let mut end = MAX_ERROR_MESSAGE - '…'.len_utf8();
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        Self {
            code,
            reference,
            message,
        }
    }

    /// The `error` reply to send back.
    pub fn to_frame(&self) -> Frame {
        crate::envelope::ServerMessage::Error {
            reference: self.reference.clone(),
            code: self.code,
            message: self.message.clone(),
        }
        .encode()
    }
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for EnvelopeError {}
