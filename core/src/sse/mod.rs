//! Server-Sent Events: the `text/event-stream` format of the WHATWG HTML standard.
//!
//! [`Decoder`] turns bytes, split anywhere, into the [`Event`]s a browser's `EventSource` would
//! dispatch; [`Fields`] and [`encode_comment`] write event blocks and comments that any spec
//! parser reads back unchanged, and refuse field values that would inject a line.
//!
//! ```
//! use roomcast_core::sse::{Decoder, Fields};
//!
//! let mut bytes = Vec::new();
//! Fields::data("line one\nline two").id("42").event("chat").encode(&mut bytes)?;
//!
//! let mut decoder = Decoder::new();
//! let event = decoder.decode(&mut &bytes[..]).expect("within limits").expect("an event");
//! assert_eq!((event.event, event.data, event.id), ("chat", "line one\nline two", "42"));
//! # Ok::<(), roomcast_core::sse::EncodeError>(())
//! ```

mod decoder;
mod encoder;
mod scan;

pub use decoder::{DecodeError, Decoder, DecoderLimits};
pub(crate) use encoder::encode_clean_event;
pub use encoder::{EncodeError, Fields, encode_comment};

/// An event as a browser's `EventSource` dispatches it, borrowed from the [`Decoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event<'a> {
    /// The event type: `message` unless an `event` field named another.
    pub event: &'a str,
    /// The block's `data` lines, joined with LF.
    pub data: &'a str,
    /// The last event id when the event was dispatched (a browser's `lastEventId`).
    pub id: &'a str,
}

impl Event<'_> {
    /// An owned copy, to keep past the next call to the decoder.
    pub fn into_owned(self) -> OwnedEvent {
        OwnedEvent {
            event: self.event.to_owned(),
            data: self.data.to_owned(),
            id: self.id.to_owned(),
        }
    }
}

/// An [`Event`] that owns its strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct OwnedEvent {
    /// The event type: `message` unless an `event` field named another.
    pub event: String,
    /// The block's `data` lines, joined with LF.
    pub data: String,
    /// The last event id when the event was dispatched (a browser's `lastEventId`).
    pub id: String,
}

impl OwnedEvent {
    /// Borrows it as an [`Event`].
    pub fn as_event(&self) -> Event<'_> {
        Event {
            event: &self.event,
            data: &self.data,
            id: &self.id,
        }
    }
}
