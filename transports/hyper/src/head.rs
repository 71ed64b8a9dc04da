//! A response head as the HTTP/1.1 bytes hyper would write, for the responses the raw path
//! (`raw/`) writes straight to a connection's socket: an SSE stream's head, a WebSocket's `101`,
//! and a refusal of either (`refusal.rs`).

use std::io::Write as _;
use std::time::SystemTime;

use http::Response;

/// How a response head delimits its body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// A stream: chunked.
    Chunked,
    /// A whole body of this length, then the connection closes.
    Whole(usize),
    /// No body: the connection switches protocols.
    Switching,
}

/// The response head as HTTP/1.1 bytes, with the `date` (RFC 9110, 6.6.1) and framing headers
/// hyper would add.
pub(crate) fn head_bytes(head: &Response<()>, framing: Framing) -> Vec<u8> {
    let status = head.status();
    let mut bytes = Vec::with_capacity(256);
    let _ = write!(
        bytes,
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in head.headers() {
        bytes.extend_from_slice(name.as_str().as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    let _ = write!(
        bytes,
        "date: {}\r\n",
        httpdate::fmt_http_date(SystemTime::now())
    );
    match framing {
        Framing::Chunked => bytes.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n"),
        Framing::Whole(length) => {
            let _ = write!(
                bytes,
                "content-length: {length}\r\nconnection: close\r\n\r\n"
            );
        }
        Framing::Switching => bytes.extend_from_slice(b"\r\n"),
    }
    bytes
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, StatusCode, header};

    use super::*;

    #[test]
    fn a_head_names_its_status_headers_date_and_framing() {
        let mut head = Response::new(());
        *head.status_mut() = StatusCode::UNAUTHORIZED;
        head.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        let text = String::from_utf8(head_bytes(&head, Framing::Whole(5))).expect("ASCII");
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer\r\n"));
        assert!(text.contains("\r\ndate: "), "{text}");
        assert!(text.ends_with("\r\ncontent-length: 5\r\nconnection: close\r\n\r\n"));
        let mut head = Response::new(());
        *head.status_mut() = StatusCode::OK;
        let text = String::from_utf8(head_bytes(&head, Framing::Chunked)).expect("ASCII");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ndate: "), "{text}");
        assert!(text.ends_with("\r\ntransfer-encoding: chunked\r\n\r\n"));
        let mut head = Response::new(());
        *head.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        head.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let text = String::from_utf8(head_bytes(&head, Framing::Switching)).expect("ASCII");
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"));
        assert!(text.ends_with("GMT\r\n\r\n"), "no framing headers: {text}");
    }
}
