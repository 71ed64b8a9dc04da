//! roomcast under faults, over real sockets on 127.0.0.1, on smol and on tokio: clients killed
//! mid-stream, a half-open connection, a reader that stops reading (WebSocket and SSE), a flood
//! of malformed frames,
//! invalid UTF-8 and frames at the size limit, slowloris, a connection flood past the per-IP
//! limit, a server restart during traffic, a burst of pipelined requests, and a client that
//! never stops sending.
//!
//! Each test asserts what the protocol (docs/protocol.md) promises under its fault: the exact
//! close code, HTTP status or delivery, and that the hub lets go of what the fault left behind
//! (its figures, polled within a deadline). Every wait is bounded (`WAIT` or a deadline of the
//! test's own), every loop bounded in count. Timings are shortened through `SessionConfig` and
//! `HubConfig` where a fault needs a timer to fire.
//!
//! Where clients publish many messages they wait for each reply before the next one (or pace
//! themselves, or keep a window): the faults are the subject. Two bugs that deep pipelines hit
//! have modules of their own, both bugs now fixed: a client with more than 64 requests in
//! flight was dropped as a slow consumer (`pipelining`), and on smol a client that never stops
//! sending stalled every other session of its thread (`flooding_client`).
//!
//! One module per fault, each running its tests on both runtimes; `common` holds the helpers
//! that several of them share.

mod common;

mod connection_flood;
mod flooding_client;
mod frame_limits;
mod half_open;
mod killed;
mod malformed_flood;
mod pipelining;
mod restart;
mod slowloris;
mod stalled_reader;
mod stalled_sse;
