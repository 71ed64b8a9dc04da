//! `GET /stomp`: STOMP 1.0, 1.1 and 1.2 over WebSocket (docs/stomp.md). The handshake and the
//! admission are `/ws`'s; the session runs with a STOMP bridge between it and the socket
//! (`roomcast_io::StompTransport`), so a STOMP client obeys every rule a roomcast.v1 client does.
//!
//! A handshake that carries no credential the server accepts is upgraded all the same (after
//! the origin and per-IP checks), and the credential is taken from the `CONNECT` frame's
//! `passcode` or `Authorization: Bearer` header, as STOMP clients send it; a `CONNECT` without
//! one that passes is answered `ERROR`.

use std::future::poll_fn;
use std::net::IpAddr;

use http::{HeaderMap, HeaderValue, Request, Response, Uri, header};
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::session::Transmit;
use roomcast_core::stomp::bridge::{Bridge, BridgeConfig, BridgeState};
use roomcast_io::{
    Inbound, Registered, Runtime, SessionOptions, SockJsWs, StompTransport, TextTransport,
    Transport, WsTransport, run_registered, websocket_config,
};

use super::websocket::{Opened, open_as, register};
use crate::body::Body;
use crate::context::{ConnSlot, Inner};
use crate::io::HyperIo;
use crate::per_ip::Slot;
use crate::refusal::Refusal;
use crate::upgrade::{check_opening, offers, switching};

/// The STOMP subprotocols, in the order they are preferred when a client offers several.
pub const STOMP_SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// `GET /stomp` under hyper: a STOMP session on the upgraded connection, in a task of its own.
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
    let subprotocol = STOMP_SUBPROTOCOLS
        .into_iter()
        .find(|name| offers(request.headers(), name));
    let opened = match open_as(inner, peer, &request, "stomp", subprotocol, false).await {
        Ok(opened) => opened,
        // No credential in the handshake: perhaps in `CONNECT`.
        Err(refusal) if refusal.status == 401 => {
            return deferred(inner, peer, request, subprotocol, sockjs);
        }
        Err(refusal) => return Err(refusal),
    };
    let Opened {
        registered,
        slot,
        switching,
        options,
        config,
    } = opened;
    let bridge = bridge(&options);
    let upgrade = hyper::upgrade::on(&mut request);
    let runtime = inner.runtime.clone();
    inner.runtime.spawn(async move {
        let _slot = slot;
        // Dropping `registered` unrun (the upgrade failed) removes it from the hub.
        let Ok(upgraded) = upgrade.await else { return };
        let ws = WsTransport::server(HyperIo(upgraded), config);
        run_over(&runtime, ws, bridge, sockjs, registered, options).await;
    });
    Ok(switching)
}

/// Runs a STOMP session over `ws` (in SockJS's framing when `sockjs`) once it is registered.
async fn run_over<R: Runtime, S>(
    runtime: &R,
    ws: WsTransport<S>,
    bridge: Bridge,
    sockjs: bool,
    registered: Registered,
    options: SessionOptions,
) where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send,
{
    match sockjs {
        true => {
            let Ok(carrier) = SockJsWs::new(ws) else {
                return;
            };
            let transport = StompTransport::new(carrier, bridge);
            run_registered(runtime, transport, registered, options).await;
        }
        false => {
            let transport = StompTransport::new(ws, bridge);
            run_registered(runtime, transport, registered, options).await;
        }
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

/// The upgrade without a credential: origin and per-IP checks now, authentication once
/// `CONNECT` comes (within the handshake timeout), then the session as any other.
fn deferred<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    mut request: Request<B>,
    subprotocol: Option<&'static str>,
    sockjs: bool,
) -> Result<Response<Body>, Refusal> {
    let opening = check_opening(&request)?;
    let slot = inner.admit_anonymous(peer, &request)?;
    let (uri, headers) = (request.uri().clone(), request.headers().clone());
    let upgrade = hyper::upgrade::on(&mut request);
    let config = websocket_config(&inner.options.session.config);
    let task = inner.clone();
    inner.runtime.spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let ws = WsTransport::server(HyperIo(upgraded), config);
        let bridge = bridge(&task.options.session);
        let deferred = Deferred {
            inner: task,
            peer,
            uri,
            headers,
            slot,
        };
        match sockjs {
            true => {
                let Ok(carrier) = SockJsWs::new(ws) else {
                    return;
                };
                deferred.run(StompTransport::new(carrier, bridge)).await;
            }
            false => deferred.run(StompTransport::new(ws, bridge)).await,
        }
    });
    Ok(switching(&opening, subprotocol))
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
