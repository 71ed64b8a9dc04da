//! roomcast-hyper: roomcast over HTTP with [hyper](https://docs.rs/hyper) 1.x, on any runtime.
//!
//! [`Roomcast`] serves, on one port: the roomcast protocol over WebSocket by upgrade (`/ws`), a
//! plain WebSocket echo (`/ws/echo`), SSE streams (`/events`) and long-poll (`/poll`), with the
//! hooks a server needs: authentication before any upgrade or stream (401), an allowed-origins
//! check (403), a per-IP session limit (429) and graceful shutdown. It is runtime-agnostic
//! through `hyper::rt` and [`roomcast_io::Runtime`]; `roomcast-smol` and `roomcast-tokio` run it
//! with an accept loop of a few lines each. Embedding it:
//!
//! ```no_run
//! # async fn example<R: roomcast_io::Runtime>(runtime: R, io: impl hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static, timer: impl hyper::rt::Timer + Send + Sync + 'static) {
//! use roomcast_core::engine::{MemoryEngine, MemoryLimits};
//! use roomcast_core::hub::{Hub, HubConfig};
//! use roomcast_hyper::{Options, Roomcast, serve_connection};
//!
//! let engine = MemoryEngine::new(MemoryLimits::default(), 42);
//! let hub = roomcast_io::spawn_hub(&runtime, Hub::new(HubConfig::default()), engine, roomcast_io::Budget::default());
//! let roomcast = Roomcast::new(runtime, hub, Options::default()); // `?user=NAME` names users
//! // For each accepted connection, in its own task:
//! let peer = "127.0.0.1:50000".parse().unwrap();
//! serve_connection(&roomcast, peer, io, roomcast.service(peer), timer).await;
//! # }
//! ```
//!
//! HTTP/1.1 with [`serve_connection`]; HTTP/2 with [`serve_h2_connection`] (for a TLS
//! connection that negotiated `h2`: every endpoint, a WebSocket by extended CONNECT, RFC 8441).
//!
//! # Modules
//!
//! Each module imports only the ones below it; none imports back up (a test checks the graph).
//!
//! - `conn.rs`: one connection: its first request to the raw path or to hyper, shutdown;
//!   `h2.rs`: one HTTP/2 connection (TLS with ALPN `h2`), its streams through hyper.
//! - `service.rs`: the router: the table of paths ([`Roomcast`] answers by it, the raw path
//!   reads it), [`PeerService`].
//! - `raw/`: the HTTP/1.1 fast path: a connection's first request read before hyper
//!   (`first_request.rs`, `rewind.rs`), and an SSE stream or a WebSocket session served on the
//!   socket itself (`sse.rs`, `websocket.rs`, `refuse.rs`).
//! - `endpoints/`: one file per endpoint (`websocket.rs`, `echo.rs`, `sse.rs`, `poll.rs`),
//!   dispatched from `mod.rs`; an endpoint never imports the router.
//! - `upgrade.rs`: the WebSocket opening handshake, checked, and its `101`.
//! - `context.rs`: the state every endpoint shares ([`Options`]), admission (shutdown, origin,
//!   authentication, per-IP limit), a session's parameters and its registration.
//! - `auth.rs`: who a request is ([`Authenticate`], [`Handshake`], [`user_from_query`]) and the
//!   query parameters.
//! - `refusal.rs`: [`Refusal`] and the one writer of its answer, as a hyper response and as
//!   HTTP/1.1 bytes.
//! - Leaves: `response.rs` ([`json`], CORS headers), `head.rs` (a response head as HTTP/1.1
//!   bytes), `body.rs` ([`Body`]), `abort.rs`, `io.rs`, `per_ip.rs`, `proxies.rs` ([`Cidr`]:
//!   trusted proxies and the client behind them).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod abort;
mod admission;
mod auth;
mod body;
mod conn;
mod context;
mod endpoints;
mod h2;
mod head;
mod io;
mod per_ip;
mod proxies;
mod raw;
mod refusal;
mod response;
mod service;
mod sockjs_table;
mod upgrade;

pub use admission::NewSessions;
pub use auth::{
    Authenticate, ConnectHook, ConnectInfo, Handshake, percent_decode_path, user_from_query,
};
pub use body::Body;
pub use conn::serve_connection;
pub use context::Options;
pub use endpoints::stomp::STOMP_SUBPROTOCOLS;
pub use endpoints::websocket::SUBPROTOCOL;
pub use h2::{H2_PREFACE, h2_preface, serve_h2_connection};
pub use per_ip::HandshakeHold;
pub use proxies::Cidr;
pub use refusal::Refusal;
pub use response::json;
pub use service::{PeerService, Roomcast};
