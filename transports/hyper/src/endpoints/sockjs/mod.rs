//! SockJS under `/stomp/` (the SockJS protocol 0.3): `GET /stomp/info`, SockJS's WebSocket
//! transport at `/stomp/<server>/<session>/websocket` carrying STOMP in SockJS's framing, and
//! the raw `/stomp/websocket` (STOMP as `/stomp` serves it). The HTTP transports (`xhr`,
//! `xhr_send`, `xhr_streaming`, `eventsource`) are not served yet: 404, and a SockJS client
//! told `websocket: true` by `info` uses the WebSocket.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;

use http::{HeaderValue, Request, Response, StatusCode, header};
use roomcast_io::Runtime;

use super::stomp::serve_framed;
use crate::body::Body;
use crate::context::Inner;
use crate::refusal::Refusal;
use crate::response::{allow_origin, json};

/// What SockJS asks under `/stomp/`.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    Info,
    /// `/stomp/websocket`: STOMP over a plain WebSocket.
    RawWebSocket,
    /// `/stomp/<server>/<session>/websocket`.
    WebSocket,
    /// Another transport of a session, not served.
    Transport,
}

/// Reads `path` (under `/stomp/`): `None` for what is not SockJS's.
fn asked(path: &str) -> Option<Asked> {
    let rest = path.strip_prefix("/stomp/")?;
    match rest {
        "info" => return Some(Asked::Info),
        "websocket" => return Some(Asked::RawWebSocket),
        _ => {}
    }
    let mut parts = rest.split('/');
    let (server, session, transport) = (parts.next()?, parts.next()?, parts.next()?);
    // Server and session ids: any text but empty or with a dot (the protocol's rule).
    let id = |part: &str| !part.is_empty() && !part.contains('.');
    if parts.next().is_some() || !id(server) || !id(session) {
        return None;
    }
    match transport {
        "websocket" => Some(Asked::WebSocket),
        "xhr" | "xhr_send" | "xhr_streaming" | "eventsource" => Some(Asked::Transport),
        _ => None,
    }
}

/// Serves a request under `/stomp/`.
pub(crate) async fn serve<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    match asked(request.uri().path()) {
        Some(Asked::Info) => info(inner, &request),
        Some(Asked::RawWebSocket) => serve_framed(inner, peer, request, false).await,
        Some(Asked::WebSocket) => serve_framed(inner, peer, request, true).await,
        Some(Asked::Transport) => Err(Refusal::new(
            404,
            "this SockJS transport is not served: use the websocket transport",
        )),
        None => Err(Refusal::new(404, "no such endpoint")),
    }
}

/// `GET /stomp/info`: what the server offers, not cached, readable cross-origin by an allowed
/// origin.
fn info<R: Runtime, B>(inner: &Inner<R>, request: &Request<B>) -> Result<Response<Body>, Refusal> {
    let cors = inner.check_origin(request)?;
    // The protocol asks for a random number a client may seed its ids with.
    let entropy = RandomState::new().hash_one(0u8) as u32;
    let body = format!(
        r#"{{"websocket":true,"cookie_needed":false,"origins":["*:*"],"entropy":{entropy}}}"#
    );
    let mut response = json(StatusCode::OK, body);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, no-transform, must-revalidate, max-age=0"),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    allow_origin(&mut response, cors);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_as_the_protocol_names_them() {
        assert_eq!(asked("/stomp/info"), Some(Asked::Info));
        assert_eq!(asked("/stomp/websocket"), Some(Asked::RawWebSocket));
        assert_eq!(asked("/stomp/123/abc/websocket"), Some(Asked::WebSocket));
        assert_eq!(
            asked("/stomp/123/abc/xhr_streaming"),
            Some(Asked::Transport)
        );
        assert_eq!(
            asked("/stomp/1.2/abc/websocket"),
            None,
            "no dot in a server id"
        );
        assert_eq!(
            asked("/stomp/123/a.b/websocket"),
            None,
            "no dot in a session id"
        );
        assert_eq!(asked("/stomp//abc/websocket"), None);
        assert_eq!(asked("/stomp/123/abc/websocket/more"), None);
        assert_eq!(asked("/stomp/123/abc/htmlfile"), None, "out of scope");
        assert_eq!(asked("/elsewhere"), None);
    }
}
