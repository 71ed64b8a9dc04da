//! roomcast-tokio: roomcast on [tokio](https://docs.rs/tokio): the [`Runtime`], and an accept
//! loop that runs the `roomcast-hyper` service (WebSocket, SSE, long-poll) on tokio's TCP through
//! [hyper-util](https://docs.rs/hyper-util).
//!
//! ```no_run
//! use roomcast_core::engine::{MemoryEngine, MemoryLimits};
//! use roomcast_core::hub::{Hub, HubConfig};
//! use roomcast_hyper::{Options, Roomcast};
//! use roomcast_tokio::{TokioRuntime, serve};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let runtime = TokioRuntime::current();
//!     let engine = MemoryEngine::new(MemoryLimits::default(), 42);
//!     let hub = roomcast_io::spawn_hub(&runtime, Hub::new(HubConfig::default()), engine, roomcast_io::Budget::default());
//!     let roomcast = Roomcast::new(runtime, hub, Options::default()); // `?user=NAME`
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     serve(listener, roomcast).await // ws://127.0.0.1:8080/ws, http://127.0.0.1:8080/events
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use roomcast_hyper::{Roomcast, serve_connection, serve_h2_connection};
use roomcast_io::{AsyncTimer, Runtime};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio_rustls::rustls;

/// The tokio runtime: tasks spawned on a runtime handle, tokio's timers and the system clock.
#[derive(Clone, Debug)]
pub struct TokioRuntime {
    handle: Handle,
}

impl TokioRuntime {
    /// The runtime this is called from.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn current() -> Self {
        Self::new(Handle::current())
    }

    /// The runtime of `handle`.
    pub fn new(handle: Handle) -> Self {
        Self { handle }
    }
}

impl Runtime for TokioRuntime {
    type Timer = TokioTimerAt;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn new_timer(&self, deadline: Instant) -> TokioTimerAt {
        TokioTimerAt(Box::pin(tokio::time::sleep_until(deadline.into())))
    }

    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(task);
    }
}

/// tokio's timer, moved with `Sleep::reset`. Boxed once per timer: `Sleep` must stay pinned.
#[derive(Debug)]
pub struct TokioTimerAt(Pin<Box<tokio::time::Sleep>>);

impl AsyncTimer for TokioTimerAt {
    fn reset(&mut self, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// Accepts connections and serves `roomcast` on each, in its own task. Returns once the
/// service's shutdown is triggered: nothing new is accepted, and the sessions finish their
/// shutdown (`Shutdown::drained` tells when they are all gone).
pub async fn serve<R: Runtime>(listener: TcpListener, roomcast: Roomcast<R>) -> io::Result<()> {
    let service = roomcast.clone();
    serve_with(listener, roomcast, move |peer| service.service(peer)).await
}

/// As [`serve`], with an application's own service per connection (`service(peer)`), for an
/// application that serves routes of its own and hands roomcast's paths to
/// [`Roomcast::handle`]. `roomcast` gives the shutdown switch and the connection limits.
pub async fn serve_with<R, S, B>(
    listener: TcpListener,
    roomcast: Roomcast<R>,
    service: impl Fn(SocketAddr) -> S,
) -> io::Result<()>
where
    R: Runtime,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let accept = || listener.accept();
    roomcast
        .accept_loop(accept, |stream, peer| {
            let _ = stream.set_nodelay(true);
            let service = service(peer);
            let roomcast = roomcast.clone();
            let _task = tokio::spawn(async move {
                if roomcast.options().h2c && prior_knowledge(&stream, &roomcast).await {
                    let io = TokioIo::new(stream);
                    let executor = TokioExecutor::new();
                    serve_h2_connection(&roomcast, peer, io, service, TokioTimer::new(), executor)
                        .await;
                    return;
                }
                let io = TokioIo::new(stream);
                serve_connection(&roomcast, peer, io, service, TokioTimer::new()).await;
            });
        })
        .await;
    Ok(())
}

/// As [`serve_with`], over TLS: each connection's TLS handshake (within the handshake timeout),
/// then HTTP/2 for a client that negotiated `h2` by ALPN and HTTP/1.1 for the others. The
/// certificate comes from `tls`'s resolver at each handshake, so one that reloads it serves a
/// renewal to new connections without a restart.
pub async fn serve_tls_with<R, S, B>(
    listener: TcpListener,
    roomcast: Roomcast<R>,
    tls: Arc<rustls::ServerConfig>,
    service: impl Fn(SocketAddr) -> S,
) -> io::Result<()>
where
    R: Runtime,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let accept = || listener.accept();
    roomcast
        .accept_loop(accept, |stream, peer| {
            let _ = stream.set_nodelay(true);
            let service = service(peer);
            let roomcast = roomcast.clone();
            let acceptor = acceptor.clone();
            let _task = tokio::spawn(async move {
                let Some(hold) = roomcast.hold_handshake(peer) else {
                    return; // the address is at its limit: no handshake for it
                };
                let timeout = roomcast.options().session.config.handshake_timeout;
                let Ok(Ok(stream)) = tokio::time::timeout(timeout, acceptor.accept(stream)).await
                else {
                    return; // a failed or slow handshake: nothing to answer
                };
                drop(hold); // the connection's serving counts it from here
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let io = TokioIo::new(stream);
                if h2 {
                    let executor = TokioExecutor::new();
                    serve_h2_connection(&roomcast, peer, io, service, TokioTimer::new(), executor)
                        .await;
                } else {
                    serve_connection(&roomcast, peer, io, service, TokioTimer::new()).await;
                }
            });
        })
        .await;
    Ok(())
}

/// Whether `stream` opens with the HTTP/2 preface (h2c by prior knowledge), looked at without
/// reading it, within the handshake timeout.
async fn prior_knowledge<R: Runtime>(
    stream: &tokio::net::TcpStream,
    roomcast: &Roomcast<R>,
) -> bool {
    let timeout = roomcast.options().session.config.handshake_timeout;
    let look = async {
        let mut head = [0u8; 24];
        loop {
            let n = stream.peek(&mut head).await.unwrap_or(0);
            if let Some(whole) = roomcast_hyper::h2_preface(&head[..n]) {
                return whole;
            }
            // A preface split across segments: look again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(timeout, look).await.unwrap_or(false)
}
