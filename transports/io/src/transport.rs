//! A connection as the session run loop sees it: frames in, transmits out.

use std::future::Future;
use std::io;

use roomcast_core::close::Close;
use roomcast_core::session::Transmit;

/// What arrives on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inbound {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A pong, or any other sign of life without content.
    Pong,
    /// The peer closed, with its close frame if it sent one.
    Close(Option<Close>),
    /// The transport failed on its own (a frame over its hard limit, invalid UTF-8, a protocol
    /// violation): the session closes with this.
    Failed(Close),
}

/// One connection. `recv` must be cancel-safe: the run loop races it against its other inputs
/// and drops it when another wins, and no frame may be lost then.
///
/// Implement it with `async fn`s. The futures are not boxed: the run loop makes one `recv` per
/// wake-up and one `send` per frame, and at 10,000 sessions an allocation each showed.
pub trait Transport: Send {
    /// The next inbound frame; `None` once the connection is gone.
    fn recv(&mut self) -> impl Future<Output = Option<Inbound>> + Send;

    /// Buffers a transmit; nothing need reach the socket before [`flush`](Self::flush), so many
    /// frames go out in one write.
    fn send(&mut self, transmit: Transmit) -> impl Future<Output = io::Result<()>> + Send;

    /// Writes everything buffered.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}
