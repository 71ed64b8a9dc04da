//! The WebSocket opening handshake, shared by the roomcast protocol and the echo: over HTTP/1.1
//! an upgrade (RFC 6455, section 4.2) answered `101`, over HTTP/2 an extended CONNECT (RFC 8441)
//! answered `200`; the client's request checked to the letter either way.

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version, header};

use crate::body::Body;
use crate::refusal::Refusal;

/// How a WebSocket opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Opening {
    /// An HTTP/1.1 upgrade, with its `Sec-WebSocket-Accept` value.
    Upgrade(String),
    /// An HTTP/2 extended CONNECT (RFC 8441): no key, no accept.
    Connect,
}

/// Whether `request` is an HTTP/2 extended CONNECT for a WebSocket (RFC 8441, section 4).
pub(crate) fn is_extended_connect<B>(request: &Request<B>) -> bool {
    request.version() == Version::HTTP_2
        && request.method() == Method::CONNECT
        && request
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|protocol| protocol.as_str().eq_ignore_ascii_case("websocket"))
}

/// Checks an opening handshake of either kind.
pub(crate) fn check_opening<B>(request: &Request<B>) -> Result<Opening, Refusal> {
    if request.version() != Version::HTTP_2 {
        return check_upgrade(request).map(Opening::Upgrade);
    }
    if !is_extended_connect(request) {
        return Err(Refusal::new(
            400,
            "bad WebSocket handshake: over HTTP/2, open it with an extended CONNECT (RFC 8441)",
        ));
    }
    check_version(request.headers())?;
    Ok(Opening::Connect)
}

/// The answer that opens the WebSocket: `101 Switching Protocols` to an upgrade, `200` to an
/// extended CONNECT (its stream is the WebSocket from then on).
pub(crate) fn switching(opening: &Opening, protocol: Option<&'static str>) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    if let Opening::Upgrade(accept) = opening {
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(accept).expect("base64 is a valid header value"),
        );
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    }
    let headers = response.headers_mut();
    if let Some(protocol) = protocol {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol),
        );
    }
    response
}

/// Checks an opening handshake (RFC 6455, section 4.2.1); returns the `Sec-WebSocket-Accept`
/// value. A wrong version is a 426 naming the version served (section 4.2.2), anything else
/// a 400.
pub(crate) fn check_upgrade<B>(request: &Request<B>) -> Result<String, Refusal> {
    let bad = |message: &str| Refusal::new(400, format!("bad WebSocket handshake: {message}"));
    let headers = request.headers();
    if request.version() < Version::HTTP_11 {
        return Err(bad("HTTP/1.1 or later is required"));
    }
    if !headers.contains_key(header::HOST) {
        return Err(bad("no Host header"));
    }
    if !has_token(headers, header::UPGRADE, "websocket") {
        return Err(bad("the Upgrade header must name websocket"));
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(bad("the Connection header must include Upgrade"));
    }
    check_version(headers)?;
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| bad("no Sec-WebSocket-Key"))?;
    if !is_nonce(key.as_bytes()) {
        return Err(bad(
            "Sec-WebSocket-Key must be 16 bytes in base64 (24 characters)",
        ));
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// `Sec-WebSocket-Version: 13`, else 426 naming it (RFC 6455, section 4.2.2).
fn check_version(headers: &HeaderMap) -> Result<(), Refusal> {
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok());
    if version.map(str::trim) != Some("13") {
        return Err(Refusal::new(
            426,
            "unsupported WebSocket version: this server speaks Sec-WebSocket-Version 13",
        ));
    }
    Ok(())
}

/// Whether a comma-separated header names `token` (case-insensitive), in any of its fields.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// Whether the client offered subprotocol `name` (case-sensitive, as RFC 6455 says).
pub(crate) fn offers(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim() == name)
}

/// A base64 encoding of 16 bytes: 22 characters, the last carrying 2 bits (so one of `AQgw`),
/// then `==`.
fn is_nonce(key: &[u8]) -> bool {
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24
        && key[..21].iter().all(alphabet)
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"=="
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::websocket::SUBPROTOCOL;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get("/ws");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    const GOOD: [(&str, &str); 5] = [
        ("host", "127.0.0.1"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    fn without(name: &str) -> Vec<(&'static str, &'static str)> {
        GOOD.iter().copied().filter(|(n, _)| *n != name).collect()
    }

    fn with(name: &str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut headers = without(name);
        if let Some(slot) = GOOD.iter().find(|(n, _)| *n == name) {
            headers.push((slot.0, value));
        }
        headers
    }

    fn status(headers: &[(&str, &str)]) -> u16 {
        check_upgrade(&request(headers)).map_or_else(|refusal| refusal.status, |_| 101)
    }

    #[test]
    fn the_rfc_example_key_gets_the_rfc_accept() {
        // RFC 6455, section 1.3.
        assert_eq!(
            check_upgrade(&request(&GOOD)).as_deref(),
            Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn every_required_header_is_checked() {
        for name in ["host", "upgrade", "connection", "sec-websocket-key"] {
            assert_eq!(status(&without(name)), 400, "without {name}");
        }
        assert_eq!(status(&without("sec-websocket-version")), 426);
        assert_eq!(status(&with("sec-websocket-version", "8")), 426);
        assert_eq!(status(&with("upgrade", "h2c")), 400);
        assert_eq!(status(&with("connection", "keep-alive")), 400);
    }

    #[test]
    fn header_tokens_are_case_insensitive_lists() {
        assert_eq!(status(&with("upgrade", "WebSocket")), 101);
        assert_eq!(status(&with("connection", "keep-alive, upgrade")), 101);
    }

    #[test]
    fn the_key_must_be_sixteen_bytes_of_base64() {
        assert_eq!(status(&with("sec-websocket-key", "short")), 400);
        // 24 characters, but 17 bytes' worth: the 22nd character carries more than 2 bits.
        assert_eq!(
            status(&with("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZB==")),
            400
        );
        assert_eq!(
            status(&with("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=x")),
            400
        );
        assert_eq!(
            status(&with("sec-websocket-key", "dGhlIHNhbXBsZSBub25j*Q==")),
            400
        );
    }

    #[test]
    fn http_1_0_is_refused() {
        let mut old = request(&GOOD);
        *old.version_mut() = Version::HTTP_10;
        assert_eq!(check_upgrade(&old).map_err(|r| r.status), Err(400));
    }

    #[test]
    fn over_http2_a_websocket_opens_by_extended_connect() {
        let connect = |protocol: Option<&'static str>, version: &str| {
            let mut request = Request::builder()
                .method(Method::CONNECT)
                .version(Version::HTTP_2)
                .uri("https://localhost/ws")
                .header("sec-websocket-version", version)
                .body(())
                .expect("request");
            if let Some(protocol) = protocol {
                request
                    .extensions_mut()
                    .insert(hyper::ext::Protocol::from_static(protocol));
            }
            check_opening(&request).map_err(|refusal| refusal.status)
        };
        assert_eq!(connect(Some("websocket"), "13"), Ok(Opening::Connect));
        assert_eq!(connect(Some("websocket"), "8"), Err(426));
        assert_eq!(connect(None, "13"), Err(400), "a plain CONNECT");
        assert_eq!(connect(Some("webtransport"), "13"), Err(400));
        let mut get = request(&GOOD);
        *get.version_mut() = Version::HTTP_2;
        assert_eq!(
            check_opening(&get).map_err(|r| r.status),
            Err(400),
            "no upgrade in h2"
        );
        let answer = switching(&Opening::Connect, Some("roomcast.v1"));
        assert_eq!(answer.status(), StatusCode::OK);
        assert!(answer.headers().get(header::SEC_WEBSOCKET_ACCEPT).is_none());
        assert_eq!(
            answer.headers()[header::SEC_WEBSOCKET_PROTOCOL],
            "roomcast.v1"
        );
        let upgrade = switching(&Opening::Upgrade("x".into()), None);
        assert_eq!(upgrade.status(), StatusCode::SWITCHING_PROTOCOLS);
    }

    #[test]
    fn subprotocols_are_matched_exactly_in_lists() {
        let headers = request(&[("sec-websocket-protocol", "chat, roomcast.v1")]);
        assert!(offers(headers.headers(), SUBPROTOCOL));
        let headers = request(&[("sec-websocket-protocol", "Roomcast.V1")]);
        assert!(!offers(headers.headers(), SUBPROTOCOL));
    }
}
