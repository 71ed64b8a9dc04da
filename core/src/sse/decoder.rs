//! The incremental decoder: WHATWG HTML, "Server-sent events", sections "Parsing an event stream"
//! and "Interpreting an event stream", rule for rule.
//!
//! Lines that arrive whole inside one input slice are parsed in place; only a line that an input
//! slice leaves unfinished is copied, into a buffer bounded by [`DecoderLimits::max_line`].

use std::borrow::Cow;

use memchr::memchr;

use super::scan::find_line_end;

use super::Event;

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// A buffer grown past this by a long line or event is given back afterwards, not kept.
const RETAINED_CAPACITY: usize = 8 * 1024;

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
/// Each [`Event`] borrows the decoder's buffers, which are reused, so decoding allocates nothing
/// per event; [`Event::into_owned`] keeps one.
///
/// ```
/// use roomcast_core::sse::Decoder;
///
/// let mut decoder = Decoder::new();
/// let mut events = Vec::new();
/// for chunk in [&b"id: 7\nevent: chat\ndata: hel"[..], b"lo\r", b"\n\r"] {
///     let mut input = chunk;
///     while let Some(event) = decoder.decode(&mut input).expect("within limits") {
///         events.push(event.into_owned());
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
    /// The data buffer, each line followed by LF. Raw bytes, decoded once at dispatch.
    data: Vec<u8>,
    /// The event type buffer (empty means `message`), when `has_type`; otherwise the last type
    /// seen, kept so that a block naming the same type again costs no UTF-8 decoding.
    event_type: String,
    /// The current block has set the event type.
    has_type: bool,
    /// The "last event ID buffer": set by `id` fields.
    id_buffer: String,
    /// The "last event ID string": committed from the buffer when an event block ends.
    last_event_id: String,
    /// The reconnection time, in milliseconds, once a `retry` field set it.
    retry: Option<u64>,
    /// An event was handed out: its data and type are cleared on the next call.
    dispatched: bool,
    /// The dispatched data, when it was not valid UTF-8 and needed U+FFFD replacements.
    lossy_data: String,
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
            data: Vec::new(),
            event_type: String::new(),
            has_type: false,
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry: None,
            dispatched: false,
            lossy_data: String::new(),
            failed: None,
        }
    }

    /// Starts from a known last event id, as a client does when it reconnects with a
    /// `Last-Event-ID` header: events that set no id of their own carry this one.
    #[must_use]
    pub fn with_last_event_id(mut self, id: &str) -> Self {
        self.id_buffer = id.to_owned();
        self.last_event_id = id.to_owned();
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

    /// Bytes held for unfinished input: the pending line, data and event type, never more than
    /// `max_line + max_event`. (The id buffers and the last event type add at most one line each.)
    pub fn buffered_len(&self) -> usize {
        self.line.len() + self.data.len() + self.type_len()
    }

    fn type_len(&self) -> usize {
        if self.has_type {
            self.event_type.len()
        } else {
            0
        }
    }

    /// Decodes the next event from `input`, advancing `input` past every byte it used.
    ///
    /// Returns `Ok(None)` once `input` is empty and no event was completed; a line it leaves
    /// unfinished is kept for the next call. A blank line ended by a lone CR dispatches at once,
    /// without waiting to see whether an LF follows. On a limit breach, returns the error now and
    /// on every later call, until [`finish`](Self::finish).
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Event<'_>>, DecodeError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.dispatched {
            self.dispatched = false;
            self.clear_block();
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
            if self.line.is_empty() && !self.at_start && !self.in_comment {
                // Fast path for the commonest line, parsed as `parse_line` would.
                if let Some(value) = bytes.strip_prefix(b"data:") {
                    let prefix = if value.first() == Some(&b' ') { 6 } else { 5 };
                    if let Some(end) = find_line_end(&bytes[prefix..]) {
                        self.check_line_len(prefix + end)?;
                        self.push_data(&bytes[prefix..prefix + end])?;
                        self.after_cr = bytes[prefix + end] == b'\r';
                        *input = &bytes[prefix + end + 1..];
                        continue;
                    }
                }
            }
            let Some(end) = find_line_end(bytes) else {
                *input = &[];
                self.hold_unfinished(bytes)?;
                return Ok(None);
            };
            // A comment is never held, so never limited; every other line is, however it arrived.
            let comment = self.in_comment || (self.line.is_empty() && first == b':');
            if !comment {
                self.check_line_len(self.line.len() + end)?;
            }
            self.after_cr = bytes[end] == b'\r';
            *input = &bytes[end + 1..];
            let dispatch = if self.in_comment {
                self.in_comment = false;
                self.at_start = false;
                false
            } else if self.line.is_empty() {
                self.parse_line(&bytes[..end])?
            } else {
                self.parse_held_line(&bytes[..end])?
            };
            if dispatch {
                self.dispatched = true;
                return Ok(Some(self.event()));
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
        self.dispatched = false;
        self.clear_block();
        self.id_buffer.clone_from(&self.last_event_id);
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
        self.check_line_len(self.line.len() + bytes.len())?;
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn check_line_len(&mut self, len: usize) -> Result<(), DecodeError> {
        if len > self.limits.max_line {
            return Err(self.fail(DecodeError::LineTooLong {
                limit: self.limits.max_line,
            }));
        }
        Ok(())
    }

    /// Finishes the held line with `rest` and parses it.
    fn parse_held_line(&mut self, rest: &[u8]) -> Result<bool, DecodeError> {
        let mut line = std::mem::take(&mut self.line);
        line.extend_from_slice(rest);
        let dispatch = self.parse_line(&line);
        if line.capacity() <= RETAINED_CAPACITY {
            line.clear();
            self.line = line;
        }
        dispatch
    }

    /// Parses one whole line, without its line end; true when it ends a block with data.
    fn parse_line(&mut self, mut line: &[u8]) -> Result<bool, DecodeError> {
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            // A blank line ends the block: commit the last event id, dispatch if there is data.
            self.last_event_id.clone_from(&self.id_buffer);
            if self.data.is_empty() {
                self.has_type = false;
                return Ok(false);
            }
            return Ok(true);
        }
        // The field name runs to the first colon. Known names are at most five bytes, so a line
        // with no colon in its first six is an unknown field: no need to search further.
        let head = &line[..line.len().min(6)];
        let (name, value) = match head.iter().position(|&byte| byte == b':') {
            Some(0) => return Ok(false), // a comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None if line.len() < 6 => (line, &b""[..]),
            None => return Ok(false),
        };
        match name {
            b"data" => self.push_data(value)?,
            b"event" => {
                if value == self.event_type.as_bytes() {
                    // The type is the one seen last: no need to decode it again.
                    self.check_event_size(self.data.len() + value.len())?;
                } else {
                    let event_type = utf8_lossy(value);
                    self.check_event_size(self.data.len() + event_type.len())?;
                    self.event_type.clear();
                    self.event_type.push_str(&event_type);
                }
                self.has_type = true;
            }
            b"id" if memchr(0, value).is_none() => {
                self.id_buffer.clear();
                self.id_buffer.push_str(&utf8_lossy(value));
            }
            // Only ASCII digits; an empty value, or one past u64 (as in Chromium), is ignored.
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let ms = value.iter().try_fold(0u64, |ms, digit| {
                    ms.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
                });
                if ms.is_some() {
                    self.retry = ms;
                }
            }
            _ => {} // unknown fields are ignored
        }
        Ok(false)
    }

    fn push_data(&mut self, value: &[u8]) -> Result<(), DecodeError> {
        self.check_event_size(self.data.len() + value.len() + 1 + self.type_len())?;
        self.data.extend_from_slice(value);
        self.data.push(b'\n');
        Ok(())
    }

    /// The event of the block that just ended, which has data.
    fn event(&mut self) -> Event<'_> {
        let raw = &self.data[..self.data.len() - 1]; // without the LF after the last line
        // std's validator wins on short data, simdutf8 on long.
        let valid = if raw.len() < 256 {
            std::str::from_utf8(raw).ok()
        } else {
            simdutf8::basic::from_utf8(raw).ok()
        };
        let data = match valid {
            Some(data) => data,
            None => {
                self.lossy_data = String::from_utf8_lossy(raw).into_owned();
                &self.lossy_data
            }
        };
        Event {
            event: if !self.has_type || self.event_type.is_empty() {
                "message"
            } else {
                &self.event_type
            },
            data,
            id: &self.last_event_id,
        }
    }

    /// Empties the data and event type buffers, giving back memory a large event took.
    fn clear_block(&mut self) {
        if self.data.capacity() > RETAINED_CAPACITY {
            self.data = Vec::new();
        }
        self.data.clear();
        self.has_type = false;
        self.lossy_data = String::new();
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
        self.data = Vec::new();
        self.event_type = String::new();
        self.has_type = false;
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
