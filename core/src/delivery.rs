//! What the hub hands a session: an encoded frame, shared by every recipient, with its place in
//! a stream when it has one (an SSE transport writes that into the event's `id:`).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::cursor::{Position, Stream};
use crate::envelope::Frame;

/// A session, as the hub knows it. An id is not reused until 2^32 more sessions have connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl SessionId {
    pub(crate) fn new(serial: u32, index: u32) -> Self {
        Self(u64::from(serial) << 32 | u64::from(index))
    }

    /// A small number, unique among the hub's live sessions and below the largest number of
    /// sessions it has had at once: a driver can keep per-session state in a `Vec` indexed by
    /// it, so delivering to N sessions costs N array accesses, not N map lookups.
    pub fn index(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// One message on its way out. Built once per message and shared: fan-out to N sessions clones
/// one pointer N times.
#[derive(Debug)]
pub struct Delivery {
    /// The encoded message.
    pub frame: Frame,
    /// The stream and position of a stored message; `None` for replies, presence, typing.
    pub stream: Option<(Stream, Position)>,
    /// The frame holds no CR or LF (JSON this crate encodes never does; an application's raw
    /// payload may): an SSE event carries it as one `data:` line. Checked once per message
    /// here, not once per SSE recipient.
    one_line: bool,
    /// Other protocols' encodings of the frame (a STOMP `MESSAGE` per STOMP version), each
    /// made the first time a session of that protocol receives it, then shared by all.
    encodings: OnceLock<Box<[OnceLock<Option<Bytes>>; ENCODINGS]>>,
}

/// Slots for other protocols' encodings of a delivery (`stomp::bridge` uses 0 to 2 for its
/// `MESSAGE` per version, and 3 for the text of its position, its `message-id`).
pub const ENCODINGS: usize = 4;

/// Two deliveries are equal when their frames and stream positions are: the encodings made for
/// other protocols are caches of the frame.
impl PartialEq for Delivery {
    fn eq(&self, other: &Self) -> bool {
        self.frame == other.frame && self.stream == other.stream
    }
}

impl Eq for Delivery {}

/// A shared [`Delivery`].
pub type Shared = Arc<Delivery>;

impl Delivery {
    /// A delivery of a frame that belongs to no stream.
    pub fn unstreamed(frame: Frame) -> Shared {
        Arc::new(Self::new(frame, None))
    }

    /// A delivery of a stored message.
    pub fn streamed(frame: Frame, stream: Stream, position: Position) -> Shared {
        Arc::new(Self::new(frame, Some((stream, position))))
    }

    fn new(frame: Frame, stream: Option<(Stream, Position)>) -> Self {
        let one_line = memchr::memchr2(b'\n', b'\r', frame.as_bytes()).is_none();
        Self {
            frame,
            stream,
            one_line,
            encodings: OnceLock::new(),
        }
    }

    /// The frame's encoding in slot `slot` (below [`ENCODINGS`]) for another protocol: `make`
    /// builds it the first time it is asked for, and every later caller shares it (`None`:
    /// the frame has no such form). Slots are the protocols' to assign, one each.
    pub fn encoding(
        &self,
        slot: usize,
        make: impl FnOnce(&Self) -> Option<Bytes>,
    ) -> Option<&Bytes> {
        let slots = self.encodings.get_or_init(Box::default);
        slots.get(slot)?.get_or_init(|| make(self)).as_ref()
    }

    /// The frame holds no CR or LF.
    pub fn is_one_line(&self) -> bool {
        self.one_line
    }
}
