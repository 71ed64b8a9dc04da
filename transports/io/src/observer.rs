//! What session run loops report, for metrics: sessions opened and closed, messages in and out
//! by type. Reports are cheap calls on the session's own task; an implementation keeps them
//! cheap too (atomic counters, no lock).

use std::fmt;
use std::sync::Arc;

use roomcast_core::close::Close;

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It closed with this (sent or received).
    Closed(Close),
    /// The connection dropped or a write timed out, without a close.
    Lost,
}

/// Receives a session's reports. Every method does nothing by default.
pub trait Observer: Send + Sync + 'static {
    /// A session started on `transport` (`"websocket"`, `"sse"`, `"poll"`...).
    fn opened(&self, transport: &'static str) {
        let _ = transport;
    }

    /// A session ended.
    fn closed(&self, transport: &'static str, ended: &Ended) {
        let _ = (transport, ended);
    }

    /// A client message of this type came in (one the session accepted, before the hub acts).
    fn inbound(&self, transport: &'static str, message_type: &str) {
        let _ = (transport, message_type);
    }

    /// A server frame went out; `frame` is its JSON text (its `type` comes first).
    fn outbound(&self, transport: &'static str, frame: &str) {
        let _ = (transport, frame);
    }
}

/// A shared observer, for [`SessionOptions`](crate::SessionOptions).
#[derive(Clone)]
pub struct Observe(pub Arc<dyn Observer>);

impl fmt::Debug for Observe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observe(..)")
    }
}

/// The observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}

impl Default for Observe {
    fn default() -> Self {
        Self(Arc::new(Unobserved))
    }
}
