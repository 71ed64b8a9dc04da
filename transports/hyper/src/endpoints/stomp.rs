//! `GET /stomp`: STOMP 1.0, 1.1 and 1.2 over WebSocket (docs/stomp.md). The handshake and the
//! admission are `/ws`'s; the session runs with a STOMP bridge between it and the socket
//! (`roomcast_io::StompTransport`), so a STOMP client obeys every rule a roomcast.v1 client does.

use std::net::IpAddr;

use http::{Request, Response};
use roomcast_core::stomp::bridge::{Bridge, BridgeConfig};
use roomcast_io::{Runtime, StompTransport, WsTransport, run_registered};

use super::websocket::{Opened, open_as};
use crate::body::Body;
use crate::context::Inner;
use crate::io::HyperIo;
use crate::refusal::Refusal;
use crate::upgrade::offers;

/// The STOMP subprotocols, in the order they are preferred when a client offers several.
pub const STOMP_SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// `GET /stomp` under hyper: a STOMP session on the upgraded connection, in a task of its own.
pub(crate) async fn serve<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    mut request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    let subprotocol = STOMP_SUBPROTOCOLS
        .into_iter()
        .find(|name| offers(request.headers(), name));
    let Opened {
        registered,
        slot,
        switching,
        options,
        config,
    } = open_as(inner, peer, &request, "stomp", subprotocol, false).await?;
    let bridge = Bridge::new(BridgeConfig {
        heart_beat_ms: u64::try_from(options.config.ping_interval.as_millis()).unwrap_or(u64::MAX),
        ..BridgeConfig::default()
    });
    let upgrade = hyper::upgrade::on(&mut request);
    let runtime = inner.runtime.clone();
    inner.runtime.spawn(async move {
        let _slot = slot;
        // Dropping `registered` unrun (the upgrade failed) removes it from the hub.
        let Ok(upgraded) = upgrade.await else { return };
        let ws = WsTransport::server(HyperIo(upgraded), config);
        run_registered(
            &runtime,
            StompTransport::new(ws, bridge),
            registered,
            options,
        )
        .await;
    });
    Ok(switching)
}
