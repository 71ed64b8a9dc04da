//! The incremental decoder: WHATWG HTML, "Server-sent events", sections "Parsing an event stream"
//! and "Interpreting an event stream", rule for rule.
//!
//! Lines that arrive whole inside one input slice are parsed in place; only a line that an input
//! slice leaves unfinished is copied, into a buffer bounded by [`DecoderLimits::max_line`].

use std::borrow::Cow;

use memchr::{memchr, memchr2};
use smol_str::SmolStr;

use super::Event;

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// A line buffer grown past this by a long line is given back after the line, not kept.
const RETAINED_LINE_CAPACITY: usize = 8 * 1024;

/// Limits that bound a [`Decoder`]'s memory. The defaults suit a client of any roomcast server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderLimits {
    /// The longest line, in bytes, line end excluded. Default 1 MiB.
    pub max_line: usize,
    /// The largest event: its data (with the LFs that join its lines) plus its event type, in
    /// bytes. Default 1 MiB.
    pub max_event: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        Self {
            max_line: 1 << 20,
            max_event: 1 << 20,
        }
    }
}

/// A limit the stream broke. The decoder stays failed until [`Decoder::finish`]: a peer that
/// sends an oversized line or event is misbehaving, and its connection should be dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line was longer than [`DecoderLimits::max_line`] bytes.
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// An event's data and type grew past [`DecoderLimits::max_event`] bytes.
    EventTooLarge {
        /// The limit in force.
        limit: usize,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LineTooLong { limit } => {
                write!(f, "SSE line longer than the limit of {limit} bytes")
            }
            Self::EventTooLarge { limit } => {
                write!(f, "SSE event larger than the limit of {limit} bytes")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// An incremental `text/event-stream` decoder.
///
/// Feed it byte slices of any size, split anywhere; it yields the events a browser's
/// `EventSource` would dispatch, in order, whatever the split. It is pure: no IO, no clock.
///
/// ```
/// use roomcast_core::sse::Decoder;
///
/// let mut decoder = Decoder::new();
/// let mut events = Vec::new();
/// for chunk in [&b"id: 7\nevent: chat\ndata: hel"[..], b"lo\r", b"\n\r"] {
///     let mut input = chunk;
///     while let Some(event) = decoder.decode(&mut input).expect("within limits") {
///         events.push(event);
///     }
/// }
/// assert_eq!(events.len(), 1);
/// assert_eq!((&*events[0].event, &*events[0].data, &*events[0].id), ("chat", "hello", "7"));
/// assert_eq!(decoder.last_event_id(), "7");
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: DecoderLimits,
    /// The start of a line that the input so far has not finished.
    line: Vec<u8>,
    /// The unfinished line is a comment: its bytes are skipped, not kept.
    in_comment: bool,
    /// The last line ended with CR, so an LF that comes next belongs to that line end.
    after_cr: bool,
    /// No line has been parsed yet: a byte order mark may lead the first one.
    at_start: bool,
    /// The data buffer, each line followed by LF.
    data: String,
    /// The event type buffer; empty means `message`.
    event_type: SmolStr,
    /// The "last event ID buffer": set by `id` fields.
    id_buffer: SmolStr,
    /// The "last event ID string": committed from the buffer when an event block ends.
    last_event_id: SmolStr,
    /// The reconnection time, in milliseconds, once a `retry` field set it.
    retry: Option<u64>,
    failed: Option<DecodeError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder for a new stream, with the default limits.
    pub fn new() -> Self {
        Self::with_limits(DecoderLimits::default())
    }

    /// A decoder for a new stream with the given limits.
    pub fn with_limits(limits: DecoderLimits) -> Self {
        Self {
            limits,
            line: Vec::new(),
            in_comment: false,
            after_cr: false,
            at_start: true,
            data: String::new(),
            event_type: SmolStr::default(),
            id_buffer: SmolStr::default(),
            last_event_id: SmolStr::default(),
            retry: None,
            failed: None,
        }
    }

    /// Starts from a known last event id, as a client does when it reconnects with a
    /// `Last-Event-ID` header: events that set no id of their own carry this one.
    #[must_use]
    pub fn with_last_event_id(mut self, id: &str) -> Self {
        self.id_buffer = SmolStr::new(id);
        self.last_event_id = self.id_buffer.clone();
        self
    }

    /// The last event id: the one in force when the last event block ended.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time in milliseconds, if a `retry` field has set one.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The limits in force.
    pub fn limits(&self) -> DecoderLimits {
        self.limits
    }

    /// Bytes held for unfinished input: the pending line, data and event type. Never more than
    /// `max_line + max_event`.
    pub fn buffered_len(&self) -> usize {
        self.line.len() + self.data.len() + self.event_type.len()
    }

    /// Decodes the next event from `input`, advancing `input` past every byte it used.
    ///
    /// Returns `Ok(None)` once `input` is empty and no event was completed; a line it leaves
    /// unfinished is kept for the next call. A blank line ended by a lone CR dispatches at once,
    /// without waiting to see whether an LF follows. On a limit breach, returns the error now and
    /// on every later call, until [`finish`](Self::finish).
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Event>, DecodeError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        loop {
            let bytes = *input;
            let Some(&first) = bytes.first() else {
                return Ok(None);
            };
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    *input = &bytes[1..];
                    continue;
                }
            }
            let Some(end) = memchr2(b'\n', b'\r', bytes) else {
                *input = &[];
                self.hold_unfinished(bytes)?;
                return Ok(None);
            };
            self.after_cr = bytes[end] == b'\r';
            *input = &bytes[end + 1..];
            let event = if self.in_comment {
                self.in_comment = false;
                self.at_start = false;
                None
            } else if self.line.is_empty() {
                self.parse_line(&bytes[..end])?
            } else {
                self.parse_held_line(&bytes[..end])?
            };
            if event.is_some() {
                return Ok(event);
            }
        }
    }

    /// Ends the stream. The pending event, unfinished at end of stream, is dropped, as the spec
    /// requires; the decoder is then ready for the stream of the next connection, keeping the
    /// last event id and the reconnection time, and clearing a limit error.
    pub fn finish(&mut self) {
        self.line = Vec::new();
        self.in_comment = false;
        self.after_cr = false;
        self.at_start = true;
        self.data = String::new();
        self.event_type = SmolStr::default();
        self.id_buffer = self.last_event_id.clone();
        self.failed = None;
    }

    /// Keeps the start of a line that the input did not finish.
    fn hold_unfinished(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        if self.in_comment {
            return Ok(());
        }
        if self.line.is_empty() && bytes[0] == b':' {
            // A comment is skipped whole: it costs no memory, however long.
            self.in_comment = true;
            return Ok(());
        }
        if self.line.len() + bytes.len() > self.limits.max_line {
            return Err(self.fail(DecodeError::LineTooLong {
                limit: self.limits.max_line,
            }));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Finishes the held line with `rest` and parses it.
    fn parse_held_line(&mut self, rest: &[u8]) -> Result<Option<Event>, DecodeError> {
        if self.line.len() + rest.len() > self.limits.max_line {
            return Err(self.fail(DecodeError::LineTooLong {
                limit: self.limits.max_line,
            }));
        }
        let mut line = std::mem::take(&mut self.line);
        line.extend_from_slice(rest);
        let event = self.parse_line(&line);
        if line.capacity() <= RETAINED_LINE_CAPACITY {
            line.clear();
            self.line = line;
        }
        event
    }

    /// Parses one whole line, without its line end.
    fn parse_line(&mut self, mut line: &[u8]) -> Result<Option<Event>, DecodeError> {
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        let (name, value) = match memchr(b':', line) {
            Some(0) => return Ok(None), // a comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                let text = utf8_lossy(value);
                self.check_event_size(self.data.len() + text.len() + 1 + self.event_type.len())?;
                if self.data.is_empty() {
                    // One allocation for the common single-line event, LF included.
                    self.data.reserve_exact(text.len() + 1);
                }
                self.data.push_str(&text);
                self.data.push('\n');
            }
            b"event" => {
                let text = utf8_lossy(value);
                self.check_event_size(self.data.len() + text.len())?;
                self.event_type = SmolStr::new(text);
            }
            b"id" => {
                if memchr(0, value).is_none() {
                    self.id_buffer = SmolStr::new(utf8_lossy(value));
                }
            }
            b"retry" => {
                // Only ASCII digits; an empty value, or one past u64 (as in Chromium), is ignored.
                if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
                    if let Some(ms) = value.iter().try_fold(0u64, |ms, digit| {
                        ms.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
                    }) {
                        self.retry = Some(ms);
                    }
                }
            }
            _ => {} // unknown fields are ignored
        }
        Ok(None)
    }

    /// A blank line ends the event block: commit the last event id and dispatch, if there is data.
    fn dispatch(&mut self) -> Option<Event> {
        self.last_event_id = self.id_buffer.clone();
        let event_type = std::mem::take(&mut self.event_type);
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the LF after the last line
        Some(Event {
            event: if event_type.is_empty() {
                SmolStr::new_static("message")
            } else {
                event_type
            },
            data,
            id: self.last_event_id.clone(),
        })
    }

    fn check_event_size(&mut self, size: usize) -> Result<(), DecodeError> {
        if size > self.limits.max_event {
            return Err(self.fail(DecodeError::EventTooLarge {
                limit: self.limits.max_event,
            }));
        }
        Ok(())
    }

    fn fail(&mut self, error: DecodeError) -> DecodeError {
        self.line = Vec::new();
        self.data = String::new();
        self.event_type = SmolStr::default();
        self.failed = Some(error.clone());
        error
    }
}

/// The WHATWG "UTF-8 decode": U+FFFD for each maximal invalid subsequence. Decoding field by
/// field equals decoding the whole stream first, because fields split at ASCII bytes, which never
/// occur inside a multi-byte sequence.
fn utf8_lossy(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` has an ASCII fast path that `from_utf8_lossy` lacks.
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests;
