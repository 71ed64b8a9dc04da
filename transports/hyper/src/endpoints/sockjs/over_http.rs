//! SockJS's HTTP transports: a session that outlives the requests carrying it. The first
//! receiving request (`xhr`, `xhr_streaming`, `eventsource`) of an unknown session id admits
//! and registers a session as `/ws` (or `/stomp`) would, and puts it in the table of
//! [`Sessions`]; later requests find it there, from the same client address only. Its task runs
//! the session over [`SockJsHttp`] until it ends, and keeps the table's entry until the session
//! has expired (5 s without a receiver), so that late receivers learn how it ended.
//!
//! The table itself is `sockjs_table.rs`.
//!
//! A STOMP session whose requests carry no credential is admitted by its `CONNECT`, as over
//! WebSocket (`stomp.rs`, [`Deferred`]).

use std::net::IpAddr;

use bytes::Bytes;
use futures_lite::future;
use http::{HeaderValue, Request, Response, StatusCode, header};
use roomcast_core::sockjs::http::{Received, Receiving};
use roomcast_io::{
    Registered, Runtime, SessionOptions, SockJsHttp, SockJsLink, StompTransport, run_registered,
};

use crate::auth::query_param;
use crate::body::Body;
use crate::context::{Inner, parse_cursor};
use crate::endpoints::stomp::{Deferred, bridge};
use crate::endpoints::websocket::register;
use crate::per_ip::Slot;
use crate::proxies::client_ip;
use crate::refusal::Refusal;
use crate::response::{NO_CACHE, allow_origin};
use crate::sockjs_table::{Carried, Key, no_such_session};

/// An `xhr_send` body, read before dispatch (the service reads it, bounded, for the requests
/// [`reads_body`](super::reads_body) names).
#[derive(Clone, Debug)]
pub(crate) struct SendBody(pub(crate) Bytes);

/// A receiving request: the session's bytes as the response, the session opened first when
/// `id` is new.
pub(super) async fn receive<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<B>,
    carried: Carried,
    id: String,
    kind: Receiving,
) -> Result<Response<Body>, Refusal> {
    let cors = inner.check_origin(&request)?;
    let client = client_ip(peer, request.headers(), &inner.options.trusted_proxies);
    let key = (carried, id);
    let link = match inner.sockjs.find(&key, client)? {
        Some(link) => link,
        None => open(inner, peer, &request, key, client).await?,
    };
    let body = match link.attach(kind, &inner.runtime) {
        Ok(receiver) => Body::chunks(receiver),
        Err(refused) => Body::full(refused),
    };
    let content_type = match kind {
        Receiving::EventSource => "text/event-stream; charset=UTF-8",
        Receiving::Xhr | Receiving::XhrStreaming => "application/javascript; charset=UTF-8",
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    // Proxies such as nginx would otherwise hold frames back to fill a buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    allow_origin(&mut response, cors);
    Ok(response)
}

/// `xhr_send`: the client's messages to its session, `204` once they are queued for it.
pub(super) async fn send<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<B>,
    carried: Carried,
    id: String,
) -> Result<Response<Body>, Refusal> {
    let cors = inner.check_origin(&request)?;
    let client = client_ip(peer, request.headers(), &inner.options.trusted_proxies);
    let link = inner
        .sockjs
        .find(&(carried, id), client)?
        .ok_or_else(no_such_session)?;
    let body = request.extensions().get::<SendBody>();
    let body = body.map(|body| body.0.clone()).unwrap_or_default();
    // A session that does not read its client's messages within the write timeout is stuck;
    // the client is told so rather than kept waiting.
    let runtime = &inner.runtime;
    let deadline = runtime.now() + inner.options.session.write_timeout;
    let stuck = async {
        runtime.sleep_until(deadline).await;
        Received::Busy
    };
    let (status, text) = match future::or(link.send(&body), stuck).await {
        Received::Queued => (StatusCode::NO_CONTENT, ""),
        Received::Invalid(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.message()),
        Received::Ended => return Err(no_such_session()),
        Received::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the session is not reading",
        ),
    };
    let mut response = Response::new(Body::full(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let plain = HeaderValue::from_static("text/plain; charset=UTF-8");
    headers.insert(header::CONTENT_TYPE, plain);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    allow_origin(&mut response, cors);
    Ok(response)
}

/// A session admitted and registered, not yet running: one per session, moved once into its
/// task, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Start<R> {
    /// roomcast.v1, or STOMP whose request carried its credential.
    Admitted {
        registered: Registered,
        options: SessionOptions,
        slot: Slot,
    },
    /// STOMP, its credential to come in `CONNECT`.
    Deferred(Deferred<R>),
}

/// Opens session `key` for `request`: admitted and registered as `/ws` (roomcast.v1, resumed
/// by `?cursor=`) or `/stomp` would be, in the table, its task running.
async fn open<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: &Request<B>,
    key: Key,
    client: IpAddr,
) -> Result<SockJsLink, Refusal> {
    let (transport, cursor) = match key.0 {
        Carried::V1 => ("sockjs", query_param(request.uri(), "cursor")),
        Carried::Stomp => ("stomp", None),
    };
    let start = match inner.admit_session(peer, request, transport).await {
        Ok(admitted) => {
            let cursor = parse_cursor(cursor, "cursor")?;
            let (registered, options, _) =
                register(inner, admitted.identity, cursor, transport).await?;
            Start::Admitted {
                registered,
                options,
                slot: admitted.slot,
            }
        }
        // No credential in the request: perhaps in `CONNECT`.
        Err(refusal) if refusal.status == 401 && key.0 == Carried::Stomp => {
            Start::Deferred(Deferred {
                inner: inner.clone(),
                peer,
                uri: request.uri().clone(),
                headers: request.headers().clone(),
                slot: inner.admit_anonymous(peer, request)?,
            })
        }
        Err(refusal) => return Err(refusal),
    };
    let link = SockJsLink::new(inner.options.sockjs.clone(), inner.runtime.now());
    let inserted = inner.sockjs.insert(key.clone(), link.clone(), client)?;
    if inserted.same(&link) {
        inner.runtime.spawn(run(inner.clone(), key, link, start));
    }
    // Else a racing request opened it: this one's registration is dropped unrun.
    Ok(inserted)
}

/// The session's task: the session until it ends, then the link until it expires.
async fn run<R: Runtime>(inner: Inner<R>, key: Key, link: SockJsLink, start: Start<R>) {
    let carried = key.0;
    let runtime = inner.runtime.clone();
    let session = async {
        let carrier = SockJsHttp::new(link.clone());
        match start {
            Start::Admitted {
                registered,
                options,
                slot,
            } => {
                let _slot = slot;
                match carried {
                    Carried::V1 => {
                        run_registered(&runtime, carrier, registered, options).await;
                    }
                    Carried::Stomp => {
                        let transport = StompTransport::new(carrier, bridge(&options));
                        run_registered(&runtime, transport, registered, options).await;
                    }
                }
            }
            Start::Deferred(deferred) => {
                let bridge = bridge(&inner.options.session);
                deferred.run(StompTransport::new(carrier, bridge)).await;
            }
        }
        // A session that ended without a close (a `CONNECT` that never came) says so.
        link.close(1000, "session ended");
    };
    future::zip(session, link.expired(&runtime)).await;
    inner.sockjs.remove(&key);
}
