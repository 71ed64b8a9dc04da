//! SockJS (the SockJS protocol 0.3.3) under two bases: `/stomp/` carries STOMP (as `/stomp`
//! serves it), `/sockjs/` carries roomcast.v1 (as `/ws` serves it). Under each:
//!
//! | Path | What |
//! |---|---|
//! | `GET info` | what the server offers (`OPTIONS` for CORS) |
//! | `GET websocket` | the protocol over a plain WebSocket |
//! | `GET <server>/<session>/websocket` | SockJS's WebSocket transport |
//! | `POST <server>/<session>/xhr`, `xhr_streaming`; `GET .../eventsource` | receiving (`over_http.rs`) |
//! | `POST <server>/<session>/xhr_send` | sending (`over_http.rs`) |
//!
//! iframe, htmlfile and JSONP transports are not served (404): sockjs-client falls back to
//! them only on browsers without CORS.

mod over_http;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use roomcast_core::sockjs::http::Receiving;
use roomcast_io::{Runtime, SockJsWs};

use super::stomp::serve_framed;
use super::websocket::{self, open_as};
use crate::body::Body;
use crate::context::Inner;
use crate::refusal::Refusal;
use crate::response::{NO_CACHE, allow_origin, json};
use crate::sockjs_table::Carried;
pub(crate) use over_http::SendBody;

/// The bases, each with what its sessions carry.
const BASES: [(&str, Carried); 2] = [("/stomp/", Carried::Stomp), ("/sockjs/", Carried::V1)];

/// The base `path` is under, if it is SockJS's.
pub(crate) fn base(path: &str) -> Option<(&'static str, Carried)> {
    BASES.into_iter().find(|(base, _)| path.starts_with(base))
}

/// What SockJS asks under a base.
#[derive(Debug, PartialEq, Eq)]
enum Asked<'a> {
    Info,
    /// `websocket`: the protocol over a plain WebSocket.
    RawWebSocket,
    /// A transport of session `id`.
    Session {
        id: &'a str,
        transport: Transport,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    WebSocket,
    Receive(Receiving),
    Send,
}

/// Reads `rest`, the path after the base: `None` for what is not SockJS's.
fn asked(rest: &str) -> Option<Asked<'_>> {
    match rest {
        "info" => return Some(Asked::Info),
        "websocket" => return Some(Asked::RawWebSocket),
        _ => {}
    }
    let mut parts = rest.split('/');
    let (server, id, transport) = (parts.next()?, parts.next()?, parts.next()?);
    // Server and session ids: any text but empty or with a dot (the protocol's rule).
    let valid = |part: &str| !part.is_empty() && !part.contains('.');
    if parts.next().is_some() || !valid(server) || !valid(id) {
        return None;
    }
    let transport = match transport {
        "websocket" => Transport::WebSocket,
        "xhr" => Transport::Receive(Receiving::Xhr),
        "xhr_streaming" => Transport::Receive(Receiving::XhrStreaming),
        "eventsource" => Transport::Receive(Receiving::EventSource),
        "xhr_send" => Transport::Send,
        _ => return None,
    };
    Some(Asked::Session { id, transport })
}

/// Whether the request's body is read before it is served: an `xhr_send`'s.
pub(crate) fn reads_body(method: &Method, path: &str) -> bool {
    *method == Method::POST
        && base(path).is_some_and(|(base, _)| {
            matches!(
                asked(&path[base.len()..]),
                Some(Asked::Session {
                    transport: Transport::Send,
                    ..
                })
            )
        })
}

/// Serves a request under a SockJS base; the methods are checked here.
pub(crate) async fn serve<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    let path = request.uri().path().to_owned();
    let Some((base, carried)) = base(&path) else {
        return Err(Refusal::new(404, "no such endpoint"));
    };
    let method = request.method().clone();
    let upgrade = method == Method::GET || crate::upgrade::is_extended_connect(&request);
    match asked(&path[base.len()..]) {
        Some(Asked::Info) if method == Method::OPTIONS => {
            preflight(inner, &request, "OPTIONS, GET")
        }
        Some(Asked::Info) if method == Method::GET => info(inner, &request),
        Some(Asked::Info) => Err(not_allowed("OPTIONS, GET")),
        Some(Asked::RawWebSocket) if upgrade => match carried {
            Carried::Stomp => serve_framed(inner, peer, request, false).await,
            Carried::V1 => websocket::serve(inner, peer, request).await,
        },
        Some(Asked::Session {
            transport: Transport::WebSocket,
            ..
        }) if upgrade => match carried {
            Carried::Stomp => serve_framed(inner, peer, request, true).await,
            Carried::V1 => serve_v1_websocket(inner, peer, request).await,
        },
        Some(
            Asked::RawWebSocket
            | Asked::Session {
                transport: Transport::WebSocket,
                ..
            },
        ) => Err(not_allowed("GET")),
        Some(Asked::Session { id, transport }) => {
            let wanted = match transport {
                Transport::Receive(Receiving::EventSource) => Method::GET,
                _ => Method::POST,
            };
            if method == Method::OPTIONS {
                return preflight(inner, &request, &format!("OPTIONS, {wanted}"));
            }
            if method != wanted {
                return Err(not_allowed(&format!("OPTIONS, {wanted}")));
            }
            let id = id.to_owned();
            match transport {
                Transport::Receive(kind) => {
                    over_http::receive(inner, peer, request, carried, id, kind).await
                }
                _ => over_http::send(inner, peer, request, carried, id).await,
            }
        }
        None => Err(Refusal::new(404, "no such endpoint")),
    }
}

fn not_allowed(methods: &str) -> Refusal {
    Refusal::new(405, format!("only {methods} is served here"))
}

/// roomcast.v1 over SockJS's WebSocket transport: `/ws`'s session in SockJS's framing.
async fn serve_v1_websocket<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    let opened = open_as(inner, peer, &request, "sockjs", None, true).await?;
    Ok(websocket::upgrade_and_run(
        inner,
        request,
        opened,
        SockJsWs::new,
    ))
}

/// `GET info`: what the server offers, readable cross-origin by an allowed origin.
fn info<R: Runtime, B>(inner: &Inner<R>, request: &Request<B>) -> Result<Response<Body>, Refusal> {
    let cors = inner.check_origin(request)?;
    // The protocol asks for a random number a client may seed its ids with.
    let entropy = RandomState::new().hash_one(0u8) as u32;
    let body = format!(
        r#"{{"websocket":true,"cookie_needed":false,"origins":["*:*"],"entropy":{entropy}}}"#
    );
    let mut response = json(StatusCode::OK, body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    allow_origin(&mut response, cors);
    Ok(response)
}

/// A CORS preflight: `204`, the methods, the headers asked for, cached for a year (the
/// protocol's answer).
fn preflight<R: Runtime, B>(
    inner: &Inner<R>,
    request: &Request<B>,
    methods: &str,
) -> Result<Response<Body>, Refusal> {
    const YEAR: u64 = 31_536_000;
    let cors = inner.check_origin(request)?;
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    let methods = HeaderValue::from_str(methods).expect("a method list is a header value");
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    if let Some(asked) = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    let max_age = HeaderValue::from(YEAR);
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, max_age);
    let public = format!("public, max-age={YEAR}");
    let public = HeaderValue::from_str(&public).expect("ASCII");
    headers.insert(header::CACHE_CONTROL, public);
    let expires = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(YEAR));
    if let Ok(expires) = HeaderValue::from_str(&expires) {
        headers.insert(header::EXPIRES, expires);
    }
    allow_origin(&mut response, cors);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_as_the_protocol_names_them() {
        let session = |id, transport| Some(Asked::Session { id, transport });
        assert_eq!(asked("info"), Some(Asked::Info));
        assert_eq!(asked("websocket"), Some(Asked::RawWebSocket));
        assert_eq!(
            asked("123/abc/websocket"),
            session("abc", Transport::WebSocket)
        );
        assert_eq!(
            asked("123/abc/xhr_streaming"),
            session("abc", Transport::Receive(Receiving::XhrStreaming))
        );
        assert_eq!(
            asked("1/a/xhr"),
            session("a", Transport::Receive(Receiving::Xhr))
        );
        assert_eq!(
            asked("1/a/eventsource"),
            session("a", Transport::Receive(Receiving::EventSource))
        );
        assert_eq!(asked("1/a/xhr_send"), session("a", Transport::Send));
        assert_eq!(asked("1.2/abc/websocket"), None, "no dot in a server id");
        assert_eq!(asked("123/a.b/websocket"), None, "no dot in a session id");
        assert_eq!(asked("/abc/websocket"), None);
        assert_eq!(asked("123/abc/websocket/more"), None);
        assert_eq!(asked("123/abc/htmlfile"), None, "out of scope");
        assert_eq!(asked("123/abc/jsonp"), None, "out of scope");
    }

    #[test]
    fn bases_and_bodies() {
        assert_eq!(base("/stomp/info"), Some(("/stomp/", Carried::Stomp)));
        assert_eq!(base("/sockjs/1/a/xhr"), Some(("/sockjs/", Carried::V1)));
        assert_eq!(base("/stomp"), None, "STOMP's own endpoint");
        assert!(reads_body(&Method::POST, "/sockjs/1/a/xhr_send"));
        assert!(!reads_body(&Method::GET, "/sockjs/1/a/xhr_send"));
        assert!(!reads_body(&Method::POST, "/sockjs/1/a/xhr"));
        assert!(!reads_body(&Method::POST, "/api/notify"));
    }
}
