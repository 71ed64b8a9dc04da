//! `GET /stomp` as a connection's first request: the handshake answered on the socket, then
//! the STOMP session on it, with no hyper connection or upgrade in between (as `websocket.rs`
//! serves `/ws`): what hyper keeps per upgraded connection would stay for the session's life.

use std::net::IpAddr;

use http::Request;
use roomcast_io::Runtime;

use crate::context::Inner;
use crate::endpoints::stomp::{Admitted, admit};
use crate::io::HyperIo;
use crate::raw::refuse::refuse;
use crate::raw::websocket::answer;

/// The checks and the `101` on `io`, then the session in a task of its own, as under hyper
/// (`endpoints/stomp.rs`). A refusal is answered, and the connection closed.
pub(crate) async fn serve<R, I>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<()>,
    mut io: HyperIo<I>,
) where
    R: Runtime,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let admitted = match inner.unavailable() {
        Some(refusal) => Err(refusal),
        None => admit(inner, peer, &request).await,
    };
    let Admitted { switching, session } = match admitted {
        Ok(admitted) => admitted,
        Err(refusal) => return refuse(inner, &refusal, io).await,
    };
    if !answer(inner, &mut io, switching).await {
        return; // `session`, dropped unrun, leaves the hub
    }
    session.spawn(&inner.runtime, io, false);
}
