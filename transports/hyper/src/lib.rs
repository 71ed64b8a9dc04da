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
//! use roomcast_core::hub::{Hub, HubConfig};
//! use roomcast_hyper::{Options, Roomcast, serve_connection};
//!
//! let hub = roomcast_io::spawn_hub(&runtime, Hub::new(HubConfig::default(), 42), roomcast_io::Budget::default());
//! let roomcast = Roomcast::new(runtime, hub, Options::default()); // `?user=NAME` names users
//! // For each accepted connection, in its own task:
//! let peer = "127.0.0.1:50000".parse().unwrap();
//! serve_connection(&roomcast, peer, io, roomcast.service(peer), timer).await;
//! # }
//! ```
//!
//! HTTP/1.1 only: WebSocket upgrades need it, and an SSE stream is one response either way.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod abort;
mod auth;
mod body;
mod conn;
mod context;
mod endpoints;
mod head;
mod io;
mod per_ip;
mod raw;
mod refusal;
mod response;
mod service;
mod upgrade;

pub use auth::{Authenticate, Handshake, user_from_query};
pub use body::Body;
pub use conn::serve_connection;
pub use context::Options;
pub use endpoints::websocket::SUBPROTOCOL;
pub use refusal::Refusal;
pub use response::json;
pub use service::{PeerService, Roomcast};
