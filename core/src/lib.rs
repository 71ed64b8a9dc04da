//! roomcast-core: the sans-IO heart of roomcast.
//!
//! Every protocol rule of roomcast lives here as a pure, deterministic state machine: bytes and
//! time go in, bytes, timers and events come out. There are no sockets, no async runtime and no
//! clock, so the same code runs under any runtime, under fuzzers and in property tests.
//!
//! - [`sse`]: the Server-Sent Events codec (WHATWG HTML "server-sent events").
//! - [`ws`]: WebSocket framing (RFC 6455), the frames a server writes.
//! - [`stomp`]: the STOMP 1.2 frame codec (and 1.0, 1.1): an incremental decoder, the encoder,
//!   `MESSAGE` frames encoded once for many subscribers, version and heart-beat negotiation.
//! - [`sockjs`]: SockJS framing, and the sessions of its HTTP transports (`xhr`,
//!   `xhr_streaming`, `eventsource`), which outlive their requests.
//! - [`engine`]: the engine exchange (the hub's streams behind an engine, as operations and
//!   events) and [`MemoryEngine`](engine::MemoryEngine), the streams in memory.
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
//! - [`harness`]: a hub and its sessions driven together on a virtual clock, the smallest
//!   correct driver: what the tests, the fuzz bodies and the simulation run the core with.
//!
//! # The run loop
//!
//! A driver (the `roomcast-io` crate, or your own) owns one [`hub::Hub`], an engine that keeps
//! its streams ([`engine`]), and a [`session::Session`] per connection, and moves every output
//! to where it belongs: session events to the hub, hub operations to the engine and engine
//! events back, hub transmits to sessions, session transmits to sockets; then it waits for
//! exactly one input (a frame, or the earliest `poll_timeout`), feeds it in with the time, and
//! moves outputs again until nothing moves:
//!
//! ```text
//! loop {
//!     session events  -> hub.handle_request(now, id, request), or hub.disconnect(now, id)
//!     hub.poll_engine() -> engine.handle(now, operation)
//!     engine.poll_event() -> hub.handle_engine(now, event)
//!     hub.poll_transmit() -> To: session.deliver_batch(now, deliveries)
//!                            Fanout: session.deliver(now, delivery) for each member but `except`
//!     ... until nothing moves
//!     session.poll_transmit(now) -> the socket
//!     wait: a frame (session.handle_text(now, frame)), or the earliest of session.poll_timeout()
//!           and hub.poll_timeout() (handle_timeout(now))
//! }
//! ```
//!
//! [`harness::Harness`] is that loop without the sockets and the clock: read
//! [`Harness::drive`](harness::Harness::drive) in its source for the routing, every line of it.
//! Here it runs one connection:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use roomcast_core::harness::Harness;
//! use roomcast_core::hub::{Connect, Hub, HubConfig};
//! use roomcast_core::names::UserId;
//! use roomcast_core::session::{SessionKind, Transmit};
//!
//! let now = Instant::now(); // the driver's clock: the core never reads one
//! let mut server = Harness::new(Hub::new(HubConfig::default()), now); // a MemoryEngine
//!
//! // A WebSocket connection arrives and authenticates as alice: her session joins the hub.
//! let alice = UserId::new("alice")?;
//! let access = Default::default(); // no grants: the default namespace is open
//! let connect = Connect { user: alice, broadcast: true, rooms: vec![], cursor: None, access };
//! let id = server.connect(SessionKind::WebSocket, connect)?;
//!
//! // A frame comes in: the session hands the request to the hub, the hub's reply comes back to
//! // the session; the harness moves outputs until nothing moves.
//! server.handle_text(id, r#"{"type":"join","ref":1,"room":"lobby"}"#)?;
//!
//! // What goes on the socket: welcome, where each stream resumes, then the join reply.
//! let sent: Vec<String> =
//!     server.take_frames(id).iter().map(|delivery| delivery.frame.as_str().to_owned()).collect();
//! assert!(sent[0].starts_with(r#"{"type":"welcome","#));
//! assert!(sent[1].starts_with(r#"{"type":"streams","#));
//! assert!(sent[2].starts_with(r#"{"type":"reply","ref":1,"room":"lobby","members":["alice"]"#));
//!
//! // Then the driver sleeps until the earliest timer: the hub's check of the heads of what it
//! // follows (every 5 s), which finds nothing amiss; then, at 25 s, the session's first ping.
//! assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(5)));
//! let first = loop {
//!     server.advance_to_next_timeout();
//!     if let Some(transmit) = server.poll_transmit(id) {
//!         break transmit;
//!     }
//! };
//! assert_eq!((first, server.now()), (Transmit::Ping, now + Duration::from_secs(25)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
pub mod close;
pub mod cursor;
pub mod delivery;
pub mod engine;
pub mod envelope;
pub mod event_stream;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod harness;
pub mod heartbeat;
pub mod hub;
pub mod limits;
pub mod long_poll;
pub mod names;
pub mod session;
pub mod sockjs;
pub mod sse;
pub mod stomp;
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
