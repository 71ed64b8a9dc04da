//! SockJS framing (the SockJS protocol 0.3, "Framing"): what a SockJS client expects on its
//! WebSocket transport around the messages it carries. The server opens with `o`, sends
//! messages as `a` and a JSON array of strings, a heartbeat as `h`, and ends with `c` and
//! `[code,"reason"]`; the client sends a JSON array of strings (or one JSON string).

use bytes::Bytes;

/// The open frame, the first the server sends.
pub(crate) const OPEN: &[u8] = b"o";
/// A heartbeat: the connection is alive (sent every 25 s by default, the session's ping).
pub(crate) const HEARTBEAT: &[u8] = b"h";

/// `a[...]`: `messages` (UTF-8 text each) as one frame.
pub(crate) fn messages<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
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
pub(crate) fn close(code: u16, reason: &str) -> Bytes {
    Bytes::from(format!("c[{code},{}]", serde_json::Value::from(reason)))
}

/// The messages of a client's frame: a JSON array of strings, or one JSON string; `None` when
/// it is neither (the connection is then broken off, as the protocol says).
pub(crate) fn client_messages(text: &str) -> Option<Vec<String>> {
    match serde_json::from_str::<serde_json::Value>(text).ok()? {
        serde_json::Value::String(one) => Some(vec![one]),
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(text) => Some(text),
                _ => None,
            })
            .collect(),
        _ => None,
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
            client_messages(r#"["SEND\n\nx\u0000","\n"]"#),
            Some(vec!["SEND\n\nx\0".to_owned(), "\n".to_owned()])
        );
        assert_eq!(client_messages(r#""one""#), Some(vec!["one".to_owned()]));
        assert_eq!(client_messages("[1]"), None);
        assert_eq!(client_messages("{}"), None);
        assert_eq!(client_messages("not json"), None);
    }
}
