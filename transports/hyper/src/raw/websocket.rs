//! `GET /ws` as a connection's first request: the WebSocket handshake answered on the socket,
//! then the roomcast protocol on it, with no hyper connection or upgrade in between.

use std::net::IpAddr;

use futures_lite::{AsyncWriteExt, future};
use http::{Request, Response};
use roomcast_io::{Runtime, WsTransport, run_registered};

use crate::context::Inner;
use crate::endpoints::websocket::{Opened, open};
use crate::head::{Framing, head_bytes};
use crate::io::HyperIo;
use crate::raw::refuse::refuse;

/// The checks and the `101` on `io`, the connection the request came on, then the roomcast
/// protocol on it in a task of its own, as under hyper (`endpoints/websocket.rs`). No hyper
/// connection or upgrade comes between the session and its socket, so a delivery follows one
/// pointer fewer to the socket, and a connection costs less to open. A refusal is answered, and
/// the connection closed.
///
/// The session gets a task of its own rather than running in the connection's: nested in the
/// connection's future, each level's state is one more cache line per delivery.
pub(crate) async fn serve<R, I>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<()>,
    io: HyperIo<I>,
) where
    R: Runtime,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let opened = match inner.unavailable() {
        Some(refusal) => Err(refusal),
        None => open(inner, peer, &request).await,
    };
    let Opened {
        registered,
        slot,
        switching,
        options,
        config,
    } = match opened {
        Ok(opened) => opened,
        Err(refusal) => return refuse(inner, &refusal, io).await,
    };
    // The `101` goes out with the session's first frames (the welcome), in one write: one
    // wake-up of the client fewer per connection, which a storm of arrivals counts. A client
    // that never reads it meets the session's write timeout.
    let (parts, _) = switching.into_parts();
    let head = head_bytes(&Response::from_parts(parts, ()), Framing::Switching);
    let runtime = inner.runtime.clone();
    inner.runtime.spawn(async move {
        let _slot = slot;
        let transport = WsTransport::server_after(io, config, head);
        run_registered(&runtime, transport, registered, options).await;
    });
}

/// Writes the handshake's answer (`101`) on `io`, within the write timeout: `false` when it
/// could not be.
pub(crate) async fn answer<R, I>(
    inner: &Inner<R>,
    io: &mut HyperIo<I>,
    switching: Response<crate::body::Body>,
) -> bool
where
    R: Runtime,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (parts, _) = switching.into_parts();
    let head = head_bytes(&Response::from_parts(parts, ()), Framing::Switching);
    let runtime = &inner.runtime;
    let timeout = runtime.now() + inner.options.session.write_timeout;
    let written = async {
        io.write_all(&head).await?;
        io.flush().await
    };
    let timed_out = async {
        runtime.sleep_until(timeout).await;
        Err(std::io::ErrorKind::TimedOut.into())
    };
    future::or(written, timed_out).await.is_ok()
}
