//! The raw HTTP/1.1 fast path: a connection's first request is read before hyper sees it
//! (`first_request.rs`), and when the router's table gives its route to this path (the SSE
//! stream, the WebSocket session, the STOMP session), it is served on the socket itself
//! (`sse.rs`, `websocket.rs`, `stomp.rs`), its refusal too (`refuse.rs`). No hyper connection then stays behind a
//! session that lives as long as its client. Anything else goes to hyper with the bytes read
//! put back in front (`rewind.rs`).
//!
//! Every delivery to such a session takes this path (docs/performance.md): a session gets a task
//! of its own, not nested in the connection's future, and nothing here allocates per delivery.

pub(crate) mod first_request;
pub(crate) mod refuse;
pub(crate) mod rewind;
pub(crate) mod sse;
pub(crate) mod stomp;
pub(crate) mod websocket;
