//! SockJS (the SockJS protocol 0.3.3), sans-IO: what a server needs to serve `sockjs-client`
//! whatever transport it picks.
//!
//! - [`frame`]: the framing every transport shares: `o` opens, `a[...]` carries messages as a
//!   JSON array of strings, `h` is a heartbeat, `c[code,"reason"]` closes; a client sends a JSON
//!   array of strings (or one JSON string).
//! - [`http`]: a session of the HTTP transports (`xhr` + `xhr_send`, `xhr_streaming`,
//!   `eventsource`), which outlives the requests that carry it: the messages waiting for a
//!   receiving request, at most one receiver at a time (`c[2010,...]` for a second), the 5 s
//!   expiry of a session left without one, `c[1002,...]` once a receiver was broken off, the
//!   128 KiB after which a streaming response ends so that the client opens another, and each
//!   transport's own bytes (a streaming prelude, `data:` lines).
//!
//! What a session carries (STOMP frames, roomcast.v1 messages) is the caller's: here a message
//! is text.

pub mod frame;
pub mod http;

#[cfg(test)]
mod props;
