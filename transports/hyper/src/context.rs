//! What every endpoint shares: the runtime, the hub, the options and the per-IP count; the
//! checks that admit a request to a session (shutdown, origin, authentication, per-IP limit);
//! the parameters of a session (cursor, rooms, broadcast), and its registration with the hub.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, header};
use roomcast_core::access::{Access, Identity};
use roomcast_core::cursor::Cursor;
use roomcast_core::hub::Connect;
use roomcast_core::names::RoomName;
use roomcast_core::sockjs::http::HttpConfig;
use roomcast_io::{ConnectError, HubHandle, Registered, Runtime, SessionOptions};

use crate::admission::{Admission, NewSessions, TokenTaken};
use crate::auth::{
    Authenticate, ConnectHook, ConnectInfo, Handshake, query_param, user_from_query,
};
use crate::per_ip::{PerIp, Slot};
use crate::proxies::{Cidr, client_ip};
use crate::refusal::Refusal;
use crate::response::Cors;
use crate::sockjs_table::Sessions;

/// How the service runs.
#[derive(Clone)]
pub struct Options {
    /// The sessions' limits and timings, and the shutdown switch they share. `kind` is set per
    /// endpoint; `config.handshake_timeout` also bounds reading a request's headers.
    pub session: SessionOptions,
    /// Who a request is; it runs before any upgrade or stream. The default is the development
    /// mode: `?user=NAME` names the user ([`user_from_query`]).
    pub authenticate: Authenticate,
    /// The `Origin`s browsers may connect from; empty (the default) allows any, `"*"` too,
    /// but never `null` (sandboxed frames, `file:` pages) unless listed. Only a listed origin
    /// may read answers with the browser's credentials (cookies). A request without `Origin`
    /// (not from a browser) is always allowed.
    pub allowed_origins: Vec<String>,
    /// Whether `/ws/echo` is open to anyone (the default); `false`: it runs `authenticate`
    /// like every other endpoint.
    pub echo_open: bool,
    /// The application's say on each session that authenticated (WebSocket, SSE, long-poll);
    /// `None` (the default): none.
    pub on_connect: Option<ConnectHook>,
    /// Connections one IP address may hold at once, each TCP connection counted with the
    /// session it carries (WebSocket, SSE, long-poll), and sessions under a connection loop of
    /// the application's own: 1,024. More are refused with 429.
    pub max_sessions_per_ip: usize,
    /// Streams one HTTP/2 connection may carry at once: 100 (each session among them counts
    /// against the per-IP limit on its own).
    pub max_streams_per_connection: u32,
    /// Whether a plain connection that opens with the HTTP/2 preface is served as HTTP/2
    /// (h2c by prior knowledge, for a proxy that speaks HTTP/2 to its upstream): off by
    /// default, where such a connection is an HTTP/1.1 error.
    pub h2c: bool,
    /// Proxies whose `X-Forwarded-For` names the client: their connections are not counted,
    /// the sessions they carry are, each against its client's address. Empty by default: the
    /// header is never believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The reconnection delay an SSE stream asks browsers for: 3 s.
    pub sse_retry: Duration,
    /// Longest a long-poll waits for a message: 25 s (`?timeout=` may ask for less).
    pub poll_wait: Duration,
    /// Most messages in one long-poll answer: 1,000 (and at most `session.config.queue_bytes`
    /// of them); the rest come with the next poll.
    pub poll_max_events: usize,
    /// The limits of a SockJS session over HTTP: expiry 5 s after its last receiving request,
    /// streaming responses ended after 128 KiB, 256 KiB of messages waiting each way.
    pub sockjs: HttpConfig,
    /// New sessions the node opens per second (every WebSocket, SSE stream, long-poll, STOMP
    /// and SockJS session): 5,000, bursts of 5,000. Past it: 429, `rate_limited`, with a
    /// `Retry-After` that spreads the refused over the seconds ahead.
    pub new_sessions: NewSessions,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            session: SessionOptions::default(),
            authenticate: Arc::new(user_from_query),
            allowed_origins: Vec::new(),
            echo_open: true,
            on_connect: None,
            max_sessions_per_ip: 1024,
            trusted_proxies: Vec::new(),
            max_streams_per_connection: 100,
            h2c: false,
            sse_retry: Duration::from_secs(3),
            poll_wait: Duration::from_secs(25),
            poll_max_events: 1000,
            sockjs: HttpConfig::default(),
            new_sessions: NewSessions::default(),
        }
    }
}

/// The state every endpoint shares, behind the service's `Arc`. A clone shares the hub and the
/// per-IP counts; it is for a task that outlives its request (STOMP's deferred admission).
#[derive(Clone)]
pub(crate) struct Inner<R> {
    /// Runs the sessions.
    pub(crate) runtime: R,
    pub(crate) hub: HubHandle,
    pub(crate) options: Options,
    per_ip: PerIp,
    /// The new sessions' token bucket.
    pub(crate) admission: Arc<Admission>,
    /// The SockJS sessions of the HTTP transports, by id.
    pub(crate) sockjs: Sessions,
}

/// The per-IP count of the connection a request came on, in its extensions.
#[derive(Clone)]
pub(crate) struct ConnSlot(pub(crate) Slot);

/// A request admitted to a session endpoint: who it is, and its per-IP slot.
pub(crate) struct Admitted {
    pub(crate) identity: Identity,
    pub(crate) slot: Slot,
    /// The `Origin`, when allowed and present: echoed for CORS.
    pub(crate) origin: Option<Cors>,
    /// The client's address (behind a trusted proxy, the one it names).
    pub(crate) client: IpAddr,
}

impl<R: Runtime> Inner<R> {
    /// The state of a service on `runtime` for the hub behind `hub`.
    pub(crate) fn new(runtime: R, hub: HubHandle, options: Options) -> Self {
        let per_ip = PerIp::new(options.max_sessions_per_ip);
        let admission = Arc::new(Admission::new(options.new_sessions));
        Self {
            runtime,
            hub,
            options,
            per_ip,
            admission,
            sockjs: Sessions::default(),
        }
    }

    /// 503 while the server shuts down: no new session.
    pub(crate) fn unavailable(&self) -> Option<Refusal> {
        self.options
            .session
            .shutdown
            .reconnect_ms()
            .map(|ms| Refusal::new(503, "the server is shutting down").retry_after(ms))
    }

    /// The checks of a session endpoint, in order: origin (403), authentication (401), the
    /// per-IP limit (429): the connection's count when it has one (`conn.rs`), else one of its
    /// own for the client (behind a trusted proxy, or a connection loop of the application's).
    pub(crate) fn admit<B>(&self, peer: IpAddr, request: &Request<B>) -> Result<Admitted, Refusal> {
        let origin = self.check_origin(request)?;
        // Before authentication: a storm refused costs no signature checks. A session whose
        // token was taken by `admit_anonymous` takes none again.
        let token = request.extensions().get::<TokenTaken>().is_none();
        if token {
            self.admission.admit(self.runtime.now())?;
        }
        let peer = client_ip(peer, request.headers(), &self.options.trusted_proxies);
        let handshake = Handshake {
            uri: request.uri(),
            headers: request.headers(),
            peer,
        };
        let checked = (self.options.authenticate)(&handshake).and_then(|identity| {
            let slot = match request.extensions().get::<ConnSlot>() {
                Some(ConnSlot(slot)) => slot.clone(),
                None => self.acquire(peer)?,
            };
            Ok((identity, slot))
        });
        let (identity, slot) = match checked {
            Ok(admitted) => admitted,
            // No session opens: its token goes back (a STOMP session without a credential in
            // its handshake takes one in `admit_anonymous` instead).
            Err(refusal) => {
                if token {
                    self.admission.refund();
                }
                return Err(refusal);
            }
        };
        Ok(Admitted {
            identity,
            slot,
            origin,
            client: peer,
        })
    }

    /// The checks of [`admit`](Self::admit) but authentication: origin (403), the new sessions'
    /// token (429) and the per-IP limit (429), for a protocol whose credential comes in band
    /// after the upgrade (STOMP's `CONNECT`). The slot goes into the request that carries the
    /// credential later (as [`ConnSlot`]), with [`TokenTaken`], so [`admit`](Self::admit)
    /// counts the connection and the session once.
    pub(crate) fn admit_anonymous<B>(
        &self,
        peer: IpAddr,
        request: &Request<B>,
    ) -> Result<Slot, Refusal> {
        self.check_origin(request)?;
        self.admission.admit(self.runtime.now())?;
        let client = client_ip(peer, request.headers(), &self.options.trusted_proxies);
        let slot = match request.extensions().get::<ConnSlot>() {
            Some(ConnSlot(slot)) => Ok(slot.clone()),
            None => self.acquire(client),
        };
        if slot.is_err() {
            self.admission.refund();
        }
        slot
    }

    /// [`admit`](Self::admit), then the application's connect hook, if there is one.
    pub(crate) async fn admit_session<B>(
        &self,
        peer: IpAddr,
        request: &Request<B>,
        transport: &'static str,
    ) -> Result<Admitted, Refusal> {
        let mut admitted = self.admit(peer, request)?;
        if let Some(hook) = &self.options.on_connect {
            let info = ConnectInfo {
                transport,
                peer: admitted.client,
            };
            admitted.identity = hook(admitted.identity.clone(), info).await?;
        }
        Ok(admitted)
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
    pub(crate) fn check_origin<B>(&self, request: &Request<B>) -> Result<Option<Cors>, Refusal> {
        let Some(origin) = request.headers().get(header::ORIGIN) else {
            return Ok(None);
        };
        let allowed = &self.options.allowed_origins;
        let text = origin.to_str().unwrap_or("");
        let listed = allowed.iter().any(|a| a == text);
        let any = allowed.is_empty() || allowed.iter().any(|a| a == "*");
        if listed || (any && text != "null") {
            Ok(Some(Cors {
                origin: origin.clone(),
                credentials: listed,
            }))
        } else {
            Err(Refusal::new(403, format!("origin {text:?} is not allowed")))
        }
    }

    /// Registers an SSE or long-poll connection: it follows the user's stream, the broadcast
    /// feed unless `?broadcast=0`, and the rooms of `?rooms=` (as the namespaces allow, some
    /// perhaps by the subscription tokens of `?room_tokens=`), from `cursor`.
    pub(crate) async fn register_stream<B>(
        &self,
        admitted: &Admitted,
        request: &Request<B>,
        cursor: Option<Cursor>,
    ) -> Result<Registered, Refusal> {
        let rooms = rooms_param(request)?;
        let access = Access {
            grants: admitted.identity.grants.clone(),
            admitted: self.room_tokens(&admitted.identity, &rooms, request)?,
        };
        let connect = Connect {
            user: admitted.identity.user.clone(),
            broadcast: broadcast_param(request),
            rooms,
            cursor,
            access,
        };
        let registered = self.hub.register(connect).await.map_err(hub_refusal)?;
        Ok(registered.expires(admitted.identity.expires))
    }

    /// The rooms of `rooms` that a subscription token of `?room_tokens=` (comma-separated)
    /// admits; a token that admits none of them is refused (403).
    fn room_tokens<B>(
        &self,
        identity: &Identity,
        rooms: &[RoomName],
        request: &Request<B>,
    ) -> Result<Vec<RoomName>, Refusal> {
        let Some(list) = query_param(request.uri(), "room_tokens") else {
            return Ok(Vec::new());
        };
        let Some(credentials) = &self.options.session.credentials else {
            return Err(Refusal::new(
                403,
                "this server takes no subscription tokens",
            ));
        };
        let tokens: Vec<&str> = list.split(',').filter(|t| !t.is_empty()).collect();
        if tokens.len() > rooms.len() {
            return Err(Refusal::new(400, "more room_tokens than rooms"));
        }
        let mut admitted = Vec::new();
        for token in tokens {
            let room = rooms
                .iter()
                .find(|room| {
                    credentials
                        .0
                        .subscription(&identity.user, room, token)
                        .is_ok()
                })
                .ok_or_else(|| {
                    Refusal::new(403, "a room token admits to none of the rooms asked for")
                })?;
            admitted.push(room.clone());
        }
        Ok(admitted)
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

/// What the hub refusing a connection means for HTTP: a room the namespaces keep it out of is a
/// 403, another refusal of the hub's a 400, a stopped hub a 503.
pub(crate) fn hub_refusal(error: ConnectError) -> Refusal {
    match error {
        ConnectError::Refused(roomcast_core::hub::HubError::Unauthorized(why)) => {
            Refusal::new(403, why).with_code("unauthorized")
        }
        ConnectError::Refused(error) => Refusal::new(400, error.to_string()),
        ConnectError::Gone => Refusal::new(503, "the hub has stopped"),
    }
}
