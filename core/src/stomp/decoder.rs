//! The incremental decoder: STOMP 1.2, "STOMP Frames", "Value Encoding", "Header
//! content-length", "Size Limits" and "Heart-beating", rule for rule.
//!
//! Bytes are queued as they come and parsed when frames are polled, so a version agreed after
//! the `CONNECT` frame applies to every frame after it, however the bytes were split. Header
//! lines are parsed as they complete and the search for a line end or the NUL resumes where it
//! stopped, so a frame that trickles in byte by byte costs no rescanning.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memchr;

use super::escape::Escaping;
use super::{Command, Frame, Headers, Version};

/// Limits that bound a [`Decoder`]'s memory ("Size Limits"). The defaults suit a chat server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderLimits {
    /// The largest frame, in bytes: command, headers, body and NUL, every line end included
    /// (the heart-beat EOLs between frames are not part of a frame). Default 64 KiB, as
    /// Spring's `messageSizeLimit`.
    pub max_frame: usize,
    /// The most header entries in a frame, repeated ones included. Default 64.
    pub max_headers: usize,
    /// The longest command or header line, in bytes, line end excluded. Default 8 KiB.
    pub max_line: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        Self {
            max_frame: 64 * 1024,
            max_headers: 64,
            max_line: 8 * 1024,
        }
    }
}

/// A stream that breaks the protocol or a limit. The decoder stays failed: the server sends an
/// `ERROR` frame and closes the connection ("Size Limits", "Value Encoding").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// A frame was larger than [`DecoderLimits::max_frame`] bytes, or its `content-length`
    /// said it would be.
    FrameTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A frame had more than [`DecoderLimits::max_headers`] header entries.
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// A command or header line was longer than [`DecoderLimits::max_line`] bytes.
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// The command line names no STOMP command (commands are case sensitive).
    BadCommand,
    /// A header line has no `:`, or nothing before it (a header name is at least one octet).
    BadHeader,
    /// A header holds an escape sequence its version does not define, or ends with a lone
    /// backslash: "a fatal protocol error".
    BadEscape,
    /// A header name or value is not UTF-8.
    BadUtf8,
    /// The `content-length` header is not a decimal number of octets (ASCII digits only).
    BadContentLength,
    /// The octet after the `content-length` octets of the body was not NUL.
    MissingNul,
    /// A frame other than `SEND`, `MESSAGE` or `ERROR` had a body.
    BodyNotAllowed {
        /// The frame's command.
        command: Command,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FrameTooLarge { limit } => {
                write!(f, "STOMP frame larger than the limit of {limit} bytes")
            }
            Self::TooManyHeaders { limit } => {
                write!(f, "STOMP frame with more than {limit} headers")
            }
            Self::LineTooLong { limit } => {
                write!(f, "STOMP line longer than the limit of {limit} bytes")
            }
            Self::BadCommand => f.write_str("not a STOMP command"),
            Self::BadHeader => f.write_str("a STOMP header line must be <name>:<value>"),
            Self::BadEscape => f.write_str("undefined escape sequence in a STOMP header"),
            Self::BadUtf8 => f.write_str("STOMP header not UTF-8"),
            Self::BadContentLength => f.write_str("content-length is not a number of octets"),
            Self::MissingNul => f.write_str("no NUL after the content-length octets of the body"),
            Self::BodyNotAllowed { command } => write!(f, "a {command} frame cannot have a body"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// An incremental STOMP frame decoder.
///
/// Feed it bytes with [`handle_bytes`](Self::handle_bytes), split anywhere; drain frames with
/// [`poll_frame`](Self::poll_frame) until it returns `Ok(None)`, after every input. It is pure:
/// no IO, no clock. Between frames it skips heart-beat EOLs (`\n` or `\r\n`) and counts them
/// in [`heartbeats`](Self::heartbeats); so are the EOLs the spec lets follow a frame's NUL,
/// which cannot be told apart from heart-beats. (Any byte from the peer shows it is alive.)
///
/// It decodes by the rules of [`Version::V1_2`] until told the version agreed with
/// [`set_version`](Self::set_version); `CONNECT` and `CONNECTED` frames read the same in every
/// version. On the points the spec leaves open, it reads:
///
/// - CRLF as a line end in every version; one CR before the LF belongs to the line end, any
///   other CR to the line;
/// - a header line at its first `:`. The 1.2 grammar allows no raw `:` in a value (it is
///   escaped as `\c`), but the decoder takes one that comes literally, as Spring, ActiveMQ and
///   RabbitMQ do, and as `CONNECT` frames need; the encoder always escapes it;
/// - names and values as they are: never trimmed, an empty value kept;
/// - `content-length` from its first entry; every entry is then dropped from the headers.
///
/// ```
/// use roomcast_core::stomp::{Command, Decoder, DecoderLimits};
///
/// let mut decoder = Decoder::new(DecoderLimits::default());
/// let mut frames = Vec::new();
/// for chunk in [&b"SEND\r\ndestination:/topic/a\\cb\ncontent-le"[..], b"ngth:3\n\nx\0y\0\n\n"] {
///     decoder.handle_bytes(chunk);
///     while let Some(frame) = decoder.poll_frame().expect("a valid stream") {
///         frames.push(frame);
///     }
/// }
/// assert_eq!(frames[0].command, Command::Send);
/// assert_eq!(frames[0].headers.get("destination"), Some("/topic/a:b"));
/// assert_eq!(&frames[0].body[..], b"x\0y");
/// assert_eq!(decoder.heartbeats(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Decoder {
    limits: DecoderLimits,
    version: Version,
    /// Bytes received and not yet parsed: a partial line, or the body so far.
    queue: BytesMut,
    /// The first bytes of `queue` already searched for what the state waits for (LF or NUL).
    scanned: usize,
    state: State,
    heartbeats: u64,
    failed: Option<DecodeError>,
}

#[derive(Clone, Debug)]
enum State {
    /// Between frames: the next line is a heart-beat, or a command.
    Idle,
    /// Reading header lines.
    Headers(Partial),
    /// Reading the body, `content-length` octets of it if that header came.
    Body(Partial, Option<usize>),
}

#[derive(Clone, Debug)]
struct Partial {
    command: Command,
    headers: Vec<(String, String)>,
    /// Bytes of the frame so far, line ends included.
    size: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DecoderLimits::default())
    }
}

impl Decoder {
    /// A decoder for a new connection, reading STOMP 1.2 until told otherwise.
    pub fn new(limits: DecoderLimits) -> Self {
        Self {
            limits,
            version: Version::V1_2,
            queue: BytesMut::new(),
            scanned: 0,
            state: State::Idle,
            heartbeats: 0,
            failed: None,
        }
    }

    /// Reads frames by the rules of `version` from the start.
    #[must_use]
    pub fn with_version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// Reads the frames not yet polled by the rules of `version`: call it once the session's
    /// version is agreed, right after polling the `CONNECT` or `CONNECTED` frame.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// The version frames are read by.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The limits in force.
    pub fn limits(&self) -> DecoderLimits {
        self.limits
    }

    /// How many heart-beat EOLs came between frames so far.
    pub fn heartbeats(&self) -> u64 {
        self.heartbeats
    }

    /// Bytes received and not yet parsed. Once [`poll_frame`](Self::poll_frame) has returned
    /// `Ok(None)`, never more than `max(max_frame, max_line + 1)`; the headers of a frame in
    /// progress count towards `max_frame` too.
    pub fn buffered_len(&self) -> usize {
        self.queue.len()
    }

    /// The error the decoder failed with, if it did.
    pub fn error(&self) -> Option<DecodeError> {
        self.failed
    }

    /// Takes bytes from the peer, split anywhere. They are queued until polled; once the
    /// decoder has failed, they are dropped.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.queue.extend_from_slice(bytes);
        }
    }

    /// The next complete frame, `Ok(None)` once the bytes so far hold no other. On a protocol
    /// error or a limit breach, returns the error now and on every later call.
    pub fn poll_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        match self.advance() {
            Ok(frame) => {
                if frame.is_none() && self.queue.is_empty() {
                    self.release();
                }
                Ok(frame)
            }
            Err(error) => {
                self.failed = Some(error);
                self.queue = BytesMut::new();
                self.state = State::Idle;
                Err(error)
            }
        }
    }

    fn advance(&mut self) -> Result<Option<Frame>, DecodeError> {
        loop {
            let partial = match std::mem::replace(&mut self.state, State::Idle) {
                State::Body(partial, length) => return self.body(partial, length),
                State::Idle => None,
                State::Headers(partial) => Some(partial),
            };
            let Some(end) = self.line_end()? else {
                self.state = partial.map_or(State::Idle, State::Headers);
                return Ok(None);
            };
            let raw_len = end + 1;
            let line_len = end - usize::from(end > 0 && self.queue[end - 1] == b'\r');
            if line_len > self.limits.max_line {
                return Err(self.line_too_long());
            }
            let next = match partial {
                None if line_len == 0 => {
                    self.heartbeats += 1;
                    State::Idle
                }
                None => {
                    self.check_size(raw_len)?;
                    let line = &self.queue[..line_len];
                    let command = Command::parse(line).ok_or(DecodeError::BadCommand)?;
                    State::Headers(Partial {
                        command,
                        headers: Vec::new(),
                        size: raw_len,
                    })
                }
                Some(mut partial) => {
                    partial.size += raw_len;
                    self.check_size(partial.size)?;
                    if line_len == 0 {
                        self.end_of_headers(partial)?
                    } else {
                        if partial.headers.len() == self.limits.max_headers {
                            return Err(DecodeError::TooManyHeaders {
                                limit: self.limits.max_headers,
                            });
                        }
                        let escaping = Escaping::of(self.version, partial.command);
                        let line = &self.queue[..line_len];
                        partial.headers.push(parse_header(line, escaping)?);
                        State::Headers(partial)
                    }
                }
            };
            self.queue.advance(raw_len);
            self.scanned = 0;
            self.state = next;
        }
    }

    /// Where the line at the start of the queue ends (its LF), if it has arrived whole. A line
    /// still arriving is checked against the line limit at once, as far as it goes: any prefix
    /// of a line within the limit passes, so the outcome does not depend on the split.
    fn line_end(&mut self) -> Result<Option<usize>, DecodeError> {
        if let Some(at) = memchr(b'\n', &self.queue[self.scanned..]) {
            return Ok(Some(self.scanned + at));
        }
        self.scanned = self.queue.len();
        let max = self.limits.max_line;
        let len = self.queue.len();
        // The line so far is the line, or the line and the CR of its line end.
        if len > max.saturating_add(1) || (len == max.saturating_add(1) && self.queue[max] != b'\r')
        {
            return Err(self.line_too_long());
        }
        Ok(None)
    }

    fn end_of_headers(&self, mut partial: Partial) -> Result<State, DecodeError> {
        let length = match partial
            .headers
            .iter()
            .find(|(name, _)| name == "content-length")
        {
            Some((_, value)) => Some(parse_content_length(value)?),
            None => None,
        };
        partial.headers.retain(|(name, _)| name != "content-length");
        if length.is_some_and(|length| length > 0) && !partial.command.allows_body() {
            return Err(DecodeError::BodyNotAllowed {
                command: partial.command,
            });
        }
        // The body and its NUL must fit: checked before any of the body arrives.
        let body = length.unwrap_or(0);
        self.check_size(partial.size.saturating_add(body).saturating_add(1))?;
        Ok(State::Body(partial, length))
    }

    fn body(
        &mut self,
        partial: Partial,
        length: Option<usize>,
    ) -> Result<Option<Frame>, DecodeError> {
        let length = match length {
            Some(length) => {
                let Some(&nul) = self.queue.get(length) else {
                    self.state = State::Body(partial, Some(length));
                    return Ok(None);
                };
                if nul != 0 {
                    return Err(DecodeError::MissingNul);
                }
                length
            }
            None => {
                if !partial.command.allows_body() && self.queue.first().is_some_and(|&b| b != 0) {
                    return Err(DecodeError::BodyNotAllowed {
                        command: partial.command,
                    });
                }
                // What the frame may still hold: the body and its NUL, at least 1.
                let room = self.limits.max_frame - partial.size;
                let window = self.queue.len().min(room);
                match memchr(0, &self.queue[self.scanned..window]) {
                    Some(at) => self.scanned + at,
                    None if self.queue.len() >= room => {
                        return Err(DecodeError::FrameTooLarge {
                            limit: self.limits.max_frame,
                        });
                    }
                    None => {
                        self.scanned = window;
                        self.state = State::Body(partial, None);
                        return Ok(None);
                    }
                }
            }
        };
        let body = Bytes::copy_from_slice(&self.queue[..length]);
        self.queue.advance(length + 1);
        self.scanned = 0;
        Ok(Some(Frame {
            command: partial.command,
            headers: Headers::from(partial.headers),
            body,
        }))
    }

    fn check_size(&self, size: usize) -> Result<(), DecodeError> {
        if size > self.limits.max_frame {
            return Err(DecodeError::FrameTooLarge {
                limit: self.limits.max_frame,
            });
        }
        Ok(())
    }

    fn line_too_long(&self) -> DecodeError {
        DecodeError::LineTooLong {
            limit: self.limits.max_line,
        }
    }

    /// Gives back the queue's memory once it is empty: a connection idles between frames, and
    /// ten thousand idle ones would each hold the buffer of their last frame.
    fn release(&mut self) {
        if self.queue.capacity() > 0 {
            self.queue = BytesMut::new();
        }
    }
}

/// One header line, its line end excluded: the name runs to the first `:`.
fn parse_header(line: &[u8], escaping: Escaping) -> Result<(String, String), DecodeError> {
    let colon = match memchr(b':', line) {
        Some(0) | None => return Err(DecodeError::BadHeader),
        Some(colon) => colon,
    };
    let text = |raw: &[u8]| {
        let bytes = escaping.unescape(raw).ok_or(DecodeError::BadEscape)?;
        String::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8)
    };
    Ok((text(&line[..colon])?, text(&line[colon + 1..])?))
}

/// "an octet count": ASCII digits, no sign, no spaces. A count past `usize` is a frame too
/// large for any limit, reported as such by the caller's size check.
fn parse_content_length(value: &str) -> Result<usize, DecodeError> {
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(DecodeError::BadContentLength);
    }
    Ok(value.parse().unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests;
