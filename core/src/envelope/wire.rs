//! The flat wire form: every field of every message, each optional, read in one pass.
//!
//! serde's tagged enums buffer the whole object before choosing a variant, which loses raw
//! payloads and the `ref` of a broken frame. Reading one flat struct keeps `data` as raw text,
//! lets the codec check the `type` first, and makes every error message name the field at fault.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{EnvelopeError, ErrorCode, Payload, Ref, StreamStart};
use crate::cursor::Position;
use crate::names::{NameError, RoomName, UserId};

#[derive(Deserialize, Default)]
#[serde(default, expecting = "a JSON object")]
pub(super) struct Wire<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(rename = "ref")]
    pub(super) reference: Option<Ref>,
    #[serde(borrow, deserialize_with = "raw")]
    pub(super) data: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) room: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) since: Option<Cow<'a, str>>,
    pub(super) typing: Option<bool>,
    #[serde(borrow)]
    pub(super) to: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) token: Option<Cow<'a, str>>,
    // Server messages only.
    pub(super) protocol: Option<u64>,
    #[serde(borrow)]
    pub(super) session: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) joins: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    pub(super) leaves: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    pub(super) members: Option<Vec<Cow<'a, str>>>,
    pub(super) count: Option<u64>,
    pub(super) recovered: Option<bool>,
    pub(super) replayed: Option<u64>,
    pub(super) delivered: Option<bool>,
    #[serde(borrow)]
    pub(super) upto: Option<Cow<'a, str>>,
    pub(super) unread: Option<u64>,
    pub(super) ping_interval_ms: Option<u64>,
    pub(super) ping_timeout_ms: Option<u64>,
    pub(super) max_frame: Option<u64>,
    pub(super) reconnect_ms: Option<u64>,
    pub(super) in_ms: Option<u64>,
    #[serde(borrow)]
    pub(super) streams: Option<Vec<WireStream<'a>>>,
}

/// One entry of `streams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireStream<'a> {
    #[serde(borrow)]
    pub(super) stream: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) id: Cow<'a, str>,
    #[serde(default)]
    pub(super) recovered: Option<bool>,
    pub(super) replayed: u64,
    #[serde(default)]
    pub(super) unread: Option<u64>,
}

/// `data` is kept whenever present, `null` included (plain `Option` would read `null` as absent).
fn raw<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// Just the `ref`, to answer a frame whose other fields did not read.
#[derive(Deserialize)]
struct RefOnly {
    #[serde(rename = "ref", default)]
    reference: Option<Ref>,
}

impl<'a> Wire<'a> {
    /// Reads a frame, refusing it whole if it is too large to look at.
    pub(super) fn read(text: &'a str, max_frame: usize) -> Result<Self, EnvelopeError> {
        if text.len() > max_frame {
            return Err(EnvelopeError::new(
                ErrorCode::TooLarge,
                None,
                format!(
                    "frame of {} bytes is over the limit of {max_frame}",
                    text.len()
                ),
            ));
        }
        if !is_object(text) {
            let message = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => "frame is not a JSON object".to_owned(),
                Err(error) => format!("frame is not valid JSON: {error}"),
            };
            return Err(EnvelopeError::new(ErrorCode::BadFrame, None, message));
        }
        serde_json::from_str::<Wire<'a>>(text).map_err(|error| {
            let reference = serde_json::from_str::<RefOnly>(text)
                .ok()
                .and_then(|r| r.reference);
            let message = if error.is_syntax() || error.is_eof() {
                format!("frame is not valid JSON: {error}")
            } else {
                format!("frame does not follow the protocol: {error}")
            };
            EnvelopeError::new(ErrorCode::BadFrame, reference, message)
        })
    }

    pub(super) fn bad(&self, message: impl Into<String>) -> EnvelopeError {
        EnvelopeError::new(ErrorCode::BadFrame, self.reference.clone(), message)
    }

    /// A required field, or the `bad_frame` error naming it.
    pub(super) fn need<T>(&self, field: Option<T>, name: &str) -> Result<T, EnvelopeError> {
        field.ok_or_else(|| {
            let kind = self.kind.as_deref().unwrap_or("message");
            self.bad(format!("{kind} needs the field `{name}`"))
        })
    }

    pub(super) fn room(&self) -> Result<RoomName, EnvelopeError> {
        let room = self.need(self.room.as_deref(), "room")?;
        RoomName::new(room).map_err(|e| self.bad(name_error("room", room, e)))
    }

    pub(super) fn user(&self, field: Option<&str>, name: &str) -> Result<UserId, EnvelopeError> {
        let user = self.need(field, name)?;
        UserId::new(user).map_err(|e| self.bad(name_error(name, user, e)))
    }

    pub(super) fn users(
        &self,
        field: &Option<Vec<Cow<'a, str>>>,
        name: &str,
    ) -> Result<Vec<UserId>, EnvelopeError> {
        self.need(field.as_ref(), name)?
            .iter()
            .map(|user| UserId::new(user).map_err(|e| self.bad(name_error(name, user, e))))
            .collect()
    }

    pub(super) fn position(
        &self,
        field: Option<&str>,
        name: &str,
    ) -> Result<Position, EnvelopeError> {
        let text = self.need(field, name)?;
        text.parse().map_err(|e| self.bad(format!("`{name}`: {e}")))
    }

    pub(super) fn streams(&self) -> Result<Vec<StreamStart>, EnvelopeError> {
        self.need(self.streams.as_ref(), "streams")?
            .iter()
            .map(|entry| {
                Ok(StreamStart {
                    stream: entry
                        .stream
                        .parse()
                        .map_err(|e| self.bad(format!("`stream`: {e}")))?,
                    id: self.position(Some(&entry.id), "id")?,
                    recovered: entry.recovered,
                    replayed: entry.replayed,
                    unread: entry.unread,
                })
            })
            .collect()
    }

    /// `data`, nested at most `max_depth` levels and without a lone surrogate.
    pub(super) fn data(&self, max_depth: usize) -> Result<Payload, EnvelopeError> {
        let raw = self.need(self.data, "data")?;
        super::safe_json::check(raw.get(), max_depth)
            .map_err(|why| self.bad(format!("data: {why}")))?;
        Ok(Payload::from_raw(raw))
    }
}

/// Whether the frame is (at least starts as) a JSON object. serde reads a struct from a JSON
/// array too, field by field, so `["join","r",null,"lobby"]` would pass for a join without this.
pub(super) fn is_object(text: &str) -> bool {
    text.trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
}

fn name_error(field: &str, value: &str, error: NameError) -> String {
    let shown: String = value.chars().take(80).collect();
    format!("`{field}` {shown:?} {error}")
}
