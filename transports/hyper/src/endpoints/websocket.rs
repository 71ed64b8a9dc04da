//! `GET /ws`: the roomcast protocol over WebSocket by HTTP upgrade. The handshake is checked
//! (`upgrade.rs`) and answered with an HTTP error when it is wrong; then a session runs on the
//! upgraded connection in a task of its own. A session whose handshake is its connection's first
//! request is served on the connection directly (`raw/websocket.rs`), others through hyper's
//! upgrade ([`serve`]); both run the same checks ([`open`]) and send the same answer.

use std::net::IpAddr;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use http::{Request, Response};
use roomcast_core::access::Access;
use roomcast_core::hub::Connect;
use roomcast_core::session::SessionKind;
use roomcast_io::{
    Registered, Runtime, SessionOptions, Transport, WsTransport, run_registered, websocket_config,
};

use crate::auth::query_param;
use crate::body::Body;
use crate::context::{Inner, hub_refusal, parse_cursor};
use crate::io::HyperIo;
use crate::per_ip::Slot;
use crate::refusal::Refusal;
use crate::upgrade::{check_opening, offers, switching};

/// The subprotocol of roomcast protocol v1, selected when a client offers it.
pub const SUBPROTOCOL: &str = "roomcast.v1";

/// A session admitted and registered, and the handshake's answer: what either way of serving
/// it needs.
pub(crate) struct Opened {
    pub(crate) registered: Registered,
    pub(crate) slot: Slot,
    /// The `101` answer.
    pub(crate) switching: Response<Body>,
    pub(crate) options: SessionOptions,
    pub(crate) config: WebSocketConfig,
}

/// The handshake check, the admission checks (origin, authentication, per-IP limit), the
/// cursor from `?cursor=`, and the registration with the hub.
pub(crate) async fn open<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: &Request<B>,
) -> Result<Opened, Refusal> {
    let offers_v1 = offers(request.headers(), SUBPROTOCOL);
    let subprotocol = offers_v1.then_some(SUBPROTOCOL);
    open_as(inner, peer, request, "websocket", subprotocol, true).await
}

/// [`open`] for a protocol carried over WebSocket: its `transport` name (in metrics and
/// hooks), the subprotocol to answer, and whether `?cursor=` resumes it.
pub(crate) async fn open_as<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: &Request<B>,
    transport: &'static str,
    subprotocol: Option<&'static str>,
    resumes: bool,
) -> Result<Opened, Refusal> {
    let opening = check_opening(request)?;
    let admitted = inner.admit_session(peer, request, transport).await?;
    let cursor = match resumes {
        true => parse_cursor(query_param(request.uri(), "cursor"), "cursor")?,
        false => None,
    };
    let (registered, options, config) =
        register(inner, admitted.identity, cursor, transport).await?;
    Ok(Opened {
        registered,
        slot: admitted.slot,
        switching: switching(&opening, subprotocol),
        options,
        config,
    })
}

/// Registers an admitted WebSocket session of `identity` with the hub: its registration, and
/// the session's options and tungstenite's settings.
pub(crate) async fn register<R: Runtime>(
    inner: &Inner<R>,
    identity: roomcast_core::access::Identity,
    cursor: Option<roomcast_core::cursor::Cursor>,
    transport: &'static str,
) -> Result<(Registered, SessionOptions, WebSocketConfig), Refusal> {
    let connect = Connect {
        user: identity.user,
        broadcast: true,
        rooms: Vec::new(),
        cursor,
        access: Access {
            grants: identity.grants,
            admitted: Vec::new(),
        },
    };
    let registered = inner.hub.register(connect).await.map_err(hub_refusal)?;
    let registered = registered.expires(identity.expires);
    let mut options = inner.options.session.clone();
    options.kind = SessionKind::WebSocket;
    options.transport = transport;
    let config = websocket_config(&options.config);
    Ok((registered, options, config))
}

/// `GET /ws` under hyper: the roomcast protocol on the upgraded connection, in a task of its
/// own.
pub(crate) async fn serve<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    let opened = open(inner, peer, &request).await?;
    Ok(upgrade_and_run(inner, request, opened, Ok))
}

/// The session of `opened` on `request`'s upgraded connection, over the transport `wrap` makes
/// of its WebSocket (the WebSocket itself, or SockJS's framing around it), in a task of its
/// own; the handshake's answer.
pub(crate) fn upgrade_and_run<R, B, T, W>(
    inner: &Inner<R>,
    mut request: Request<B>,
    opened: Opened,
    wrap: W,
) -> Response<Body>
where
    R: Runtime,
    B: Send + 'static,
    T: Transport + 'static,
    W: FnOnce(WsTransport<HyperIo<hyper::upgrade::Upgraded>>) -> std::io::Result<T>
        + Send
        + 'static,
{
    let Opened {
        registered,
        slot,
        switching,
        options,
        config,
    } = opened;
    let upgrade = hyper::upgrade::on(&mut request);
    let runtime = inner.runtime.clone();
    inner.runtime.spawn(async move {
        let _slot = slot;
        // Dropping `registered` unrun (the upgrade failed) removes it from the hub.
        let Ok(upgraded) = upgrade.await else { return };
        let Ok(transport) = wrap(WsTransport::server(HyperIo(upgraded), config)) else {
            return;
        };
        run_registered(&runtime, transport, registered, options).await;
    });
    switching
}
