//! WebSocket as a roomcast [`Transport`]: tungstenite over any async byte stream, driven by the
//! session's task; and the plain echo socket, on async-tungstenite.

use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use async_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use futures_lite::{AsyncRead, AsyncWrite};
use futures_util::{SinkExt, StreamExt};
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::session::{SessionConfig, Transmit};
use roomcast_core::ws::{self, Frames};

use crate::buffer::recycle;
use crate::transport::{Inbound, TextTransport, Transport};

/// tungstenite's settings for a session's limits: a small read buffer (tungstenite zero-fills
/// its read buffer, 128 KiB by default, on every read, so an idle connection would cost that
/// much; client frames are small, and 2 KiB measured 1.5 KiB less per idle connection than 4 KiB
/// with the same throughput), and hard
/// message and frame caps at twice `max_frame`, so a frame just over `max_frame` reaches the
/// session, which closes with 1009, while memory stays bounded whatever the peer sends.
pub fn websocket_config(config: &SessionConfig) -> WebSocketConfig {
    let hard = config.max_frame.saturating_mul(2);
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .max_write_buffer_size(config.queue_bytes.saturating_mul(2).max(1 << 20))
        .max_message_size(Some(hard))
        .max_frame_size(Some(hard))
}

/// tungstenite's settings for the plain echo socket: a small read buffer, 16 MiB messages.
pub fn echo_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// A plain echo socket over an accepted WebSocket: every text and binary message comes back
/// unchanged; pings are answered and close frames echoed. For conformance testing (Autobahn)
/// and for trying a client out.
pub async fn echo<S>(mut ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = ws.next().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            // Pongs are queued by tungstenite; flush them out now.
            Message::Ping(_) | Message::Pong(_) => {
                if ws.flush().await.is_err() {
                    return;
                }
                continue;
            }
            // tungstenite replies to a close itself and ends the stream.
            Message::Close(_) | Message::Frame(_) => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
    let _ = ws.flush().await;
}

/// A WebSocket connection: tungstenite's protocol state over an async byte stream, driven by
/// the session's task itself. async-tungstenite's stream, used before, gives every socket two
/// shared waker proxies and registers the task's waker in both on every write; a session's
/// socket has one task, so the waker of the poll at hand is all the socket needs, and each
/// delivery touches two allocations fewer.
///
/// Data frames and pings are framed here and written at the flush in one vectored write: each
/// frame's header, and the payload every recipient of a fan-out shares, with no copy into a
/// buffer of the connection's own (tungstenite's). tungstenite reads, and writes the close and
/// the pongs it owes; every byte goes through one ordered queue (`Bridge`), so a frame the
/// socket took only part of is finished before anything else.
// `repr(C)`, in this order: what every delivery touches (the flags, the frame queue, the
// socket and its write queue) first, together, and tungstenite's protocol state, which a
// delivery does not read, after it (docs/performance.md, "Cache lines per delivery").
#[repr(C)]
pub struct WsTransport<S> {
    /// tungstenite holds bytes to write (a close, a pong): the next flush goes through it.
    ws_dirty: bool,
    /// A read ended the connection (closed, or an error already reported): no more reads.
    ended: bool,
    /// A ping came: its pong, queued by tungstenite, is flushed before the ping counts as
    /// input.
    pong_queued: bool,
    /// tungstenite's `can_write` as of its last call: no frame is queued once a close went or
    /// came. Kept here, as only a tungstenite call changes it, so that queueing a frame does
    /// not read tungstenite's state.
    writable: bool,
    /// Frames queued since the last flush: (first byte, payload).
    frames: Frames,
    /// The socket, which tungstenite reads and writes through.
    bridge: Bridge<S>,
    ws: WebSocketContext,
}

impl<S> WsTransport<S> {
    /// The server's side of an accepted WebSocket (the handshake done).
    pub fn server(io: S, config: WebSocketConfig) -> Self {
        Self::new(io, Role::Server, config)
    }

    /// The server's side of a WebSocket whose handshake's answer (`101`, `head`) is not written
    /// yet: it goes out ahead of the first frames, in the same write, so a session's welcome
    /// costs no write and no wake-up of the client of its own.
    pub fn server_after(io: S, config: WebSocketConfig, head: Vec<u8>) -> Self {
        let mut transport = Self::new(io, Role::Server, config);
        transport.bridge.queued = head;
        transport
    }

    /// Either side of a WebSocket whose handshake is done.
    pub fn new(io: S, role: Role, config: WebSocketConfig) -> Self {
        let bridge = Bridge {
            io,
            waker: None,
            queued: Vec::new(),
            sent: 0,
            limit: config.max_write_buffer_size,
        };
        let ws = WebSocketContext::new(role, Some(config));
        Self {
            ws_dirty: false,
            ended: false,
            pong_queued: false,
            writable: ws.can_write(),
            frames: Frames::default(),
            bridge,
            ws,
        }
    }
}

/// Frames a transport's frame queue keeps room for between flushes.
const KEPT_FRAMES: usize = 64;

/// Slices per vectored write: Linux's `IOV_MAX`.
const MAX_SLICES: usize = 1024;

/// Frames up to this size in all, headers included, are written from a copy on the stack with a
/// plain write: a vectored write takes the kernel's VFS path (`writev`), a plain one the socket's
/// own (`sendto`), and for a few small frames that costs less.
const SMALL_FRAMES: usize = 256;

impl<S: AsyncRead + AsyncWrite + Unpin> WsTransport<S> {
    /// Runs one tungstenite call with `cx`'s waker for the socket: a socket that would block
    /// makes it `Pending`.
    fn drive<T>(
        &mut self,
        cx: &Context<'_>,
        call: impl FnOnce(&mut WebSocketContext, &mut Bridge<S>) -> Result<T, WsError>,
    ) -> Poll<Result<T, WsError>> {
        self.bridge.use_waker(cx.waker());
        let called = call(&mut self.ws, &mut self.bridge);
        self.writable = self.ws.can_write();
        match called {
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            done => Poll::Ready(done),
        }
    }

    /// The next message. Each poll reads (tungstenite zero-fills its read buffer first, and
    /// smol's sockets try a `recvfrom` before waiting), so the run loop polls this only once
    /// the socket woke it ([`Transport::RECV_WAKES`]).
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, WsError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let read = self.drive(cx, WebSocketContext::read);
        read.map(|read| match read {
            Ok(message) => Some(Ok(message)),
            Err(error) => {
                self.ended = true;
                match error {
                    WsError::AlreadyClosed | WsError::ConnectionClosed => None,
                    error => Some(Err(error)),
                }
            }
        })
    }

    /// Writes out what tungstenite holds.
    fn poll_flush_ws(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let flushed = ready!(self.drive(cx, WebSocketContext::flush));
        self.ws_dirty = false;
        // Flushing what is left after the close handshake ended the connection is no error.
        Poll::Ready(match flushed {
            Err(WsError::ConnectionClosed) => Ok(()),
            other => other,
        })
    }
}

impl<S> Transport for WsTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// A pending read registered the waker with the socket, and so did a pending pong's flush.
    const RECV_WAKES: bool = true;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        loop {
            // tungstenite queued the pong itself; send it now, not at the next write, or a
            // client with a pong timeout (Python websockets: 20 s) gives up on us.
            if self.pong_queued {
                let _ = ready!(self.poll_flush_ws(cx));
                self.pong_queued = false;
                return Poll::Ready(Some(Inbound::Pong));
            }
            let message = match ready!(self.poll_message(cx)) {
                None => return Poll::Ready(None),
                Some(Ok(message)) => message,
                Some(Err(error)) => return Poll::Ready(failed(error)),
            };
            return Poll::Ready(Some(match message {
                Message::Text(text) => Inbound::Text(text.as_str().to_owned()),
                Message::Binary(bytes) => Inbound::Binary(bytes.to_vec()),
                Message::Ping(_) => {
                    self.pong_queued = true;
                    continue;
                }
                Message::Pong(_) => Inbound::Pong,
                Message::Close(frame) => Inbound::Close(frame.map(|frame| {
                    Close::new(
                        CloseCode::from_u16(frame.code.into()),
                        frame.reason.as_str(),
                    )
                })),
                Message::Frame(_) => continue,
            }));
        }
    }

    /// What the socket did not take is written before anything more is queued, so what waits
    /// stays bounded (async-tungstenite's `poll_ready`).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let bridge = &mut self.bridge;
        bridge.use_waker(cx.waker());
        match bridge.drain() {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => Poll::Pending,
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        match transmit {
            // A ready text frame over the shared bytes: no copy, no UTF-8 check per recipient.
            Transmit::Frame(delivery) => self.queue(ws::TEXT, delivery.frame.to_bytes()),
            Transmit::Ping => self.queue(ws::PING, Bytes::new()),
            Transmit::Close(close) => {
                // tungstenite writes the close (and keeps the closing handshake), behind the
                // frames queued before it.
                self.write_frames()?;
                let close = Message::Close(Some(CloseFrame {
                    code: WsCloseCode::from(close.code.as_u16()),
                    reason: close.reason.into(),
                }));
                self.ws_dirty = true;
                let written = self.ws.write(&mut self.bridge, close);
                self.writable = self.ws.can_write();
                match written {
                    Ok(()) => Ok(()),
                    // Queued; the socket took only part of it.
                    Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
                    Err(error) => Err(io_error(error)),
                }
            }
            // Keep-alive comments are for SSE; a WebSocket session pings instead.
            _ => Ok(()),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.bridge.use_waker(cx.waker());
        self.write_frames()?;
        if self.ws_dirty {
            return self.poll_flush_ws(cx).map_err(io_error);
        }
        match self.bridge.flush() {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            done => Poll::Ready(done),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsTransport<S> {
    /// Queues a text frame of `payload` (UTF-8, the caller's promise) for the next flush,
    /// beside the session's transmits: for a protocol carried over WebSocket (STOMP) whose
    /// bytes are not one of the session's frames.
    pub fn queue_text(&mut self, payload: Bytes) -> io::Result<()> {
        self.queue(ws::TEXT, payload)
    }

    /// Queues a frame for the next flush; none once tungstenite has sent or answered a close.
    fn queue(&mut self, first: u8, payload: Bytes) -> io::Result<()> {
        if !self.writable {
            return Err(io_error(WsError::Protocol(
                async_tungstenite::tungstenite::error::ProtocolError::SendAfterClosing,
            )));
        }
        self.frames.push(first, payload);
        Ok(())
    }

    /// Hands the queued frames to the socket's queue in one write: what the socket takes goes
    /// out now, the rest waits in order. Frames that are small in all (a paced fan-out's
    /// message, maybe with a ping) are copied to the stack and written plainly; otherwise a
    /// vectored write takes a head and a payload each, one frame's head from the stack and a
    /// burst's heads from one buffer. The bytes are `roomcast_core::ws`'s.
    fn write_frames(&mut self) -> io::Result<()> {
        let (bridge, frames) = (&mut self.bridge, &mut self.frames);
        if frames.is_empty() {
            return Ok(());
        }
        let mut small = [0u8; SMALL_FRAMES];
        if let Some(used) = frames.copy_into(&mut small) {
            bridge.write_in_order(&[IoSlice::new(&small[..used])])?;
        } else if frames.len() == 1 {
            let (head, payload) = frames.iter().next().expect("one frame");
            bridge.write_in_order(&[IoSlice::new(head.as_bytes()), IoSlice::new(payload)])?;
        } else {
            let count = frames.len();
            let (mut heads, mut ends) = (Vec::with_capacity(4 * count), Vec::with_capacity(count));
            frames.heads_into(&mut heads, &mut ends);
            let mut slices = Vec::with_capacity(2 * count);
            let mut start = 0;
            for ((_, payload), end) in frames.iter().zip(ends) {
                slices.push(IoSlice::new(&heads[start..end]));
                slices.push(IoSlice::new(payload));
                start = end;
            }
            for some in slices.chunks(MAX_SLICES) {
                bridge.write_in_order(some)?;
            }
        }
        frames.clear(KEPT_FRAMES);
        Ok(())
    }
}

/// An async byte stream as the blocking `Read` and `Write` tungstenite calls: a poll that is
/// pending is `WouldBlock`, and it registers the waker of the poll driving the socket. Writes
/// go through one ordered queue: what the socket does not take waits, and every later byte
/// goes behind it, so no write ever lands inside a frame the socket took only part of.
struct Bridge<S> {
    io: S,
    /// The waker of the current poll, kept between polls: a task's waker stays the same, so it
    /// is cloned only when it changes.
    waker: Option<Waker>,
    /// Bytes written that the socket has not taken yet, from `sent` on.
    queued: Vec<u8>,
    sent: usize,
    /// The most that may wait: past it the peer is not reading, and writing fails.
    limit: usize,
}

/// A socket's write queue keeps no capacity once it has drained: it fills only while the
/// socket is full (a burst, a slow reader, the handshake's answer ahead of the welcome), and
/// kept, what a burst grew would stay with every idle connection after it.
const KEPT_QUEUE: usize = 0;

impl<S: Unpin> Bridge<S> {
    fn use_waker(&mut self, waker: &Waker) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.waker = Some(waker.clone());
        }
    }

    /// Polls the stream with the current waker (none before the first poll: nothing waits).
    fn poll_io<T>(
        io: &mut S,
        waker: Option<&Waker>,
        poll: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> io::Result<T> {
        let waker = waker.unwrap_or(Waker::noop());
        match poll(Pin::new(io), &mut Context::from_waker(waker)) {
            Poll::Ready(done) => done,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: AsyncWrite + Unpin> Bridge<S> {
    /// Writes what waits: true once nothing does, false if the socket would block.
    fn drain(&mut self) -> io::Result<bool> {
        while self.sent < self.queued.len() {
            let rest = &self.queued[self.sent..];
            match Self::poll_io(&mut self.io, self.waker.as_ref(), |io, cx| {
                io.poll_write(cx, rest)
            }) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) => return Err(error),
            }
        }
        self.sent = 0;
        recycle(&mut self.queued, KEPT_QUEUE);
        Ok(true)
    }

    /// Writes `slices` behind whatever waits: straight to the socket in one vectored write if
    /// nothing does, and what the socket does not take waits.
    fn write_in_order(&mut self, slices: &[IoSlice<'_>]) -> io::Result<()> {
        let total: usize = slices.iter().map(|slice| slice.len()).sum();
        let mut taken = 0;
        if self.queued.is_empty() && total > 0 {
            match Self::poll_io(&mut self.io, self.waker.as_ref(), |io, cx| match slices {
                [one] => io.poll_write(cx, one),
                _ => io.poll_write_vectored(cx, slices),
            }) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => taken = n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        if taken == total {
            return Ok(());
        }
        if self.queued.len() - self.sent + (total - taken) > self.limit {
            return Err(io::Error::other(
                "the write queue is full: the peer does not read",
            ));
        }
        for slice in slices {
            if taken >= slice.len() {
                taken -= slice.len();
                continue;
            }
            self.queued.extend_from_slice(&slice[taken..]);
            taken = 0;
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> Read for Bridge<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Self::poll_io(&mut self.io, self.waker.as_ref(), |io, cx| {
            io.poll_read(cx, buf)
        })
    }
}

impl<S: AsyncWrite + Unpin> Write for Bridge<S> {
    /// Takes every byte: into the socket, or behind what waits.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_in_order(&[IoSlice::new(buf)])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.drain()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Self::poll_io(&mut self.io, self.waker.as_ref(), |io, cx| {
            io.poll_flush(cx)
        })
    }
}

/// What a tungstenite error means for the session: close with a code, or the connection is gone.
fn failed(error: WsError) -> Option<Inbound> {
    let close = match error {
        WsError::Capacity(_) => Close::new(CloseCode::TooBig, "frame too large"),
        WsError::Utf8(_) => Close::new(CloseCode::Other(1007), "invalid UTF-8 in a text frame"),
        WsError::Protocol(error) => Close::new(CloseCode::Other(1002), error.to_string()),
        _ => return None, // closed, reset, or an IO error: nothing more can be said to the peer
    };
    Some(Inbound::Failed(close))
}

fn io_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(error) => error,
        other => io::Error::other(other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> TextTransport for WsTransport<S> {
    fn queue_text(&mut self, text: Bytes) -> io::Result<()> {
        WsTransport::queue_text(self, text)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use std::future::poll_fn;

    use async_tungstenite::tungstenite::protocol::frame::Frame;
    use async_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use futures_lite::future::{block_on, poll_once};

    use super::*;

    /// A socket that takes only as many bytes as it was given room for, then waits.
    #[derive(Clone, Default)]
    struct Narrow(Arc<Mutex<NarrowState>>);

    #[derive(Default)]
    struct NarrowState {
        room: usize,
        written: Vec<u8>,
        waker: Option<Waker>,
    }

    impl Narrow {
        /// Gives the socket `room` more bytes and wakes the writer that waits, if any.
        fn make_room(&self, room: usize) -> bool {
            let waker = {
                let mut state = self.0.lock().expect("not poisoned");
                state.room += room;
                state.waker.take()
            };
            waker.map(Waker::wake).is_some()
        }

        fn written(&self) -> Vec<u8> {
            self.0.lock().expect("not poisoned").written.clone()
        }
    }

    impl AsyncRead for Narrow {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Narrow {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut state = self.0.lock().expect("not poisoned");
            let n = buf.len().min(state.room);
            if n == 0 {
                state.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            state.room -= n;
            state.written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn text(body: &str) -> Transmit {
        let frame = roomcast_core::envelope::Payload::from_json(body).expect("JSON");
        let message = roomcast_core::envelope::ServerMessage::Broadcast {
            id: roomcast_core::cursor::Position {
                epoch: 1,
                offset: 1,
            },
            event: None,
            data: frame,
        };
        Transmit::Frame(roomcast_core::delivery::Delivery::unstreamed(
            message.encode(),
        ))
    }

    #[test]
    fn frames_the_socket_did_not_take_go_out_first_and_whole_once_it_wakes_the_writer() {
        let socket = Narrow::default();
        // Every frame is written out as it is queued, so a full socket shows at once.
        let config = WebSocketConfig::default().write_buffer_size(0);
        let mut transport = WsTransport::server(socket.clone(), config);
        let (first, second) = (text("1"), text("2"));
        let expected: Vec<u8> = [&first, &second]
            .into_iter()
            .flat_map(|transmit| {
                let Transmit::Frame(delivery) = transmit else {
                    unreachable!()
                };
                let body = delivery.frame.as_bytes();
                let mut bytes = vec![0x81, body.len() as u8];
                bytes.extend_from_slice(body);
                bytes
            })
            .collect();
        // The socket takes three bytes of the first frame; the rest waits in the queue.
        socket.make_room(3);
        let ready = |transport: &mut WsTransport<Narrow>| {
            block_on(poll_once(poll_fn(|cx| transport.poll_ready(cx))))
        };
        let flush = |transport: &mut WsTransport<Narrow>| {
            block_on(poll_once(poll_fn(|cx| transport.poll_flush(cx))))
        };
        assert!(matches!(ready(&mut transport), Some(Ok(()))));
        assert!(transport.start_send(first).is_ok(), "queued");
        assert!(flush(&mut transport).is_none(), "the socket is full");
        assert_eq!(socket.written(), expected[..3]);
        // The second frame waits for the first to go out.
        assert!(ready(&mut transport).is_none());
        // Room, and the waiting writer is woken: the first frame's rest, then the second.
        assert!(socket.make_room(expected.len()), "the writer left a waker");
        assert!(matches!(ready(&mut transport), Some(Ok(()))));
        assert!(transport.start_send(second).is_ok());
        assert!(matches!(flush(&mut transport), Some(Ok(()))));
        assert_eq!(socket.written(), expected);
    }

    #[test]
    fn the_handshake_answer_goes_out_with_the_first_frame_and_a_drained_queue_is_let_go() {
        let socket = Narrow::default();
        let head = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
        let config = WebSocketConfig::default().write_buffer_size(0);
        let mut transport = WsTransport::server_after(socket.clone(), config, head.clone());
        socket.make_room(usize::MAX / 2);
        let flush = |transport: &mut WsTransport<Narrow>| {
            block_on(poll_once(poll_fn(|cx| transport.poll_flush(cx))))
        };
        assert!(transport.start_send(text("1")).is_ok());
        assert!(matches!(flush(&mut transport), Some(Ok(()))));
        let written = socket.written();
        assert!(written.starts_with(&head), "the 101 first");
        assert_eq!(
            &written[head.len()..head.len() + 2],
            [0x81, 40],
            "then the frame"
        );
        assert_eq!(
            transport.bridge.queued.capacity(),
            0,
            "nothing kept once drained"
        );
    }

    /// One of the transport's `poll` methods, for the proptest's pump.
    type Step = dyn FnMut(&mut WsTransport<Narrow>, &mut Context<'_>) -> Poll<io::Result<()>>;

    /// A transmit of a proptest case: a text frame whose data is a string of this many bytes,
    /// or a ping.
    #[derive(Clone, Debug)]
    enum Sent {
        Text(usize),
        Ping,
    }

    fn sent() -> impl proptest::strategy::Strategy<Value = Sent> {
        use proptest::prelude::*;
        prop_oneof![
            // Frames of about 40 – 170 bytes, 65,480 – 65,580 (the 7-, 16- and 64-bit lengths
            // and their edges) and up to 3 KiB.
            4 => prop_oneof![0..130usize, 65_440..65_540usize, 0..3_000usize].prop_map(Sent::Text),
            1 => Just(Sent::Ping),
        ]
    }

    proptest::proptest! {
        /// Whatever the transmits (every length encoding, pings among them, a close last or
        /// not), however they are grouped into flushes and however little the socket takes at a
        /// time, the bytes on the socket are exactly tungstenite's encoding of those frames, in
        /// order.
        #[test]
        fn what_the_socket_takes_piece_by_piece_is_tungstenites_encoding_in_order(
            drains in proptest::collection::vec(proptest::collection::vec(sent(), 1..6), 1..6),
            rooms in proptest::collection::vec(1..5_000usize, 1..40),
            close in proptest::bool::ANY,
        ) {
            let socket = Narrow::default();
            let mut transport = WsTransport::server(socket.clone(), WebSocketConfig::default());
            let mut rooms = rooms.into_iter().cycle();
            let mut expected: Vec<u8> = Vec::new();
            let mut pump = |transport: &mut WsTransport<Narrow>,
                            poll: &mut Step| {
                for _ in 0..2_000_000 {
                    let waker = Waker::noop();
                    match poll(transport, &mut Context::from_waker(waker)) {
                        Poll::Ready(done) => return done,
                        Poll::Pending => {
                            socket.make_room(rooms.next().expect("cycled"));
                        }
                    }
                }
                panic!("the socket never took the writes");
            };
            for (n, drain) in drains.iter().enumerate() {
                for item in drain {
                    pump(&mut transport, &mut |t, cx| t.poll_ready(cx)).expect("ready");
                    let transmit = match item {
                        Sent::Text(len) => {
                            let transmit = text(&format!("\"{}\"", "x".repeat(*len)));
                            let Transmit::Frame(delivery) = &transmit else {
                                unreachable!()
                            };
                            let text = OpCode::Data(Data::Text);
                            Frame::message(delivery.frame.to_bytes(), text, true)
                                .format(&mut expected)
                                .expect("encoded");
                            transmit
                        }
                        Sent::Ping => {
                            Frame::ping(Bytes::new()).format(&mut expected).expect("encoded");
                            Transmit::Ping
                        }
                    };
                    transport.start_send(transmit).expect("queued");
                }
                if close && n + 1 == drains.len() {
                    pump(&mut transport, &mut |t, cx| t.poll_ready(cx)).expect("ready");
                    let close = Close::new(CloseCode::GoingAway, "bye");
                    Frame::close(Some(CloseFrame {
                        code: WsCloseCode::Away,
                        reason: "bye".into(),
                    }))
                    .format(&mut expected)
                    .expect("encoded");
                    transport.start_send(Transmit::Close(close)).expect("queued");
                }
                pump(&mut transport, &mut |t, cx| t.poll_flush(cx)).expect("flushed");
            }
            let written = socket.written();
            // Lengths first: a failure prints no 64 KiB payloads.
            proptest::prop_assert_eq!(written.len(), expected.len());
            proptest::prop_assert!(written == expected, "the bytes differ");
        }
    }
}
