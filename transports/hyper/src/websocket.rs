//! WebSocket by HTTP upgrade (RFC 6455, section 4.2): the handshake checked to the letter and
//! answered with an HTTP error when it is wrong, then a session (or the echo) on the upgraded
//! connection. A session whose handshake is its connection's first request is served on the
//! connection directly ([`serve_direct`]), others through hyper's upgrade ([`protocol`]); both
//! run the same checks ([`open`]) and send the same answer.

use std::net::IpAddr;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use futures_lite::{AsyncWriteExt, future};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version, header};
use roomcast_core::hub::Connect;
use roomcast_core::session::SessionKind;
use roomcast_io::{
    Registered, Runtime, SessionOptions, WsTransport, echo_config, run_registered, websocket_config,
};

use crate::body::Body;
use crate::direct::{Framing, head_bytes, refuse};
use crate::handshake::{Refusal, query_param};
use crate::io::HyperIo;
use crate::per_ip::Slot;
use crate::service::{Inner, hub_refusal, parse_cursor};

/// The subprotocol of roomcast protocol v1, selected when a client offers it.
pub const SUBPROTOCOL: &str = "roomcast.v1";

/// A session admitted and registered, and the handshake's answer: what either way of serving
/// it needs.
struct Opened {
    registered: Registered,
    slot: Slot,
    /// The `101` answer.
    switching: Response<Body>,
    options: SessionOptions,
    config: WebSocketConfig,
}

/// The handshake check, the admission checks (origin, authentication, per-IP limit), the
/// cursor from `?cursor=`, and the registration with the hub.
async fn open<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: &Request<B>,
) -> Result<Opened, Refusal> {
    let accept = check_upgrade(request)?;
    let admitted = inner.admit(peer, request)?;
    let cursor = parse_cursor(query_param(request.uri(), "cursor"), "cursor")?;
    let connect = Connect {
        user: admitted.user,
        broadcast: true,
        rooms: Vec::new(),
        cursor,
    };
    let registered = inner.hub.register(connect).await.map_err(hub_refusal)?;
    let offers_v1 = offers(request.headers(), SUBPROTOCOL);
    let mut options = inner.options.session.clone();
    options.kind = SessionKind::WebSocket;
    options.transport = "websocket";
    let config = websocket_config(&options.config);
    Ok(Opened {
        registered,
        slot: admitted.slot,
        switching: switching(&accept, offers_v1.then_some(SUBPROTOCOL)),
        options,
        config,
    })
}

/// `GET /ws` under hyper: the roomcast protocol on the upgraded connection, in a task of its
/// own.
pub(crate) async fn protocol<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    mut request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    let Opened {
        registered,
        slot,
        switching,
        options,
        config,
    } = open(inner, peer, &request).await?;
    let upgrade = hyper::upgrade::on(&mut request);
    let runtime = inner.runtime.clone();
    inner.runtime.spawn(async move {
        let _slot = slot;
        // Dropping `registered` unrun (the upgrade failed) removes it from the hub.
        let Ok(upgraded) = upgrade.await else { return };
        let transport = WsTransport::server(HyperIo(upgraded), config);
        run_registered(&runtime, transport, registered, options).await;
    });
    Ok(switching)
}

/// `GET /ws` as a connection's first request: the checks and the `101` on `io`, the connection
/// it came on, then the roomcast protocol on it in a task of its own, as under hyper. No hyper
/// connection or upgrade comes between the session and its socket, so a delivery follows one
/// pointer fewer to the socket, and a connection costs less to open. A refusal is answered, and
/// the connection closed.
///
/// The session gets a task of its own rather than running in the connection's: nested in the
/// connection's future, each level's state is one more cache line per delivery.
pub(crate) async fn serve_direct<R, I>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<()>,
    mut io: HyperIo<I>,
) where
    R: Runtime,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let opened = match inner.unavailable() {
        Some(refusal) => Err(refusal),
        None => open(inner, peer, &request).await,
    };
    let Opened {
        registered,
        slot,
        switching,
        options,
        config,
    } = match opened {
        Ok(opened) => opened,
        Err(refusal) => return refuse(inner, &refusal, io).await,
    };
    let (parts, _) = switching.into_parts();
    let head = head_bytes(&Response::from_parts(parts, ()), Framing::Switching);
    let runtime = &inner.runtime;
    let timeout = runtime.now() + options.write_timeout;
    let written = async {
        io.write_all(&head).await?;
        io.flush().await
    };
    let timed_out = async {
        runtime.sleep_until(timeout).await;
        Err(std::io::ErrorKind::TimedOut.into())
    };
    if future::or(written, timed_out).await.is_err() {
        return; // `registered`, dropped unrun, leaves the hub
    }
    let runtime = runtime.clone();
    inner.runtime.spawn(async move {
        let _slot = slot;
        let transport = WsTransport::server(io, config);
        run_registered(&runtime, transport, registered, options).await;
    });
}

/// `GET /ws/echo`: every text and binary message comes back unchanged.
pub(crate) fn echo<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    mut request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    let accept = check_upgrade(&request)?;
    inner.check_origin(&request)?;
    let slot = inner.acquire(peer)?;
    let upgrade = hyper::upgrade::on(&mut request);
    inner.runtime.spawn(async move {
        let _slot = slot;
        let Ok(upgraded) = upgrade.await else { return };
        let ws =
            WebSocketStream::from_raw_socket(HyperIo(upgraded), Role::Server, Some(echo_config()))
                .await;
        roomcast_io::echo(ws).await;
    });
    Ok(switching(&accept, None))
}

/// The `101 Switching Protocols` answer.
fn switching(accept: &str, protocol: Option<&'static str>) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(accept).expect("base64 is a valid header value"),
    );
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
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok());
    if version.map(str::trim) != Some("13") {
        return Err(Refusal::new(
            426,
            "unsupported WebSocket version: this server speaks Sec-WebSocket-Version 13",
        ));
    }
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
fn offers(headers: &HeaderMap, name: &str) -> bool {
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
    fn subprotocols_are_matched_exactly_in_lists() {
        let headers = request(&[("sec-websocket-protocol", "chat, roomcast.v1")]);
        assert!(offers(headers.headers(), SUBPROTOCOL));
        let headers = request(&[("sec-websocket-protocol", "Roomcast.V1")]);
        assert!(!offers(headers.headers(), SUBPROTOCOL));
    }
}
