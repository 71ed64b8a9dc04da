//! What the hub hands a session: an encoded frame, shared by every recipient, with its place in
//! a stream when it has one (an SSE transport writes that into the event's `id:`).

use std::sync::Arc;

use crate::cursor::{Position, Stream};
use crate::envelope::Frame;

/// A session, as the hub knows it. Ids are never reused within one hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// One message on its way out. Built once per message and shared: fan-out to N sessions clones
/// one pointer N times.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The encoded message.
    pub frame: Frame,
    /// The stream and position of a stored message; `None` for replies, presence, typing.
    pub stream: Option<(Stream, Position)>,
}

/// A shared [`Delivery`].
pub type Shared = Arc<Delivery>;

impl Delivery {
    /// A delivery of a frame that belongs to no stream.
    pub fn unstreamed(frame: Frame) -> Shared {
        Arc::new(Self {
            frame,
            stream: None,
        })
    }

    /// A delivery of a stored message.
    pub fn streamed(frame: Frame, stream: Stream, position: Position) -> Shared {
        Arc::new(Self {
            frame,
            stream: Some((stream, position)),
        })
    }
}
