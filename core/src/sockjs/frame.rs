//! SockJS framing (the SockJS protocol 0.3.3, "Framing"): what the server sends around the
//! messages it carries, and how a client's frame is read.

use bytes::Bytes;

/// The open frame, the first the server sends on a session.
pub const OPEN: &[u8] = b"o";
/// A heartbeat: the session is alive (every 25 s by default).
pub const HEARTBEAT: &[u8] = b"h";

/// `a[...]`: `messages` (UTF-8 text each, invalid sequences replaced) as one frame.
pub fn messages<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = String::from("a[");
    for (i, message) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = String::from_utf8_lossy(message);
        out.push_str(&serde_json::Value::from(text.as_ref()).to_string());
    }
    out.push(']');
    Bytes::from(out)
}

/// `c[code,"reason"]`: the close frame.
pub fn close(code: u16, reason: &str) -> Bytes {
    Bytes::from(format!("c[{code},{}]", serde_json::Value::from(reason)))
}

/// Why a client's frame was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientFrameError {
    /// Nothing was sent (`xhr_send` answers "Payload expected.").
    Empty,
    /// Not JSON, or not an array of strings nor one string ("Broken JSON encoding.").
    Broken,
}

impl ClientFrameError {
    /// The protocol's words for it, as `xhr_send` answers them.
    pub fn message(self) -> &'static str {
        match self {
            Self::Empty => "Payload expected.",
            Self::Broken => "Broken JSON encoding.",
        }
    }
}

/// The messages of a client's frame: a JSON array of strings, or one JSON string.
pub fn client_messages(frame: &[u8]) -> Result<Vec<String>, ClientFrameError> {
    if frame.is_empty() {
        return Err(ClientFrameError::Empty);
    }
    match serde_json::from_slice::<serde_json::Value>(frame) {
        Ok(serde_json::Value::String(one)) => Ok(vec![one]),
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(text) => Ok(text),
                _ => Err(ClientFrameError::Broken),
            })
            .collect(),
        _ => Err(ClientFrameError::Broken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_written_as_the_protocol_says() {
        assert_eq!(
            messages([&b"CONNECTED\nversion:1.2\n\n\0"[..], b"\n"]),
            Bytes::from_static(b"a[\"CONNECTED\\nversion:1.2\\n\\n\\u0000\",\"\\n\"]")
        );
        assert_eq!(messages(std::iter::empty()), Bytes::from_static(b"a[]"));
        assert_eq!(
            close(3000, "Go \"away\""),
            Bytes::from_static(b"c[3000,\"Go \\\"away\\\"\"]")
        );
    }

    #[test]
    fn client_frames_are_an_array_of_strings_or_one_string() {
        assert_eq!(
            client_messages(br#"["SEND\n\nx\u0000","\n"]"#),
            Ok(vec!["SEND\n\nx\0".to_owned(), "\n".to_owned()])
        );
        assert_eq!(client_messages(br#""one""#), Ok(vec!["one".to_owned()]));
        assert_eq!(client_messages(b"[]"), Ok(vec![]));
        assert_eq!(client_messages(b""), Err(ClientFrameError::Empty));
        assert_eq!(client_messages(b"[1]"), Err(ClientFrameError::Broken));
        assert_eq!(client_messages(b"{}"), Err(ClientFrameError::Broken));
        assert_eq!(client_messages(b"[\"x\""), Err(ClientFrameError::Broken));
        assert_eq!(client_messages(b"not json"), Err(ClientFrameError::Broken));
    }
}
