//! The encoder: event blocks and comments as `text/event-stream` bytes.

use bytes::BufMut;
use memchr::memchr;

use super::scan::{find_line_end, has_line_break};

/// The fields of one event block to write; each one left `None` is not written.
///
/// A block without `data` dispatches nothing but still sets the id or the reconnection time
/// (an id-only or retry-only block). SSE cannot carry a CR in data: each CR, LF or CRLF of
/// `data` is written as a line break, which a reader sees as one LF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    /// The event id (`id:`); it may not contain CR, LF or NUL.
    pub id: Option<&'a str>,
    /// The event type (`event:`); it may not contain CR or LF.
    pub event: Option<&'a str>,
    /// The data, one `data:` line for each of its lines.
    pub data: Option<&'a str>,
    /// The reconnection time in milliseconds (`retry:`).
    pub retry: Option<u64>,
}

/// A field value that would change the stream's structure if written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The id contains CR, LF or NUL.
    InvalidId,
    /// The event type contains CR or LF.
    InvalidEventType,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InvalidId => "an SSE id cannot contain CR, LF or NUL",
            Self::InvalidEventType => "an SSE event type cannot contain CR or LF",
        })
    }
}

impl std::error::Error for EncodeError {}

impl<'a> Fields<'a> {
    /// A block with this data and no other field.
    pub fn data(data: &'a str) -> Self {
        Self {
            data: Some(data),
            ..Self::default()
        }
    }

    /// Sets the id.
    #[must_use]
    pub fn id(mut self, id: &'a str) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the event type.
    #[must_use]
    pub fn event(mut self, event: &'a str) -> Self {
        self.event = Some(event);
        self
    }

    /// Sets the reconnection time, in milliseconds.
    #[must_use]
    pub fn retry(mut self, ms: u64) -> Self {
        self.retry = Some(ms);
        self
    }

    /// Appends the block, blank line included, to `out`. Nothing is written on error.
    pub fn encode(&self, out: &mut impl BufMut) -> Result<(), EncodeError> {
        if self
            .id
            .is_some_and(|id| has_line_break(id.as_bytes(), true))
        {
            return Err(EncodeError::InvalidId);
        }
        if self
            .event
            .is_some_and(|event| has_line_break(event.as_bytes(), false))
        {
            return Err(EncodeError::InvalidEventType);
        }
        if let Some(id) = self.id {
            put_line(out, b"id: ", id.as_bytes());
        }
        if let Some(event) = self.event {
            put_line(out, b"event: ", event.as_bytes());
        }
        if let Some(ms) = self.retry {
            let mut digits = [0u8; 20];
            put_line(out, b"retry: ", format_u64(ms, &mut digits));
        }
        if let Some(data) = self.data {
            put_lines(out, b"data: ", data.as_bytes());
        }
        out.put_u8(b'\n');
        Ok(())
    }
}

/// Appends the event block `Fields::data(data).event(event).id(id).encode(out)` writes, for
/// fields the caller knows are clean, so nothing is scanned: `id` holds no CR, LF or NUL, and
/// `event` and `data` no CR or LF. Crate-private: given a line break it would write a field the
/// caller did not mean (checked only in debug builds). An SSE session writes one block per event per connection,
/// and its checks hold once per message (`Delivery::is_one_line`) or by construction (a
/// cursor's text, a message type from the frame).
pub(crate) fn encode_clean_event(out: &mut Vec<u8>, id: &str, event: &str, data: &str) {
    debug_assert!(!has_line_break(id.as_bytes(), true), "id {id:?}");
    debug_assert!(!has_line_break(event.as_bytes(), false), "event {event:?}");
    debug_assert!(find_line_end(data.as_bytes()).is_none(), "data {data:?}");
    out.reserve(b"id: \nevent: \ndata: \n\n".len() + id.len() + event.len() + data.len());
    for part in [
        b"id: ",
        id.as_bytes(),
        b"\nevent: ",
        event.as_bytes(),
        b"\ndata: ",
    ] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Appends a comment, which readers ignore (a keep-alive, say). Each line of `text` becomes a
/// comment line of its own, so no text can inject a field.
pub fn encode_comment(out: &mut impl BufMut, text: &str) {
    if text.is_empty() {
        out.put_slice(b":\n");
    } else {
        put_lines(out, b": ", text.as_bytes());
    }
}

/// Writes `prefix value LF` for each line of `value`, split on CR, LF and CRLF.
fn put_lines(out: &mut impl BufMut, prefix: &[u8], mut value: &[u8]) {
    while let Some(end) = find_line_end(value) {
        put_line(out, prefix, &value[..end]);
        let crlf = value[end] == b'\r' && value.get(end + 1) == Some(&b'\n');
        value = &value[end + 1 + usize::from(crlf)..];
    }
    put_line(out, prefix, value);
}

fn put_line(out: &mut impl BufMut, prefix: &[u8], value: &[u8]) {
    debug_assert!(memchr(b'\n', value).is_none());
    out.put_slice(prefix);
    out.put_slice(value);
    out.put_u8(b'\n');
}

/// Formats `n` in decimal into the end of `buf`, without allocating.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[start..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Clean fields give the same bytes through either encoder.
        #[test]
        fn clean_events_encode_as_fields_do(
            id in "[^\r\n\x00]{0,24}",
            event in "[^\r\n]{0,12}",
            data in "[^\r\n]{0,64}",
        ) {
            let mut fields = Vec::new();
            Fields::data(&data).event(&event).id(&id).encode(&mut fields).expect("clean");
            let mut clean = Vec::new();
            encode_clean_event(&mut clean, &id, &event, &data);
            proptest::prop_assert_eq!(clean, fields);
        }
    }

    fn encode(fields: Fields<'_>) -> String {
        let mut out = Vec::new();
        fields.encode(&mut out).expect("valid fields");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn writes_fields_in_order_then_a_blank_line() {
        let fields = Fields::data("hi").id("1").event("chat").retry(2500);
        assert_eq!(
            encode(fields),
            "id: 1\nevent: chat\nretry: 2500\ndata: hi\n\n"
        );
    }

    #[test]
    fn splits_data_on_cr_lf_and_crlf() {
        assert_eq!(
            encode(Fields::data("a\rb\nc\r\nd")),
            "data: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        assert_eq!(encode(Fields::data("\n")), "data: \ndata: \n\n");
        assert_eq!(encode(Fields::data("x\r")), "data: x\ndata: \n\n");
        assert_eq!(encode(Fields::data("")), "data: \n\n");
    }

    #[test]
    fn keeps_leading_spaces_by_always_writing_one() {
        assert_eq!(encode(Fields::data(" x").id(" 7")), "id:  7\ndata:  x\n\n");
    }

    #[test]
    fn writes_id_only_and_retry_only_blocks() {
        assert_eq!(encode(Fields::default().id("9")), "id: 9\n\n");
        assert_eq!(encode(Fields::default().retry(0)), "retry: 0\n\n");
        assert_eq!(
            encode(Fields::default().retry(u64::MAX)),
            format!("retry: {}\n\n", u64::MAX)
        );
    }

    #[test]
    fn refuses_injection_and_writes_nothing() {
        let mut out = Vec::new();
        for (fields, error) in [
            (Fields::data("x").id("1\n"), EncodeError::InvalidId),
            (Fields::data("x").id("1\r"), EncodeError::InvalidId),
            (Fields::data("x").id("1\0"), EncodeError::InvalidId),
            (
                Fields::data("x").event("a\nb"),
                EncodeError::InvalidEventType,
            ),
            (
                Fields::data("x").event("a\rb"),
                EncodeError::InvalidEventType,
            ),
        ] {
            assert_eq!(fields.encode(&mut out), Err(error));
        }
        assert!(out.is_empty());
        // NUL is harmless in an event type.
        assert_eq!(
            encode(Fields::data("x").event("a\0")),
            "event: a\0\ndata: x\n\n"
        );
    }

    #[test]
    fn comments_cannot_inject_fields() {
        let mut out = Vec::new();
        encode_comment(&mut out, "");
        encode_comment(&mut out, "ping");
        encode_comment(&mut out, "a\ndata: evil\r\n");
        assert_eq!(out, b":\n: ping\n: a\n: data: evil\n: \n");
    }
}
