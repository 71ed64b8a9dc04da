//! roomcast-core: the sans-IO heart of roomcast.
//!
//! Every protocol rule of roomcast lives here as a pure, deterministic state machine: bytes and
//! time go in, bytes, timers and events come out. There are no sockets, no async runtime and no
//! clock, so the same code runs under any runtime, under fuzzers and in property tests.
//!
//! - [`sse`]: the Server-Sent Events codec (WHATWG HTML "server-sent events").
//! - [`ws`]: WebSocket framing (RFC 6455), the frames a server writes.
//! - [`envelope`]: the typed JSON messages of the roomcast protocol, encoded once into shared
//!   [`Frame`](envelope::Frame)s.
//! - [`session`]: one connection's lifecycle: welcome, rate limit, bounded queue, heartbeat, close.
//! - [`heartbeat`]: ping, pong-timeout and SSE keep-alive timers.
//! - [`limits`]: token buckets and the defaults of every session limit.
//! - [`hub`]: rooms, users, presence, streams with history and resume: routing for all sessions.
//! - [`event_stream`]: an SSE session's transmits as `text/event-stream` bytes, each event's `id:`
//!   the connection's cursor.
//! - [`long_poll`]: a long-poll answer: the stored messages after a cursor, and the next cursor.
//! - [`cursor`], [`names`], [`close`], [`delivery`]: positions and cursors, validated names, close
//!   codes, and the shared deliveries the hub hands to sessions.
//!
//! # The run loop
//!
//! A driver (the `roomcast-io` crate, or your own) owns one [`hub::Hub`] and a
//! [`session::Session`] per connection, and moves every output to where it belongs: session
//! events to the hub, hub deliveries to sessions, session transmits to sockets; then it waits for
//! exactly one input (a frame, or the earliest `poll_timeout`). Here it is by hand:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use roomcast_core::envelope::Codec;
//! use roomcast_core::hub::{Connect, Hub, HubConfig, Transmit as Deliver};
//! use roomcast_core::names::UserId;
//! use roomcast_core::session::{Session, SessionConfig, SessionEvent, SessionKind, Transmit};
//!
//! let now = Instant::now(); // the driver's clock: the core never reads one
//! let mut hub = Hub::new(HubConfig::default(), 1);
//!
//! // A WebSocket connection arrives and authenticates as alice.
//! let mut session = Session::new(SessionKind::WebSocket, SessionConfig::default(), Codec::new(), now);
//! let alice = UserId::new("alice")?;
//! let connect = Connect { user: alice.clone(), broadcast: true, rooms: vec![], cursor: None };
//! let id = hub.connect(now, connect)?;
//! session.accept(now, id, alice);
//!
//! // A frame comes in; the driver moves outputs until nothing moves.
//! session.handle_text(now, r#"{"type":"join","ref":1,"room":"lobby"}"#)?;
//! loop {
//!     let mut moved = false;
//!     while let Some(event) = session.poll_event() {
//!         moved = true;
//!         match event {
//!             SessionEvent::Request(request) => hub.handle_request(now, id, request),
//!             SessionEvent::Closed(_) => hub.disconnect(now, id),
//!             _ => {} // application messages go to the application
//!         }
//!     }
//!     while let Some(deliver) = hub.poll_transmit() {
//!         moved = true;
//!         // One session here; a driver finds each by `SessionId::index` and pushes into its
//!         // bounded queue without waiting (a full one: `hub.disconnect`, then close with 4000).
//!         match deliver {
//!             Deliver::To { session: to, deliveries } if to == id => session.deliver_batch(now, deliveries),
//!             Deliver::Fanout { sessions, except, delivery } => {
//!                 for &to in sessions.iter().filter(|&&to| to == id && Some(to) != except) {
//!                     session.deliver_batch(now, [delivery.clone()]);
//!                 }
//!             }
//!             _ => {}
//!         }
//!     }
//!     if !moved {
//!         break;
//!     }
//! }
//!
//! // What goes on the socket: welcome, where each stream resumes, then the join reply.
//! let mut sent = Vec::new();
//! while let Some(transmit) = session.poll_transmit(now) {
//!     if let Transmit::Frame(delivery) = transmit {
//!         sent.push(delivery.frame.as_str().to_owned());
//!     }
//! }
//! assert!(sent[0].starts_with(r#"{"type":"welcome","#));
//! assert!(sent[1].starts_with(r#"{"type":"streams","#));
//! assert!(sent[2].starts_with(r#"{"type":"reply","ref":1,"room":"lobby","members":["alice"]"#));
//!
//! // Then the driver sleeps until the earliest timer: the session's first ping.
//! let wake = [session.poll_timeout(), hub.poll_timeout()].into_iter().flatten().min();
//! assert_eq!(wake, Some(now + Duration::from_secs(25)));
//! session.handle_timeout(now + Duration::from_secs(25));
//! assert!(matches!(session.poll_transmit(now + Duration::from_secs(25)), Some(Transmit::Ping)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod close;
pub mod cursor;
pub mod delivery;
pub mod envelope;
pub mod event_stream;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod heartbeat;
pub mod hub;
pub mod limits;
pub mod long_poll;
pub mod names;
pub mod session;
pub mod sse;
pub mod ws;

/// Test support: the one place tests may read the clock.
#[cfg(test)]
pub(crate) mod testing {
    /// A starting instant for a test to offset from. The core itself never reads the clock.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn start() -> std::time::Instant {
        std::time::Instant::now()
    }
}
