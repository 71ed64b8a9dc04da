//! roomcast-core: the sans-IO heart of roomcast.
//!
//! Every protocol rule of roomcast lives here as a pure, deterministic state machine: bytes and
//! time go in, bytes, timers and events come out. There are no sockets, no async runtime and no
//! clock, so the same code runs under any runtime, under fuzzers and in property tests.
//!
//! - [`sse`]: the Server-Sent Events codec (WHATWG HTML "server-sent events").
//! - [`envelope`]: the typed JSON messages of the roomcast protocol, encoded once into shared
//!   [`Frame`](envelope::Frame)s.
//! - [`session`]: one connection's lifecycle: welcome, rate limit, bounded queue, heartbeat, close.
//! - [`heartbeat`]: ping, pong-timeout and SSE keep-alive timers.
//! - [`limits`]: token buckets and the defaults of every session limit.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod close;
pub mod cursor;
pub mod delivery;
pub mod envelope;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod heartbeat;
pub mod hub;
pub mod limits;
pub mod names;
pub mod session;
pub mod sse;

/// Test support: the one place tests may read the clock.
#[cfg(test)]
pub(crate) mod testing {
    /// A starting instant for a test to offset from. The core itself never reads the clock.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn start() -> std::time::Instant {
        std::time::Instant::now()
    }
}
