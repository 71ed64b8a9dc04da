//! The encoder: frames as STOMP bytes, and `MESSAGE` frames encoded once for many recipients.

use bytes::{BufMut, Bytes, BytesMut};

use super::escape::Escaping;
use super::{Command, Frame, Headers, Version};

/// A frame the chosen version cannot carry. Nothing is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// A header name is empty: the grammar wants at least one octet.
    EmptyHeaderName,
    /// A header name or value holds an octet with no escape where it is written: CR or LF in
    /// STOMP 1.0 and in `CONNECT` and `CONNECTED` frames (and `:` in their names), CR in
    /// STOMP 1.1.
    Unencodable {
        /// The octet.
        byte: u8,
    },
    /// A body on a frame other than `SEND`, `MESSAGE` or `ERROR`.
    BodyNotAllowed {
        /// The frame's command.
        command: Command,
    },
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EmptyHeaderName => f.write_str("a STOMP header name cannot be empty"),
            Self::Unencodable { byte } => {
                write!(
                    f,
                    "octet {byte:#04x} cannot be written in this STOMP header"
                )
            }
            Self::BodyNotAllowed { command } => write!(f, "a {command} frame cannot have a body"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Appends `frame` as `version` writes it.
///
/// The command, then each header but `content-length`, escaped as the version and the command
/// want ("Value Encoding"), then for `SEND`, `MESSAGE` and `ERROR` a `content-length` of the
/// body, always (so a body may hold NUL, and a reader never scans it), then a blank line, the
/// body and NUL. Lines end with LF, which every version reads.
///
/// ```
/// use bytes::BytesMut;
/// use roomcast_core::stomp::{encode, Command, Frame, Version};
///
/// let frame = Frame::new(Command::Message).header("destination", "/topic/a:b").body("hi");
/// let mut out = BytesMut::new();
/// encode(&frame, Version::V1_2, &mut out)?;
/// assert_eq!(&out[..], b"MESSAGE\ndestination:/topic/a\\cb\ncontent-length:2\n\nhi\0");
/// # Ok::<(), roomcast_core::stomp::EncodeError>(())
/// ```
pub fn encode(frame: &Frame, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
    if !frame.body.is_empty() && !frame.command.allows_body() {
        return Err(EncodeError::BodyNotAllowed {
            command: frame.command,
        });
    }
    let escaping = Escaping::of(version, frame.command);
    check_headers(&frame.headers, escaping)?;
    out.reserve(estimate(&frame.headers) + frame.body.len() + 32);
    out.put_slice(frame.command.as_str().as_bytes());
    out.put_u8(b'\n');
    write_headers(&frame.headers, escaping, out);
    if frame.command.allows_body() {
        write_content_length(frame.body.len(), out);
    }
    out.put_u8(b'\n');
    out.put_slice(&frame.body);
    out.put_u8(0);
    Ok(())
}

/// [`encode`] into new bytes.
pub fn encode_to_bytes(frame: &Frame, version: Version) -> Result<Bytes, EncodeError> {
    let mut out = BytesMut::new();
    encode(frame, version, &mut out)?;
    Ok(out.freeze())
}

/// A `MESSAGE` encoded once for every subscriber of one version: the shared headers, the
/// `content-length`, the body and the NUL are encoded into shared bytes up front, and each
/// recipient's `subscription`, `message-id` and `ack` lines are written ahead of them.
///
/// For a recipient it writes, byte for byte, what [`encode`] writes for the `MESSAGE` frame
/// whose headers are `subscription`, `message-id`, `ack` (if given), then the shared ones.
///
/// ```
/// use bytes::BytesMut;
/// use roomcast_core::stomp::{Headers, PreparedMessage, Version};
///
/// let shared: Headers = [("destination", "/topic/chat"), ("content-type", "text/plain")]
///     .into_iter()
///     .collect();
/// let message = PreparedMessage::new(Version::V1_2, &shared, "hello".into())?;
/// let mut out = BytesMut::new();
/// for subscription in ["sub-0", "sub-1"] {
///     message.write_for(subscription, "42", None, &mut out)?;
/// }
/// assert!(out.starts_with(b"MESSAGE\nsubscription:sub-0\nmessage-id:42\ndestination:"));
/// # Ok::<(), roomcast_core::stomp::EncodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PreparedMessage {
    version: Version,
    /// The shared header lines, `content-length`, the blank line, the body and NUL.
    tail: Bytes,
}

impl PreparedMessage {
    /// Encodes the part every recipient shares: `headers` (`destination`, `content-type` and
    /// any others; a `content-length` among them is ignored) and `body`, for `version`.
    pub fn new(version: Version, headers: &Headers, body: Bytes) -> Result<Self, EncodeError> {
        let escaping = Escaping::of(version, Command::Message);
        check_headers(headers, escaping)?;
        let mut tail = BytesMut::with_capacity(estimate(headers) + body.len() + 24);
        write_headers(headers, escaping, &mut tail);
        write_content_length(body.len(), &mut tail);
        tail.put_u8(b'\n');
        tail.put_slice(&body);
        tail.put_u8(0);
        Ok(Self {
            version,
            tail: tail.freeze(),
        })
    }

    /// A message whose shared part `tail` was encoded before, for `version` (a cached
    /// [`tail`](Self::tail)).
    pub(crate) fn from_tail(version: Version, tail: Bytes) -> Self {
        Self { version, tail }
    }

    /// The version it was encoded for.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The shared bytes: what follows a recipient's [head](Self::write_head).
    pub fn tail(&self) -> &Bytes {
        &self.tail
    }

    /// Appends the whole frame for one recipient: its head, then the shared bytes.
    pub fn write_for(
        &self,
        subscription: &str,
        message_id: &str,
        ack: Option<&str>,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        out.reserve(self.tail.len());
        self.write_head(subscription, message_id, ack, out)?;
        out.put_slice(&self.tail);
        Ok(())
    }

    /// Appends only the recipient's part, `MESSAGE` and its header lines, for a caller that
    /// writes the [`tail`](Self::tail) after it without a copy (a vectored write, say).
    pub fn write_head(
        &self,
        subscription: &str,
        message_id: &str,
        ack: Option<&str>,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let escaping = Escaping::of(self.version, Command::Message);
        let values = [Some(subscription), Some(message_id), ack];
        for value in values.into_iter().flatten() {
            if let Some(byte) = escaping.unencodable(value.as_bytes(), false) {
                return Err(EncodeError::Unencodable { byte });
            }
        }
        let names = ["subscription", "message-id", "ack"];
        out.reserve(48 + values.into_iter().flatten().map(str::len).sum::<usize>());
        out.put_slice(b"MESSAGE\n");
        for (name, value) in names.into_iter().zip(values) {
            if let Some(value) = value {
                write_header(name, value, escaping, out);
            }
        }
        Ok(())
    }
}

/// Checks every header but `content-length`, which is never written from the headers.
fn check_headers(headers: &Headers, escaping: Escaping) -> Result<(), EncodeError> {
    for (name, value) in written(headers) {
        if name.is_empty() {
            return Err(EncodeError::EmptyHeaderName);
        }
        let bad = escaping.unencodable(name.as_bytes(), true);
        if let Some(byte) = bad.or_else(|| escaping.unencodable(value.as_bytes(), false)) {
            return Err(EncodeError::Unencodable { byte });
        }
    }
    Ok(())
}

fn written(headers: &Headers) -> impl Iterator<Item = (&str, &str)> {
    headers.iter().filter(|(name, _)| *name != "content-length")
}

/// Room for the header lines with a few escapes.
fn estimate(headers: &Headers) -> usize {
    written(headers)
        .map(|(name, value)| name.len() + value.len() + 4)
        .sum()
}

fn write_headers(headers: &Headers, escaping: Escaping, out: &mut BytesMut) {
    for (name, value) in written(headers) {
        write_header(name, value, escaping, out);
    }
}

fn write_header(name: &str, value: &str, escaping: Escaping, out: &mut BytesMut) {
    escaping.escape_into(name.as_bytes(), out);
    out.put_u8(b':');
    escaping.escape_into(value.as_bytes(), out);
    out.put_u8(b'\n');
}

fn write_content_length(length: usize, out: &mut BytesMut) {
    out.put_slice(b"content-length:");
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = length;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.put_slice(&digits[start..]);
    out.put_u8(b'\n');
}

#[cfg(test)]
mod tests;
