//! The roomcast HTTP service: routing, the checks every endpoint shares (method, origin,
//! authentication, per-IP limit, shutdown), and error replies.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use roomcast_core::cursor::Cursor;
use roomcast_core::hub::Connect;
use roomcast_core::names::{RoomName, UserId};
use roomcast_io::{ConnectError, HubHandle, Registered, Runtime, SessionOptions, Shutdown};

use crate::body::Body;
use crate::handshake::{Authenticate, Handshake, Refusal, query_param, user_from_query};
use crate::per_ip::{PerIp, Slot};
use crate::{poll, sse, websocket};

/// How the service runs.
#[derive(Clone)]
pub struct Options {
    /// The sessions' limits and timings, and the shutdown switch they share. `kind` is set per
    /// endpoint; `config.handshake_timeout` also bounds reading a request's headers.
    pub session: SessionOptions,
    /// Who a request is; it runs before any upgrade or stream. The default is the development
    /// mode: `?user=NAME` names the user ([`user_from_query`]).
    pub authenticate: Authenticate,
    /// The `Origin`s browsers may connect from; empty (the default) allows any, `"*"` too.
    /// A request without `Origin` (not from a browser) is always allowed.
    pub allowed_origins: Vec<String>,
    /// Sessions (WebSocket, SSE, long-poll) one IP address may hold at once: 1,024. More are
    /// refused with 429.
    pub max_sessions_per_ip: usize,
    /// The reconnection delay an SSE stream asks browsers for: 3 s.
    pub sse_retry: Duration,
    /// Longest a long-poll waits for a message: 25 s (`?timeout=` may ask for less).
    pub poll_wait: Duration,
    /// Most messages in one long-poll answer: 1,000 (and at most `session.config.queue_bytes`
    /// of them); the rest come with the next poll.
    pub poll_max_events: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            session: SessionOptions::default(),
            authenticate: Arc::new(user_from_query),
            allowed_origins: Vec::new(),
            max_sessions_per_ip: 1024,
            sse_retry: Duration::from_secs(3),
            poll_wait: Duration::from_secs(25),
            poll_max_events: 1000,
        }
    }
}

/// The roomcast endpoints as one hyper service (cheap to clone):
///
/// | Path | What |
/// |---|---|
/// | `GET /ws` | the roomcast protocol over WebSocket (`?cursor=` resumes) |
/// | `GET /ws/echo` | a plain WebSocket echo |
/// | `GET /events` | an SSE stream: the user's notifications, the broadcast feed, `?rooms=a,b` |
/// | `GET /poll` | long-poll: the stored messages after `?cursor=`, as JSON |
///
/// Anything else is a 404; an application serves its own routes and hands these paths to
/// [`handle`](Self::handle).
pub struct Roomcast<R> {
    inner: Arc<Inner<R>>,
}

impl<R> Clone for Roomcast<R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct Inner<R> {
    pub(crate) runtime: R,
    pub(crate) hub: HubHandle,
    pub(crate) options: Options,
    per_ip: PerIp,
}

/// A request admitted to a session endpoint: who it is, and its per-IP slot.
pub(crate) struct Admitted {
    pub(crate) user: UserId,
    pub(crate) slot: Slot,
    /// The `Origin`, when allowed and present: echoed for CORS.
    pub(crate) origin: Option<HeaderValue>,
}

impl<R: Runtime> Roomcast<R> {
    /// The service on `runtime` (which runs the sessions) for the hub behind `hub`.
    pub fn new(runtime: R, hub: HubHandle, options: Options) -> Self {
        let per_ip = PerIp::new(options.max_sessions_per_ip);
        Self {
            inner: Arc::new(Inner {
                runtime,
                hub,
                options,
                per_ip,
            }),
        }
    }

    /// The shutdown switch of every session this service runs.
    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.options.session.shutdown
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The hub.
    pub fn hub(&self) -> &HubHandle {
        &self.inner.hub
    }

    /// The accept loop of a runtime adapter: takes connections from `accept` and hands each to
    /// `serve` (which spawns its task) until the shutdown is triggered; then nothing new is
    /// accepted, and the sessions finish their shutdown. An accept error (out of descriptors, a
    /// connection reset before accept) pauses the loop for 50 ms, not the server.
    pub async fn accept_loop<C, A, F>(&self, mut accept: A, mut serve: impl FnMut(C, SocketAddr))
    where
        A: FnMut() -> F,
        F: Future<Output = std::io::Result<(C, SocketAddr)>>,
    {
        let shutdown = self.shutdown();
        loop {
            let accepted = futures_lite::future::or(async { Some(accept().await) }, async {
                shutdown.triggered().await;
                None
            });
            match accepted.await {
                None => return,
                Some(Ok((connection, peer))) => serve(connection, peer),
                Some(Err(_)) => {
                    let runtime = &self.inner.runtime;
                    runtime
                        .sleep_until(runtime.now() + Duration::from_millis(50))
                        .await;
                }
            }
        }
    }

    /// The service for one connection from `peer`, to hand to hyper.
    pub fn service(&self, peer: SocketAddr) -> PeerService<R> {
        PeerService {
            roomcast: self.clone(),
            peer: peer.ip(),
        }
    }

    /// Answers one request from `peer`. The body type is any (hyper's `Incoming`, or a
    /// framework's own, such as axum's): no endpoint reads a request body, and a WebSocket
    /// upgrade needs only hyper's upgrade extension, which frameworks keep.
    pub async fn handle<B: Send + 'static>(
        &self,
        peer: IpAddr,
        request: Request<B>,
    ) -> Response<Body> {
        let inner = &self.inner;
        let endpoint = match request.uri().path() {
            "/ws" => Endpoint::WebSocket,
            "/ws/echo" => Endpoint::Echo,
            "/events" => Endpoint::Sse,
            "/poll" => Endpoint::Poll,
            _ => return refuse(&Refusal::new(404, "no such endpoint")),
        };
        if request.method() != Method::GET {
            let mut response = refuse(&Refusal::new(405, "only GET is served here"));
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            return response;
        }
        if let Some(refusal) = inner.unavailable() {
            return inner.refusal_response(&refusal);
        }
        let result = match endpoint {
            Endpoint::WebSocket => websocket::protocol(inner, peer, request).await,
            Endpoint::Echo => websocket::echo(inner, peer, request),
            Endpoint::Sse => sse::stream(inner, peer, request).await,
            Endpoint::Poll => poll::poll(inner, peer, request).await,
        };
        result.unwrap_or_else(|refusal| inner.refusal_response(&refusal))
    }

    pub(crate) fn inner(&self) -> &Inner<R> {
        &self.inner
    }
}

#[derive(Clone, Copy)]
enum Endpoint {
    WebSocket,
    Echo,
    Sse,
    Poll,
}

impl<R: Runtime> Inner<R> {
    /// 503 while the server shuts down: no new session.
    pub(crate) fn unavailable(&self) -> Option<Refusal> {
        self.options
            .session
            .shutdown
            .reconnect_ms()
            .map(|ms| Refusal::new(503, "the server is shutting down").retry_after(ms))
    }

    /// A refusal's reply, with the headers its status calls for.
    pub(crate) fn refusal_response(&self, refusal: &Refusal) -> Response<Body> {
        let mut response = refuse(refusal);
        let headers = response.headers_mut();
        if refusal.status == 426 {
            // RFC 6455, section 4.2.2: name the version this server speaks.
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        if let Some(ms) = refusal.retry_after_ms {
            let seconds = ms.div_ceil(1000).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }

    /// The checks of a session endpoint, in order: origin (403), authentication (401), the
    /// per-IP limit (429).
    pub(crate) fn admit<B>(&self, peer: IpAddr, request: &Request<B>) -> Result<Admitted, Refusal> {
        let origin = self.check_origin(request)?;
        let handshake = Handshake {
            uri: request.uri(),
            headers: request.headers(),
            peer,
        };
        let user = (self.options.authenticate)(&handshake)?;
        let slot = self.acquire(peer)?;
        Ok(Admitted { user, slot, origin })
    }

    /// A per-IP slot, or 429.
    pub(crate) fn acquire(&self, peer: IpAddr) -> Result<Slot, Refusal> {
        self.per_ip.acquire(peer).ok_or_else(|| {
            Refusal::new(
                429,
                format!(
                    "too many connections from this address (at most {})",
                    self.options.max_sessions_per_ip
                ),
            )
        })
    }

    /// The request's `Origin` if it is allowed (`None` if it has none), or 403.
    pub(crate) fn check_origin<B>(
        &self,
        request: &Request<B>,
    ) -> Result<Option<HeaderValue>, Refusal> {
        let Some(origin) = request.headers().get(header::ORIGIN) else {
            return Ok(None);
        };
        let allowed = &self.options.allowed_origins;
        let text = origin.to_str().unwrap_or("");
        if allowed.is_empty() || allowed.iter().any(|a| a == "*" || a == text) {
            Ok(Some(origin.clone()))
        } else {
            Err(Refusal::new(403, format!("origin {text:?} is not allowed")))
        }
    }
}

impl<R: Runtime> Inner<R> {
    /// Registers an SSE or long-poll connection: it follows the user's stream, the broadcast
    /// feed unless `?broadcast=0`, and the rooms of `?rooms=`, from `cursor`.
    pub(crate) async fn register_stream<B>(
        &self,
        admitted: &Admitted,
        request: &Request<B>,
        cursor: Option<Cursor>,
    ) -> Result<Registered, Refusal> {
        let connect = Connect {
            user: admitted.user.clone(),
            broadcast: broadcast_param(request),
            rooms: rooms_param(request)?,
            cursor,
        };
        self.hub.register(connect).await.map_err(hub_refusal)
    }
}

/// A session endpoint's `?rooms=a,b`, each name checked (400).
fn rooms_param<B>(request: &Request<B>) -> Result<Vec<RoomName>, Refusal> {
    let Some(list) = query_param(request.uri(), "rooms") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| {
            RoomName::new(name).map_err(|error| Refusal::new(400, format!("room {name:?} {error}")))
        })
        .collect()
}

/// A cursor parameter or header value, checked (400).
pub(crate) fn parse_cursor(text: Option<String>, what: &str) -> Result<Option<Cursor>, Refusal> {
    text.filter(|text| !text.is_empty())
        .map(|text| {
            text.parse::<Cursor>()
                .map_err(|error| Refusal::new(400, format!("{what}: {error}")))
        })
        .transpose()
}

/// `?broadcast=0` (or `false`) opts out of the broadcast feed.
fn broadcast_param<B>(request: &Request<B>) -> bool {
    !matches!(
        query_param(request.uri(), "broadcast").as_deref(),
        Some("0" | "false")
    )
}

/// What the hub refusing a connection means for HTTP.
pub(crate) fn hub_refusal(error: ConnectError) -> Refusal {
    match error {
        ConnectError::Refused(error) => Refusal::new(400, error.to_string()),
        ConnectError::Gone => Refusal::new(503, "the hub has stopped"),
    }
}

/// A JSON error reply: `{"type":"error","code":...,"message":...}`.
pub(crate) fn refuse(refusal: &Refusal) -> Response<Body> {
    refusal.response()
}

/// A JSON reply, not to be cached.
pub fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Lets the allowed `origin` read a cross-origin response (SSE, long-poll).
pub(crate) fn allow_origin<B>(response: &mut Response<B>, origin: Option<HeaderValue>) {
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// [`Roomcast`] for one connection, as hyper wants a service.
pub struct PeerService<R> {
    roomcast: Roomcast<R>,
    peer: IpAddr,
}

impl<R> Clone for PeerService<R> {
    fn clone(&self) -> Self {
        Self {
            roomcast: self.roomcast.clone(),
            peer: self.peer,
        }
    }
}

impl<R: Runtime> hyper::service::Service<Request<Incoming>> for PeerService<R> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.roomcast.handle(this.peer, request).await) })
    }
}
