//! A connection as the session run loop sees it: frames in, transmits out.

use std::io;
use std::task::{Context, Poll};

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

/// One connection, as `poll` methods: a `Stream` of frames in and a `Sink` of transmits out.
/// The session driver polls reading among its other sources, and drains every transmit into the
/// transport and flushes once per turn; a future per `recv`, `send` and flush was state written
/// on every delivery, at 10,000 sessions each a cache line missed (docs/performance.md, "One
/// poll per delivery").
///
/// A third-party transport implements the four `poll` methods and nothing else: the driver
/// polls its reads on every wake-up of the session, which is always correct.
pub trait Transport: Send {
    /// An optional optimisation; leave it `false` (the default) unless it holds.
    ///
    /// `true` promises that [`poll_recv`](Self::poll_recv), once pending, can become ready only
    /// after it woke the waker it was given: that poll registered the waker for everything that
    /// can make it ready, whatever is sent meanwhile (a socket read is such a poll; a read
    /// whose answer depends on what was written, as the long-poll's, is not). The driver then
    /// polls it again only once it woke, not on every wake-up of the session (mostly
    /// deliveries), which spares a read attempt (a syscall, on smol) per delivery. A transport
    /// that says `true` wrongly stops being read.
    const RECV_WAKES: bool = false;

    /// The next inbound frame; `None` once the connection is gone. The run loop stops polling
    /// it whenever another input comes first, so no frame may be lost between two polls.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>>;

    /// Ready once another transmit may be buffered. A transport with a bounded buffer writes
    /// out what the socket did not take first; most are always ready.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Buffers a transmit, after [`poll_ready`](Self::poll_ready) was ready; nothing need reach
    /// the socket before [`poll_flush`](Self::poll_flush), so many frames go out in one write.
    fn start_send(&mut self, transmit: Transmit) -> io::Result<()>;

    /// Writes everything buffered.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Whether the transport buffered bytes of its own since its last flush (a protocol it
    /// carries answered the peer itself, as STOMP's `CONNECTED` or `RECEIPT`): the driver then
    /// flushes even when the session sent nothing. The default, `false`, suits a transport
    /// that writes only what it is given.
    fn wants_flush(&self) -> bool {
        false
    }
}

/// A transport that carries text messages a protocol over it writes itself (a STOMP bridge
/// answers `CONNECT` and `RECEIPT`s on its own): [`WsTransport`](crate::WsTransport), and
/// SockJS's transports, which wrap each in their framing.
pub trait TextTransport: Transport {
    /// Queues one text message for the next flush.
    fn queue_text(&mut self, text: bytes::Bytes) -> io::Result<()>;
}
