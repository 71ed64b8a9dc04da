//! One HTTP connection: an SSE stream or a WebSocket session served directly, or hyper's HTTP/1.1
//! server with upgrades; a deadline on request headers, and graceful shutdown.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::pin;
use std::task::Poll;

use futures_lite::future;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use roomcast_io::Runtime;

use crate::abort::Abort;
use crate::context::ConnSlot;
use crate::io::HyperIo;
use crate::per_ip::Slot;
use crate::proxies::is_trusted;
use crate::raw::first_request::{First, read_first};
use crate::raw::refuse::refuse;
use crate::raw::{sse, stomp, websocket};
use crate::service::Roomcast;

/// Serves one connection from `peer` until it ends. It counts against `peer`'s per-IP limit
/// from its first byte to its end (and a session it carries, until that ends), unless `peer`
/// is a trusted proxy; over the limit, its first request is answered 429. Request headers must
/// arrive within `options.session.config.handshake_timeout` (a client that trickles them,
/// slowloris, is cut off). Once the shutdown is triggered, an idle keep-alive connection closes
/// at once and a busy one after its response (an SSE stream ends with its session's shutdown);
/// one that comes during the drain has its first request answered, then closes.
///
/// A connection whose first request is `GET /events` (HTTP/1.1, no body) is an SSE stream that
/// roomcast serves on the connection itself, without hyper (`raw/sse.rs`), and one whose first
/// request is `GET /ws` a WebSocket session likewise (`raw/websocket.rs`): `service` never sees
/// them.
/// Every other request goes to `service` through hyper. A stream whose client stopped reading
/// is dropped once its session has ended (see `abort.rs`).
pub async fn serve_connection<R, I, S, B, T>(
    roomcast: &Roomcast<R>,
    peer: SocketAddr,
    io: I,
    service: S,
    timer: T,
) where
    R: Runtime,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: hyper::rt::Timer + Send + Sync + 'static,
{
    let (options, shutdown) = (roomcast.options(), roomcast.shutdown());
    let inner = roomcast.inner();
    let handshake_timeout = options.session.config.handshake_timeout;
    // Every connection counts against its address from its first byte (a trusted proxy's are
    // counted per client, by the sessions they carry).
    let slot = if is_trusted(peer.ip(), &options.trusted_proxies) {
        Ok(None)
    } else {
        inner.acquire(peer.ip()).map(Some)
    };
    // An idle connection closes when the shutdown starts; one that comes during the drain
    // gets its request answered (503, or `/healthz` saying so), then closes.
    let late = shutdown.reconnect_ms().is_some();
    let deadline = future::or(timer.sleep(handshake_timeout), async {
        if late {
            future::pending::<()>().await;
        }
        shutdown.triggered().await;
    });
    let (slot, io) = match (slot, read_first(io, deadline).await) {
        (_, First::Gone) => return,
        (Err(refusal), First::Sse(_, io) | First::WebSocket(_, io) | First::Stomp(_, io)) => {
            return refuse(inner, &refusal, io).await;
        }
        (Err(refusal), First::Other(io)) => return refuse(inner, &refusal, HyperIo(io)).await,
        (Ok(slot), First::Sse(mut request, io)) => {
            if let Some(slot) = slot {
                request.extensions_mut().insert(ConnSlot(slot));
            }
            return sse::serve(inner, peer.ip(), request, io).await;
        }
        (Ok(slot), First::WebSocket(mut request, io)) => {
            if let Some(slot) = slot {
                request.extensions_mut().insert(ConnSlot(slot));
            }
            return websocket::serve(inner, peer.ip(), request, io).await;
        }
        (Ok(slot), First::Stomp(mut request, io)) => {
            if let Some(slot) = slot {
                request.extensions_mut().insert(ConnSlot(slot));
            }
            return stomp::serve(inner, peer.ip(), request, io).await;
        }
        (Ok(slot), First::Other(io)) => (slot, io),
    };
    let abort = Abort::default();
    let service = WithAbort {
        service,
        abort: abort.clone(),
        slot,
    };
    let connection = http1::Builder::new()
        .timer(timer)
        .header_read_timeout(handshake_timeout)
        .keep_alive(!late)
        .serve_connection(io, service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let mut triggered = pin!(shutdown.triggered());
    let mut draining = late;
    poll_fn(|cx| {
        if abort.poll(cx).is_ready() {
            return Poll::Ready(()); // a stream's client stopped reading
        }
        if connection.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if !draining && triggered.as_mut().poll(cx).is_ready() {
            draining = true;
            connection.as_mut().graceful_shutdown();
            if connection.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;
}

/// The application's service, with the connection's [`Abort`] and per-IP count in every
/// request's extensions.
struct WithAbort<S> {
    service: S,
    abort: Abort,
    slot: Option<Slot>,
}

impl<S: hyper::service::Service<Request<Incoming>>> hyper::service::Service<Request<Incoming>>
    for WithAbort<S>
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.abort.clone());
        if let Some(slot) = &self.slot {
            request.extensions_mut().insert(ConnSlot(slot.clone()));
        }
        self.service.call(request)
    }
}
