//! `GET /stomp`: STOMP 1.0, 1.1 and 1.2 over WebSocket (docs/stomp.md). The handshake and the
//! admission are `/ws`'s; the session runs with a STOMP bridge between it and the socket
//! (`roomcast_io::StompTransport`), so a STOMP client obeys every rule a roomcast.v1 client does.
//!
//! A handshake that carries no credential the server accepts is upgraded all the same (after
//! the origin and per-IP checks), and the credential is taken from the `CONNECT` frame's
//! `passcode` or `Authorization: Bearer` header, as STOMP clients send it; a `CONNECT` without
//! one that passes is answered `ERROR`.

use std::future::{Future, poll_fn};
use std::net::IpAddr;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use http::{HeaderMap, HeaderValue, Request, Response, Uri, header};
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::session::Transmit;
use roomcast_core::stomp::bridge::{Bridge, BridgeConfig, BridgeState};
use roomcast_io::{
    Inbound, Registered, Runtime, SessionOptions, SockJsWs, StompTransport, TextTransport,
    Transport, WsTransport, run_registered, websocket_config,
};

use super::websocket::{Opened, open_as, register};
use crate::admission::TokenTaken;
use crate::body::Body;
use crate::context::{ConnSlot, Inner};
use crate::io::HyperIo;
use crate::per_ip::Slot;
use crate::refusal::Refusal;
use crate::upgrade::{check_opening, offers, switching};

/// The STOMP subprotocols, in the order they are preferred when a client offers several.
pub const STOMP_SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// `GET /stomp` under hyper: a STOMP session on the upgraded connection, in a task of its own.
/// As a connection's first request it is served on the socket instead (`raw/stomp.rs`).
pub(crate) async fn serve<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    serve_framed(inner, peer, request, false).await
}

/// [`serve`], the frames in SockJS's framing when `sockjs` (its WebSocket transport).
pub(crate) async fn serve_framed<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    mut request: Request<B>,
    sockjs: bool,
) -> Result<Response<Body>, Refusal> {
    let Admitted { switching, session } = admit(inner, peer, &request).await?;
    let upgrade = hyper::upgrade::on(&mut request);
    let runtime = inner.runtime.clone();
    inner.runtime.spawn(async move {
        // Dropping `session` unrun (the upgrade failed) removes it from the hub.
        let Ok(upgraded) = upgrade.await else { return };
        session.spawn(&runtime, HyperIo(upgraded), sockjs);
    });
    Ok(switching)
}

/// A STOMP handshake admitted: its `101` (or `200` over HTTP/2), and the session to run on the
/// socket once it is answered.
pub(crate) struct Admitted<R> {
    pub(crate) switching: Response<Body>,
    pub(crate) session: Session<R>,
}

/// A STOMP session to run on an upgraded socket: one per connection, moved once into its
/// task, so the size of its larger variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Session<R> {
    /// Its handshake carried its credential: registered with the hub.
    Registered {
        registered: Registered,
        options: SessionOptions,
        config: WebSocketConfig,
        slot: Slot,
    },
    /// Its credential comes in `CONNECT`.
    Deferred {
        deferred: Deferred<R>,
        config: WebSocketConfig,
    },
}

/// The checks of a STOMP handshake (`/ws`'s), and its registration. A handshake that carries
/// no credential the server accepts is admitted all the same after the origin and per-IP
/// checks: its credential is taken from `CONNECT`.
pub(crate) async fn admit<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: &Request<B>,
) -> Result<Admitted<R>, Refusal> {
    let subprotocol = STOMP_SUBPROTOCOLS
        .into_iter()
        .find(|name| offers(request.headers(), name));
    match open_as(inner, peer, request, "stomp", subprotocol, false).await {
        Ok(Opened {
            registered,
            slot,
            switching,
            options,
            config,
        }) => Ok(Admitted {
            switching,
            session: Session::Registered {
                registered,
                options,
                config,
                slot,
            },
        }),
        // No credential in the handshake: perhaps in `CONNECT`.
        Err(refusal) if refusal.status == 401 => {
            let opening = check_opening(request)?;
            let slot = inner.admit_anonymous(peer, request)?;
            let deferred = Deferred {
                inner: inner.clone(),
                peer,
                uri: request.uri().clone(),
                headers: request.headers().clone(),
                slot,
            };
            let config = websocket_config(&inner.options.session.config);
            Ok(Admitted {
                switching: switching(&opening, subprotocol),
                session: Session::Deferred { deferred, config },
            })
        }
        Err(refusal) => Err(refusal),
    }
}

impl<R: Runtime> Session<R> {
    /// Spawns the session on `io`, the upgraded socket, in SockJS's framing when `sockjs`: a
    /// task of its own per kind, so that each holds only its own future (an idle connection
    /// costs its task's size).
    pub(crate) fn spawn<S>(self, runtime: &R, io: S, sockjs: bool)
    where
        S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send + 'static,
    {
        match self {
            Self::Registered {
                registered,
                options,
                config,
                slot,
            } => {
                let ws = WsTransport::server(io, config);
                let bridge = bridge(&options);
                let run = Run {
                    runtime: runtime.clone(),
                    registered,
                    options,
                    slot,
                };
                match sockjs {
                    true => {
                        let Ok(carrier) = SockJsWs::new(ws) else {
                            return;
                        };
                        runtime.spawn(run.over(StompTransport::new(carrier, bridge)));
                    }
                    false => runtime.spawn(run.over(StompTransport::new(ws, bridge))),
                }
            }
            Self::Deferred { deferred, config } => {
                let ws = WsTransport::server(io, config);
                let bridge = bridge(&deferred.inner.options.session);
                match sockjs {
                    true => {
                        let Ok(carrier) = SockJsWs::new(ws) else {
                            return;
                        };
                        runtime.spawn(deferred.run(StompTransport::new(carrier, bridge)));
                    }
                    false => runtime.spawn(deferred.run(StompTransport::new(ws, bridge))),
                }
            }
        }
    }
}

/// A registered session, to run on its transport.
struct Run<R> {
    runtime: R,
    registered: Registered,
    options: SessionOptions,
    /// Its count against the client's address, held while it runs.
    slot: Slot,
}

impl<R: Runtime> Run<R> {
    /// The task: the session's driver and the slot it holds, nothing more ([`Slot::hold`]).
    fn over<T: Transport + 'static>(
        self,
        transport: T,
    ) -> impl Future<Output = ()> + Send + 'static {
        let Self {
            runtime,
            registered,
            options,
            slot,
        } = self;
        slot.hold(run_registered(&runtime, transport, registered, options))
    }
}

/// The bridge of a STOMP session with `options`.
pub(crate) fn bridge(options: &SessionOptions) -> Bridge {
    Bridge::new(BridgeConfig {
        heart_beat_ms: u64::try_from(options.config.ping_interval.as_millis()).unwrap_or(u64::MAX),
        max_request: options.config.max_frame,
        ..BridgeConfig::default()
    })
}

/// A STOMP session whose credential comes in its `CONNECT`: what admits it then.
pub(crate) struct Deferred<R> {
    pub(crate) inner: Inner<R>,
    pub(crate) peer: IpAddr,
    /// The request that opened it, whose checks `CONNECT`'s credential completes.
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    /// Its count against the client's address (taken by `admit_anonymous`).
    pub(crate) slot: Slot,
}

impl<R: Runtime> Deferred<R> {
    /// Reads until `CONNECT` (within the handshake timeout), admits its credential as a
    /// handshake's, and runs the session; refuses with `ERROR` when it does not pass.
    pub(crate) async fn run<C: TextTransport>(self, mut transport: StompTransport<C>) {
        let Self {
            inner,
            peer,
            uri,
            headers,
            slot,
        } = self;
        let runtime = inner.runtime.clone();
        let timeout = inner.options.session.config.handshake_timeout;
        let read = read_connect(&mut transport);
        let deadline = runtime.now() + timeout;
        let late = async {
            runtime.sleep_until(deadline).await;
            false
        };
        if !futures_lite::future::or(read, late).await {
            return; // the client went, broke the protocol (its ERROR is sent), or was slow
        }
        // The credential of `CONNECT`, checked as a handshake's would be.
        let mut connect = Request::new(());
        *connect.uri_mut() = uri;
        *connect.headers_mut() = headers;
        connect.extensions_mut().insert(ConnSlot(slot.clone()));
        // Its token was taken when it was admitted anonymously.
        connect.extensions_mut().insert(TokenTaken);
        if let Some(token) = transport.bridge().credentials()
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            connect.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let admitted = match inner.admit_session(peer, &connect, "stomp").await {
            Ok(admitted) => admitted,
            Err(refusal) => return refuse(transport, &refusal).await,
        };
        let (registered, options, _) =
            match register(&inner, admitted.identity, None, "stomp").await {
                Ok(registered) => registered,
                Err(refusal) => return refuse(transport, &refusal).await,
            };
        let _slot = slot;
        run_registered(&runtime, transport, registered, options).await;
    }
}

/// Reads until the bridge has the client's `CONNECT`: `true`, or `false` when the connection
/// ended or the bridge failed it (its `ERROR` then written).
async fn read_connect<C: TextTransport>(transport: &mut StompTransport<C>) -> bool {
    loop {
        // What the transport queued of its own (SockJS's open frame) goes out first.
        if transport.wants_flush() && poll_fn(|cx| transport.poll_flush(cx)).await.is_err() {
            return false;
        }
        if transport.bridge().state() == BridgeState::Connecting {
            return true;
        }
        match poll_fn(|cx| transport.poll_recv(cx)).await {
            Some(Inbound::Pong) => {}
            Some(Inbound::Failed(close)) => {
                // The bridge's ERROR is queued: it goes, then the close.
                let _ = transport.start_send(Transmit::Close(close));
                let _ = poll_fn(|cx| transport.poll_flush(cx)).await;
                return false;
            }
            _ => return false,
        }
    }
}

/// `ERROR` for a `CONNECT` whose credential did not pass, then the close.
async fn refuse<C: TextTransport>(mut transport: StompTransport<C>, refusal: &Refusal) {
    transport.refuse(refusal.code(), &refusal.message);
    let close = Close::new(CloseCode::Normal, "STOMP connection refused");
    let _ = transport.start_send(Transmit::Close(close));
    let _ = poll_fn(|cx| transport.poll_flush(cx)).await;
}
