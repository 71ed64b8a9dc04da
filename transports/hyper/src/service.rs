//! The router: the table of roomcast's paths ([`ROUTES`]), the service that answers a request
//! by it ([`Roomcast`]), and that service for one connection, as hyper wants it
//! ([`PeerService`]). The raw fast path (`raw/`) reads the same table to know which first
//! requests it may serve itself.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use roomcast_io::{HubHandle, Runtime, Shutdown};

use crate::body::Body;
use crate::context::{Inner, Options};
use crate::endpoints::Endpoint;
use crate::endpoints::sockjs::{self, SendBody};
use crate::per_ip::HandshakeHold;
use crate::proxies::is_trusted;
use crate::refusal::Refusal;
use crate::upgrade::is_extended_connect;

/// The routes, one line each: adding an endpoint is its file in `endpoints/` and its line here.
pub(crate) static ROUTES: [Route; 5] = [
    Route::new("/ws", Method::GET, Endpoint::WebSocket, FirstRequest::Raw),
    Route::new("/ws/echo", Method::GET, Endpoint::Echo, FirstRequest::Hyper),
    Route::new("/events", Method::GET, Endpoint::Sse, FirstRequest::Raw),
    Route::new("/poll", Method::GET, Endpoint::Poll, FirstRequest::Hyper),
    Route::new("/stomp", Method::GET, Endpoint::Stomp, FirstRequest::Raw),
];

/// One path of the router.
pub(crate) struct Route {
    /// The path, matched whole; the query is the endpoint's.
    pub(crate) path: &'static str,
    /// The method served; any other is a 405 that names it in `Allow`.
    pub(crate) method: Method,
    /// What serves it.
    pub(crate) endpoint: Endpoint,
    /// Who serves it as a connection's first request.
    pub(crate) first_request: FirstRequest,
}

/// Who serves a route's request when it is its connection's first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FirstRequest {
    /// The raw path, on the socket, without hyper (`raw/`): for the long-lived sessions, where
    /// what hyper keeps per connection would stay for the session's life.
    Raw,
    /// hyper, as every later request on the connection.
    Hyper,
}

impl Route {
    const fn new(
        path: &'static str,
        method: Method,
        endpoint: Endpoint,
        first_request: FirstRequest,
    ) -> Self {
        Self {
            path,
            method,
            endpoint,
            first_request,
        }
    }
}

/// Every path under `/stomp/` and `/sockjs/` is SockJS's (`endpoints/sockjs/` reads the rest,
/// methods included: SockJS's transports use `GET`, `POST` and `OPTIONS`).
static SOCKJS: Route = Route::new(
    "/stomp/",
    Method::GET,
    Endpoint::SockJs,
    FirstRequest::Hyper,
);

/// The route of `path`, if roomcast serves it.
pub(crate) fn route(path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|route| route.path == path)
        .or_else(|| sockjs::base(path).map(|_| &SOCKJS))
}

/// The roomcast endpoints as one hyper service (cheap to clone):
///
/// | Path | What |
/// |---|---|
/// | `GET /ws` | the roomcast protocol over WebSocket (`?cursor=` resumes) |
/// | `GET /ws/echo` | a plain WebSocket echo |
/// | `GET /events` | an SSE stream: the user's notifications, the broadcast feed, `?rooms=a,b` |
/// | `GET /poll` | long-poll: the stored messages after `?cursor=`, as JSON |
/// | `GET /stomp` | STOMP 1.0 – 1.2 over WebSocket (`v12.stomp`, `v11.stomp`, `v10.stomp`) |
/// | `/stomp/info`, `/stomp/<server>/<session>/<transport>` | SockJS, carrying STOMP |
/// | `/sockjs/info`, `/sockjs/<server>/<session>/<transport>` | SockJS, carrying roomcast.v1 |
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

impl<R: Runtime> Roomcast<R> {
    /// The service on `runtime` (which runs the sessions) for the hub behind `hub`.
    pub fn new(runtime: R, hub: HubHandle, options: Options) -> Self {
        Self {
            inner: Arc::new(Inner::new(runtime, hub, options)),
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

    /// The runtime the sessions run on.
    pub fn runtime(&self) -> &R {
        &self.inner.runtime
    }

    /// The accept loop of a runtime adapter: takes connections from `accept` and hands each to
    /// `serve` (which spawns its task) until the shutdown is triggered and every session has
    /// closed: while the sessions drain, a new connection is still answered (a session 503,
    /// `/healthz` 503 for a load balancer), so clients and balancers see the drain rather than
    /// refused connections. An accept error (out of descriptors, a connection reset before
    /// accept) pauses the loop for 50 ms, not the server.
    pub async fn accept_loop<C, A, F>(&self, mut accept: A, mut serve: impl FnMut(C, SocketAddr))
    where
        A: FnMut() -> F,
        F: Future<Output = std::io::Result<(C, SocketAddr)>>,
    {
        let shutdown = self.shutdown();
        loop {
            let accepted = futures_lite::future::or(async { Some(accept().await) }, async {
                shutdown.triggered().await;
                shutdown.drained().await;
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

    /// Counts a connection against `peer`'s per-IP limit while its TLS handshake runs, so
    /// handshakes that never finish cannot hold more sockets than the limit allows; `None` at
    /// the limit (the caller closes the connection without a handshake: a refusal needs HTTP,
    /// which needs the handshake). Drop the hold once the handshake is over: the connection's
    /// serving ([`serve_connection`](crate::serve_connection),
    /// [`serve_h2_connection`](crate::serve_h2_connection)) counts it from then on. A trusted
    /// proxy's connections are not counted (their clients are, by the sessions they carry).
    pub fn hold_handshake(&self, peer: SocketAddr) -> Option<HandshakeHold> {
        if is_trusted(peer.ip(), &self.inner.options.trusted_proxies) {
            return Some(HandshakeHold { _slot: None });
        }
        self.inner
            .acquire(peer.ip())
            .ok()
            .map(|slot| HandshakeHold { _slot: Some(slot) })
    }

    /// New sessions refused so far by [`Options::new_sessions`] (429, `rate_limited`).
    pub fn admission_refusals(&self) -> u64 {
        self.inner.admission.refused()
    }

    /// SockJS sessions of the HTTP transports held now (each also a session of the hub, until
    /// it ends; then kept until it expires, for its client to learn how it ended).
    pub fn sockjs_sessions(&self) -> usize {
        self.inner.sockjs.len()
    }

    /// The service for one connection from `peer`, to hand to hyper.
    pub fn service(&self, peer: SocketAddr) -> PeerService<R> {
        PeerService {
            roomcast: self.clone(),
            peer: peer.ip(),
        }
    }

    /// Answers one request from `peer`. The body type is any hyper can read (hyper's
    /// `Incoming`, or a framework's own, such as axum's): only SockJS's `xhr_send` has a body,
    /// read here within bounds; others are dropped unread. A WebSocket upgrade needs only
    /// hyper's upgrade extension, which frameworks keep. (Held across the endpoints' awaits, a
    /// body that is not `Sync` would make this future not `Send`.)
    pub async fn handle<B>(&self, peer: IpAddr, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let inner = &self.inner;
        let Some(route) = route(request.uri().path()) else {
            return Refusal::new(404, "no such endpoint").response();
        };
        let request = match sockjs::reads_body(request.method(), request.uri().path()) {
            true => match self.read_body(request).await {
                Ok(request) => request,
                Err(refusal) => return refusal.response(),
            },
            false => request.map(drop),
        };
        // A WebSocket over HTTP/2 comes as an extended CONNECT (RFC 8441), not a GET.
        let websocket = matches!(
            route.endpoint,
            Endpoint::WebSocket | Endpoint::Echo | Endpoint::Stomp | Endpoint::SockJs
        );
        let own_methods = route.endpoint == Endpoint::SockJs;
        if *request.method() != route.method
            && !own_methods
            && !(websocket && is_extended_connect(&request))
        {
            let only = format!("only {} is served here", route.method);
            let mut response = Refusal::new(405, only).response();
            let allow = HeaderValue::from_static(route.method.as_str());
            response.headers_mut().insert(header::ALLOW, allow);
            return response;
        }
        if let Some(refusal) = inner.unavailable() {
            return refusal.response();
        }
        let result = route.endpoint.serve(inner, peer, request).await;
        result.unwrap_or_else(|refusal| refusal.response())
    }

    /// The request with its body read (at most four times the session's frame limit, which
    /// SockJS's JSON escaping may need, within the handshake timeout) into its extensions.
    async fn read_body<B>(&self, request: Request<B>) -> Result<Request<()>, Refusal>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let config = &self.inner.options.session.config;
        let limit = config.max_frame.saturating_mul(4);
        let (parts, body) = request.into_parts();
        let read = async {
            match Limited::new(body, limit).collect().await {
                Ok(collected) => Ok(collected.to_bytes()),
                Err(error) if error.is::<LengthLimitError>() => {
                    Err(Refusal::new(413, format!("the body is over {limit} bytes")))
                }
                Err(_) => Err(Refusal::new(400, "the body could not be read")),
            }
        };
        let runtime = &self.inner.runtime;
        let deadline = runtime.now() + config.handshake_timeout;
        let late = async {
            runtime.sleep_until(deadline).await;
            Err(Refusal::new(408, "the body did not arrive in time"))
        };
        let body = futures_lite::future::or(read, late).await?;
        let mut request = Request::from_parts(parts, ());
        request.extensions_mut().insert(SendBody(body));
        Ok(request)
    }

    /// The shared state, for the raw path's first requests (`conn.rs`).
    pub(crate) fn inner(&self) -> &Inner<R> {
        &self.inner
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
