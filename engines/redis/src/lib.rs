//! roomcast-redis: the hub's streams in Redis, so that many roomcast nodes share rooms,
//! outboxes and the broadcast feed.
//!
//! Two halves, as the core is split from its drivers:
//!
//! - [`plan`], pure: each engine [`Operation`](roomcast_core::engine::Operation) becomes the
//!   script calls that carry it out (keys and arguments), and each reply, or pub/sub message,
//!   becomes the [`EngineEvent`](roomcast_core::engine::EngineEvent)s it means. No IO, no
//!   clock, no randomness but a seed: unit-tested and fuzzed without a server.
//! - [`driver`]: redis-rs connections that run what the plan says, on tokio or smol.
//!
//! ## Keys
//!
//! Every key of a stream is under one hash tag, so a stream lives in one slot of a cluster:
//! for the stream `r:lobby` (see [`StreamId::key`](roomcast_core::engine::StreamId::key)),
//! `rc:{r:lobby}:m` is its meta (a HASH: `e` epoch, `o` last offset, `b` bytes kept, `r` the
//! read mark of an outbox, `a` the records' age limit in ms), `rc:{r:lobby}:l` its log (a
//! STREAM whose entry ids are the offsets, `<offset>-0`, each entry holding the record `r`, a
//! random nonce `n`, the time `t` and the size `s`), and `rc:{r:lobby}` the pub/sub channel
//! its appends are published on. The prefix `rc` is configurable.
//!
//! ## Scripts
//!
//! One Lua script per append does, atomically: the epoch (a stream without meta gets the
//! fresh epoch the call carries, and any log left without it is deleted), the offset
//! (`HINCRBY`), the `XADD`, the trims by count, bytes and age, the keys' time to live, and the
//! `PUBLISH` (`SPUBLISH` on a cluster) of `epoch offset nonce`, a newline and the record.
//! A read script returns the view (epoch, last offset, first offset kept, read mark), the
//! records after a position when it is covered, and the nonce of the record at the position;
//! a mark script moves an outbox's read mark. The heads of streams are read with `HMGET`.
//! Anchor: centrifuge's `broker_redis.go` and its `broker_history_add_stream.lua`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod driver;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod plan;
