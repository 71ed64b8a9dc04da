//! `GET /ws/echo`: a plain WebSocket echo (no roomcast protocol): every text and binary message
//! comes back unchanged. It passes Autobahn's sections 1 to 10. Open to anyone unless
//! [`Options::echo_open`](crate::Options::echo_open) is off; then it authenticates as `/ws` does.

use std::net::IpAddr;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::Role;
use http::{Request, Response};
use roomcast_io::{Runtime, echo_config};

use crate::body::Body;
use crate::context::Inner;
use crate::io::HyperIo;
use crate::refusal::Refusal;
use crate::upgrade::{check_opening, switching};

/// The handshake and origin checks and a per-IP slot, then the echo on the upgraded connection,
/// in a task of its own.
pub(crate) fn serve<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    mut request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    let opening = check_opening(&request)?;
    let slot = if inner.options.echo_open {
        inner.check_origin(&request)?;
        inner.acquire(peer)?
    } else {
        inner.admit(peer, &request)?.slot
    };
    let upgrade = hyper::upgrade::on(&mut request);
    inner.runtime.spawn(async move {
        let _slot = slot;
        let Ok(upgraded) = upgrade.await else { return };
        let ws =
            WebSocketStream::from_raw_socket(HyperIo(upgraded), Role::Server, Some(echo_config()))
                .await;
        roomcast_io::echo(ws).await;
    });
    Ok(switching(&opening, None))
}
