//! The endpoints, one file each, and the one place that dispatches to them ([`Endpoint::serve`]),
//! as mini-redis dispatches its commands from `cmd/mod.rs`. An endpoint reads the shared state
//! and checks (`context.rs`), answers with a refusal (`refusal.rs`) or its own response, and never
//! names the router (`service.rs`), which maps paths to these.
//!
//! An endpoint serves a request that hyper read. The SSE stream and the WebSocket session are also
//! served as a connection's first request on the raw socket (`raw/`), with their `open` shared.

pub(crate) mod echo;
pub(crate) mod poll;
pub(crate) mod sockjs;
pub(crate) mod sse;
pub(crate) mod stomp;
pub(crate) mod websocket;

use std::net::IpAddr;

use http::{Request, Response};
use roomcast_io::Runtime;

use crate::body::Body;
use crate::context::Inner;
use crate::refusal::Refusal;

/// An endpoint, as the router's table names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// The roomcast protocol over WebSocket (`websocket.rs`).
    WebSocket,
    /// A plain WebSocket echo (`echo.rs`).
    Echo,
    /// An SSE stream (`sse.rs`).
    Sse,
    /// Long-poll (`poll.rs`).
    Poll,
    /// STOMP over WebSocket (`stomp.rs`).
    Stomp,
    /// SockJS under `/stomp/` (`sockjs.rs`).
    SockJs,
}

impl Endpoint {
    /// Answers `request` from `peer`: the endpoint's own response (a `101` whose session runs
    /// in a task of its own, a stream, a poll's answer), or why not.
    pub(crate) async fn serve<R: Runtime>(
        self,
        inner: &Inner<R>,
        peer: IpAddr,
        request: Request<()>,
    ) -> Result<Response<Body>, Refusal> {
        match self {
            Self::WebSocket => websocket::serve(inner, peer, request).await,
            Self::Echo => echo::serve(inner, peer, request),
            Self::Sse => sse::serve(inner, peer, request).await,
            Self::Poll => poll::serve(inner, peer, request).await,
            Self::Stomp => stomp::serve(inner, peer, request).await,
            Self::SockJs => sockjs::serve(inner, peer, request).await,
        }
    }
}
