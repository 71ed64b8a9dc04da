//! A refused request, and the one writer of its answer: the `Response` hyper sends, and the same
//! response as HTTP/1.1 bytes for the raw path, which writes it straight to the socket.

use http::{HeaderValue, Response, StatusCode, header};

use crate::body::Body;
use crate::head::{Framing, head_bytes};
use crate::response::json;

/// A refused request: its HTTP status and why, for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 401, 403, 429...
    pub status: u16,
    /// Why.
    pub message: String,
    /// The error code, when not the status's own (see [`code`](Self::code)).
    pub code: Option<&'static str>,
    /// For a 503: when to come back, sent as `Retry-After` in whole seconds.
    pub retry_after_ms: Option<u64>,
}

impl Refusal {
    /// A refusal with this status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code: None,
            retry_after_ms: None,
        }
    }

    /// With `Retry-After`, rounded up to whole seconds (at least 1).
    pub fn retry_after(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    /// With this error code instead of the status's own.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The JSON error reply: `{"type":"error","code":...,"message":...}` with the status, and
    /// the headers the status calls for: `WWW-Authenticate: Bearer` for a 401,
    /// `Sec-WebSocket-Version: 13` for a 426, `Retry-After` when [`retry_after`](Self::retry_after)
    /// set one.
    pub fn response(&self) -> Response<Body> {
        // In the documented order, `type` first (a `json!` map would sort the keys).
        let text = |value: &str| serde_json::Value::from(value).to_string();
        let body = format!(
            r#"{{"type":"error","code":{},"message":{}}}"#,
            text(self.code()),
            text(&self.message)
        );
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = json(status, body);
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == 426 {
            // RFC 6455, section 4.2.2: name the version this server speaks.
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        if let Some(ms) = self.retry_after_ms {
            let seconds = ms.div_ceil(1000).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }

    /// [`response`](Self::response) as HTTP/1.1 bytes, head and body, for a connection that
    /// closes after it.
    pub(crate) fn http1_bytes(&self) -> Vec<u8> {
        let (parts, body) = self.response().into_parts();
        let body = body.into_full().unwrap_or_default();
        let mut bytes = head_bytes(&Response::from_parts(parts, ()), Framing::Whole(body.len()));
        bytes.extend_from_slice(&body);
        bytes
    }

    /// 401: no credential, or a bad one.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// The stable error code: the one given, else the status's own (`docs/protocol.md`, 14).
    pub fn code(&self) -> &'static str {
        if let Some(code) = self.code {
            return code;
        }
        match self.status {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            408 => "timeout",
            413 => "too_large",
            415 => "unsupported_media_type",
            426 => "upgrade_required",
            429 => "too_many_connections",
            503 => "unavailable",
            _ => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(response: &Response<Body>, name: header::HeaderName) -> Option<&str> {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("text"))
    }

    #[test]
    fn a_refusal_carries_the_headers_its_status_calls_for() {
        let response = Refusal::unauthorized("who?").response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&response, header::WWW_AUTHENTICATE), Some("Bearer"));
        assert_eq!(header(&response, header::SEC_WEBSOCKET_VERSION), None);
        assert_eq!(header(&response, header::RETRY_AFTER), None);
        let response = Refusal::new(426, "version").response();
        assert_eq!(header(&response, header::SEC_WEBSOCKET_VERSION), Some("13"));
        assert_eq!(header(&response, header::WWW_AUTHENTICATE), None);
        for (ms, seconds) in [(0, "1"), (1, "1"), (1000, "1"), (1001, "2"), (2500, "3")] {
            let response = Refusal::new(503, "later").retry_after(ms).response();
            assert_eq!(
                header(&response, header::RETRY_AFTER),
                Some(seconds),
                "{ms}"
            );
        }
        let response = Refusal::new(429, "busy")
            .with_code("limit_reached")
            .response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let body = response.into_body().into_full().expect("whole");
        assert_eq!(
            std::str::from_utf8(&body).expect("UTF-8"),
            r#"{"type":"error","code":"limit_reached","message":"busy"}"#,
            "type first, as documented"
        );
        let quoted = Refusal::new(400, "a \"b\"\n").response();
        let body = quoted.into_body().into_full().expect("whole");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["message"], "a \"b\"\n");
    }

    #[test]
    fn the_raw_bytes_are_the_same_response_closing_its_connection() {
        let refusal = Refusal::new(503, "the server is shutting down").retry_after(1500);
        let text = String::from_utf8(refusal.http1_bytes()).expect("ASCII");
        let body = refusal.response().into_body().into_full().expect("whole");
        let body = std::str::from_utf8(&body).expect("UTF-8");
        assert!(
            text.starts_with(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                 cache-control: no-store\r\nretry-after: 2\r\ndate: "
            ),
            "{text}"
        );
        let end = format!(
            "\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        assert!(text.ends_with(&end), "{text}");
    }
}
