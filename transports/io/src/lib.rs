//! roomcast-io: the runtime-agnostic driver of roomcast's sans-IO core.
//!
//! The hub and one run loop per connection move everything between sockets and the core's
//! state machines:
//!
//! - [`spawn_hub`] shares the [`Hub`](roomcast_core::hub::Hub) behind a [`HubHandle`]: each
//!   caller (a session with a request, an HTTP handler with a publish) runs its operation inline,
//!   under a lock never held across an await, and a timer task runs the hub's deadlines. Each
//!   session's deliveries go into its mailbox, bounded by a [`Budget`] of bytes and frames: the
//!   hub never waits for a session, and a session whose mailbox is over budget is dropped from
//!   the hub as a slow consumer (it then closes with 4000, and its client resumes from its
//!   cursor, losing nothing).
//! - [`run_session`] runs one **session task** per connection: it drains every output of its
//!   [`Session`](roomcast_core::session::Session), writes all pending frames in one flush, then
//!   waits for exactly one input (a frame, everything waiting in its mailbox, or the timer).
//!
//! A runtime adapter supplies a [`Runtime`] (clock, timers, spawn) and a [`Transport`] per
//! connection. [`WsTransport`] is WebSocket over any futures-io byte stream (tungstenite);
//! `roomcast-hyper` adds SSE and long-poll. No lock is held across an
//! await, and every queue is bounded. Tests can replace the clock with [`ManualClock`].
//!
//! ```no_run
//! # async fn example<R: roomcast_io::Runtime, T: roomcast_io::Transport>(runtime: R, transport: T) {
//! use roomcast_core::engine::{MemoryEngine, MemoryLimits};
//! use roomcast_core::hub::{Connect, Hub, HubConfig};
//! use roomcast_core::names::UserId;
//! use roomcast_io::{Budget, SessionOptions, run_session, spawn_hub};
//!
//! let engine = MemoryEngine::new(MemoryLimits::default(), 42); // or the store, on disk
//! let hub = spawn_hub(&runtime, Hub::new(HubConfig::default()), engine, Budget::default());
//! // For each accepted and authenticated connection, in its own task:
//! let user = UserId::new("alice").expect("valid");
//! let access = Default::default(); // what the credentials grant
//! let connect = Connect { user, broadcast: true, rooms: vec![], cursor: None, access };
//! let ended = run_session(&runtime, &hub, transport, connect, SessionOptions::default()).await;
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod buffer;
mod credentials;
mod hooks;
mod hub;
mod mailbox;
mod manual_clock;
mod observer;
mod readiness;
mod runtime;
mod session;
mod shutdown;
mod sockjs;
mod stomp;
mod transport;
mod websocket;

pub use buffer::recycle;
pub use credentials::{Credentials, CredentialsRef};
pub use hooks::{Hooks, HooksRef, Pending, Verdict};
pub use hub::{
    ConnectError, EngineLink, EngineStats, HubGone, HubHandle, HubStats, Outgoing, spawn_hub,
};
pub use mailbox::Budget;
pub use manual_clock::{ManualClock, ManualTimer};
pub use observer::{Observe, Observer, Unobserved};
pub use readiness::GatedIo;
pub use runtime::{AsyncTimer, Runtime};
pub use session::{
    DEFAULT_TIMER_SLACK, Ended, Registered, SessionDriver, SessionOptions, run_registered,
    run_session,
};
pub use shutdown::{Shutdown, Triggered};
pub use sockjs::{SockJsHttp, SockJsLink, SockJsReceiver, SockJsWs};
pub use stomp::StompTransport;
pub use transport::{Inbound, TextTransport, Transport};
pub use websocket::{WsTransport, echo, echo_config, websocket_config};
