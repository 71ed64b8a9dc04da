//! WebSocket as a roomcast [`Transport`]: tungstenite over any async byte stream, driven by the
//! session's task; and the plain echo socket, on async-tungstenite.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::frame::coding::{
    CloseCode as WsCloseCode, Data, OpCode,
};
use async_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use async_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use async_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use futures_lite::{AsyncRead, AsyncWrite};
use futures_util::{SinkExt, StreamExt};
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::session::{SessionConfig, Transmit};

use crate::gate::Gate;
use crate::transport::{Inbound, Transport};

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
pub struct WsTransport<S> {
    ws: WebSocket<Bridge<S>>,
    /// A read that found nothing is not tried again until the socket wakes the gate.
    gate: Gate,
    /// The last write left frames in tungstenite's buffer that the socket did not take: the
    /// next frame waits for a flush (async-tungstenite's `Sink::poll_ready`).
    blocked: bool,
    /// A read ended the connection (closed, or an error already reported): no more reads.
    ended: bool,
    /// A ping came: its pong, queued by tungstenite, is flushed before the ping counts as
    /// input.
    pong_queued: bool,
}

impl<S> WsTransport<S> {
    /// The server's side of an accepted WebSocket (the handshake done).
    pub fn server(io: S, config: WebSocketConfig) -> Self {
        Self::new(io, Role::Server, config)
    }

    /// Either side of a WebSocket whose handshake is done.
    pub fn new(io: S, role: Role, config: WebSocketConfig) -> Self {
        let bridge = Bridge { io, waker: None };
        Self {
            ws: WebSocket::from_raw_socket(bridge, role, Some(config)),
            gate: Gate::default(),
            blocked: false,
            ended: false,
            pong_queued: false,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsTransport<S> {
    /// Runs one tungstenite call with `cx`'s waker for the socket: a socket that would block
    /// makes it `Pending`.
    fn drive<T>(
        ws: &mut WebSocket<Bridge<S>>,
        cx: &Context<'_>,
        call: impl FnOnce(&mut WebSocket<Bridge<S>>) -> Result<T, WsError>,
    ) -> Poll<Result<T, WsError>> {
        ws.get_mut().use_waker(cx.waker());
        match call(ws) {
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            done => Poll::Ready(done),
        }
    }

    /// The next message, reading the socket only on the first poll after a message or after
    /// the socket woke the gate: tungstenite zero-fills its read buffer before each read, and
    /// smol's sockets try a `recvfrom` before waiting (see [`Gate`]). After a message the next
    /// poll reads: tungstenite may hold more frames of the same read.
    fn poll_gated(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, WsError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let (ws, ended) = (&mut self.ws, &mut self.ended);
        self.gate.poll(cx, |cx| {
            Self::drive(ws, cx, WebSocket::read).map(|read| match read {
                Ok(message) => Some(Ok(message)),
                Err(error) => {
                    *ended = true;
                    match error {
                        WsError::AlreadyClosed | WsError::ConnectionClosed => None,
                        error => Some(Err(error)),
                    }
                }
            })
        })
    }

    /// Writes out what tungstenite holds.
    fn poll_flush_ws(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let flushed = ready!(Self::drive(&mut self.ws, cx, WebSocket::flush));
        self.blocked = false;
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
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        loop {
            // tungstenite queued the pong itself; send it now, not at the next write, or a
            // client with a pong timeout (Python websockets: 20 s) gives up on us.
            if self.pong_queued {
                let _ = ready!(self.poll_flush_ws(cx));
                self.pong_queued = false;
                return Poll::Ready(Some(Inbound::Pong));
            }
            let message = match ready!(self.poll_gated(cx)) {
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

    /// A buffer the socket did not take is written out before the next frame, so what waits
    /// is bounded by tungstenite's `max_write_buffer_size` (async-tungstenite's `poll_ready`).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.blocked {
            ready!(self.poll_flush_ws(cx)).map_err(io_error)?;
        }
        Poll::Ready(Ok(()))
    }

    /// Queues the frame in tungstenite's buffer, with the waker of the last poll: a write the
    /// socket does not take whole only leaves the rest in the buffer, and whatever waits for it
    /// next (a flush) polls with its own.
    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        let message = match transmit {
            // A ready text frame over the shared bytes: no copy, no UTF-8 check per recipient.
            Transmit::Frame(delivery) => Message::Frame(Frame::message(
                delivery.frame.to_bytes(),
                OpCode::Data(Data::Text),
                true,
            )),
            Transmit::Ping => Message::Ping(Bytes::new()),
            Transmit::Close(close) => Message::Close(Some(CloseFrame {
                code: WsCloseCode::from(close.code.as_u16()),
                reason: close.reason.into(),
            })),
            // Keep-alive comments are for SSE; a WebSocket session pings instead.
            _ => return Ok(()),
        };
        match self.ws.write(message) {
            Ok(()) => Ok(()),
            // Queued; the socket took only part of the buffer.
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                self.blocked = true;
                Ok(())
            }
            Err(error) => Err(io_error(error)),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_ws(cx).map_err(io_error)
    }
}

/// An async byte stream as the blocking `Read` and `Write` tungstenite calls: a poll that is
/// pending is `WouldBlock`, and it registers the waker of the poll driving the socket.
struct Bridge<S> {
    io: S,
    /// The waker of the current poll, kept between polls: a task's waker stays the same, so it
    /// is cloned only when it changes.
    waker: Option<Waker>,
}

impl<S> Bridge<S> {
    fn use_waker(&mut self, waker: &Waker) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.waker = Some(waker.clone());
        }
    }

    /// Polls the stream with the current waker (none before the first poll: nothing waits).
    fn poll<T>(
        &mut self,
        poll: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> io::Result<T>
    where
        S: Unpin,
    {
        let waker = self.waker.as_ref().unwrap_or(Waker::noop());
        match poll(Pin::new(&mut self.io), &mut Context::from_waker(waker)) {
            Poll::Ready(done) => done,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: AsyncRead + Unpin> Read for Bridge<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.poll(|io, cx| io.poll_read(cx, buf))
    }
}

impl<S: AsyncWrite + Unpin> Write for Bridge<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.poll(|io, cx| io.poll_write(cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.poll(|io, cx| io.poll_flush(cx))
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    use std::future::poll_fn;

    use futures_lite::future::{block_on, poll_once};

    use super::*;
    use crate::gate::tests::Counted;

    #[test]
    fn the_socket_is_read_again_only_once_it_woke_the_reader() {
        let socket = Counted::default();
        let (reads, data) = (Arc::clone(&socket.reads), Arc::clone(&socket.data));
        let mut transport = WsTransport::server(socket, WebSocketConfig::default());
        assert!(
            block_on(poll_once(poll_fn(|cx| transport.poll_recv(cx)))).is_none(),
            "nothing to read"
        );
        let after_first = reads.load(Ordering::SeqCst);
        // The session wakes for other reasons (deliveries, timers) and polls again: no read.
        for _ in 0..5 {
            assert!(block_on(poll_once(poll_fn(|cx| transport.poll_recv(cx)))).is_none());
        }
        assert_eq!(reads.load(Ordering::SeqCst), after_first);
        // A masked client text frame "hi" arrives, and the socket wakes its reader.
        let mask = [1u8, 2, 3, 4];
        let frame = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ mask[0], b'i' ^ mask[1]];
        let waker = {
            let mut data = data.lock().expect("not poisoned");
            data.0.extend_from_slice(&frame);
            data.1.take().expect("the socket kept a waker")
        };
        waker.wake();
        let received = block_on(poll_once(poll_fn(|cx| transport.poll_recv(cx)))).flatten();
        assert_eq!(received, Some(Inbound::Text("hi".to_owned())));
        assert!(reads.load(Ordering::SeqCst) > after_first);
    }

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
        // The socket takes three bytes of the first frame; the rest waits in the buffer.
        socket.make_room(3);
        let ready = |transport: &mut WsTransport<Narrow>| {
            block_on(poll_once(poll_fn(|cx| transport.poll_ready(cx))))
        };
        assert!(matches!(ready(&mut transport), Some(Ok(()))));
        assert!(transport.start_send(first).is_ok(), "queued");
        // The second frame waits for the first to go out: the socket is full.
        assert!(ready(&mut transport).is_none());
        assert_eq!(socket.written(), expected[..3]);
        // Room, and the waiting writer is woken: the first frame's rest, then the second.
        assert!(socket.make_room(expected.len()), "the writer left a waker");
        assert!(matches!(ready(&mut transport), Some(Ok(()))));
        assert!(transport.start_send(second).is_ok());
        assert!(matches!(
            block_on(poll_once(poll_fn(|cx| transport.poll_flush(cx)))),
            Some(Ok(()))
        ));
        assert_eq!(socket.written(), expected);
    }
}
