//! roomcast-smol: roomcast on [smol](https://docs.rs/smol): the [`Runtime`], and an accept loop
//! that runs the `roomcast-hyper` service (WebSocket, SSE, long-poll) on smol's TCP through
//! [smol-hyper](https://docs.rs/smol-hyper).
//!
//! ```no_run
//! use roomcast_core::engine::{MemoryEngine, MemoryLimits};
//! use roomcast_core::hub::{Hub, HubConfig};
//! use roomcast_hyper::{Options, Roomcast};
//! use roomcast_smol::{SmolRuntime, serve};
//!
//! smol::block_on(async {
//!     let engine = MemoryEngine::new(MemoryLimits::default(), 42);
//!     let hub = roomcast_io::spawn_hub(&SmolRuntime, Hub::new(HubConfig::default()), engine, roomcast_io::Budget::default());
//!     let roomcast = Roomcast::new(SmolRuntime, hub, Options::default()); // `?user=NAME`
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     serve(listener, roomcast).await // ws://127.0.0.1:8080/ws, http://127.0.0.1:8080/events
//! })
//! # .unwrap();
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

use futures_rustls::rustls;
use hyper::body::Incoming;
use hyper::{Request, Response};
use roomcast_hyper::{Roomcast, serve_connection, serve_h2_connection};
use roomcast_io::{AsyncTimer, Runtime};
use smol::net::TcpListener;
use smol_hyper::rt::{FuturesIo, SmolTimer};

/// The smol runtime: the global executor, async-io timers and the system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    type Timer = SmolTimerAt;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn new_timer(&self, deadline: Instant) -> SmolTimerAt {
        SmolTimerAt(smol::Timer::at(deadline))
    }

    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        smol::spawn(task).detach();
    }
}

/// smol's timer (async-io's), moved with `Timer::set_at`.
#[derive(Debug)]
pub struct SmolTimerAt(smol::Timer);

impl AsyncTimer for SmolTimerAt {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
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
            smol::spawn(async move {
                if roomcast.options().h2c && prior_knowledge(&stream, &roomcast).await {
                    let io = FuturesIo::new(roomcast_io::GatedIo::new(stream));
                    serve_h2_connection(&roomcast, peer, io, service, SmolTimer::new(), Spawner)
                        .await;
                    return;
                }
                // Read only when the socket woke the connection: hyper polls reads on every
                // wake-up, and smol's sockets try a read before they wait.
                let io = FuturesIo::new(roomcast_io::GatedIo::new(stream));
                serve_connection(&roomcast, peer, io, service, SmolTimer::new()).await;
            })
            .detach();
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
    let acceptor = futures_rustls::TlsAcceptor::from(tls);
    let accept = || listener.accept();
    roomcast
        .accept_loop(accept, |stream, peer| {
            let _ = stream.set_nodelay(true);
            let service = service(peer);
            let roomcast = roomcast.clone();
            let acceptor = acceptor.clone();
            smol::spawn(async move {
                let Some(hold) = roomcast.hold_handshake(peer) else {
                    return; // the address is at its limit: no handshake for it
                };
                let timeout = roomcast.options().session.config.handshake_timeout;
                let handshake = async { acceptor.accept(stream).await.ok() };
                let late = async {
                    smol::Timer::after(timeout).await;
                    None
                };
                let Some(stream) = futures_lite::future::or(handshake, late).await else {
                    return; // a failed or slow handshake: nothing to answer
                };
                drop(hold); // the connection's serving counts it from here
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let io = FuturesIo::new(roomcast_io::GatedIo::new(stream));
                if h2 {
                    serve_h2_connection(&roomcast, peer, io, service, SmolTimer::new(), Spawner)
                        .await;
                } else {
                    serve_connection(&roomcast, peer, io, service, SmolTimer::new()).await;
                }
            })
            .detach();
        })
        .await;
    Ok(())
}

/// Spawns an HTTP/2 connection's stream tasks on smol's global executor.
#[derive(Clone, Copy, Debug)]
struct Spawner;

impl<F> hyper::rt::Executor<F> for Spawner
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, task: F) {
        smol::spawn(task).detach();
    }
}

/// Whether `stream` opens with the HTTP/2 preface (h2c by prior knowledge), looked at without
/// reading it, within the handshake timeout.
async fn prior_knowledge<R: Runtime>(
    stream: &smol::net::TcpStream,
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
            smol::Timer::after(std::time::Duration::from_millis(1)).await;
        }
    };
    let late = async {
        smol::Timer::after(timeout).await;
        false
    };
    futures_lite::future::or(look, late).await
}
