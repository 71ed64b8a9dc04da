//! roomcast-core: the sans-IO heart of roomcast.
//!
//! Every protocol rule of roomcast lives here as a pure, deterministic state machine: bytes and
//! time go in, bytes, timers and events come out. There are no sockets, no async runtime and no
//! clock, so the same code runs under any runtime, under fuzzers and in property tests.
//!
//! - [`sse`]: the Server-Sent Events codec (WHATWG HTML "server-sent events").
//! - [`envelope`]: the typed JSON messages of the roomcast protocol, encoded once into shared
//!   [`Frame`](envelope::Frame)s.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cursor;
pub mod envelope;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod names;
pub mod sse;
