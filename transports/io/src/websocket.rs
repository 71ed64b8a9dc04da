//! WebSocket as a roomcast [`Transport`]: async-tungstenite over any async byte stream.

use std::io;
use std::task::{Context, Poll};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::protocol::frame::coding::{
    CloseCode as WsCloseCode, Data, OpCode,
};
use async_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
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

/// A WebSocket connection.
pub struct WsTransport<S> {
    ws: WebSocketStream<S>,
    /// A read that found nothing is not tried again until the socket wakes the gate.
    gate: Gate,
}

impl<S> WsTransport<S> {
    /// Wraps an accepted (or connected) WebSocket.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            gate: Gate::default(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsTransport<S> {
    /// The next message, reading the socket only on the first poll after a message or after
    /// the socket woke the gate: tungstenite zero-fills its read buffer before each read, and
    /// smol's sockets try a `recvfrom` before waiting (see [`Gate`]). After a message the next
    /// poll reads: tungstenite may hold more frames of the same read.
    fn poll_gated(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, WsError>>> {
        let ws = &mut self.ws;
        self.gate.poll(cx, |cx| ws.poll_next_unpin(cx))
    }
}

impl<S> Transport for WsTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn recv(&mut self) -> Option<Inbound> {
        loop {
            let message = match futures_lite::future::poll_fn(|cx| self.poll_gated(cx)).await? {
                Ok(message) => message,
                Err(error) => return failed(error),
            };
            return Some(match message {
                Message::Text(text) => Inbound::Text(text.as_str().to_owned()),
                Message::Binary(bytes) => Inbound::Binary(bytes.to_vec()),
                // tungstenite queues the pong itself; send it now, not at the next write, or a
                // client with a pong timeout (Python websockets: 20 s) gives up on us.
                Message::Ping(_) => {
                    let _ = self.ws.flush().await;
                    Inbound::Pong
                }
                Message::Pong(_) => Inbound::Pong,
                Message::Close(frame) => Inbound::Close(frame.map(|frame| {
                    Close::new(
                        CloseCode::from_u16(frame.code.into()),
                        frame.reason.as_str(),
                    )
                })),
                Message::Frame(_) => continue,
            });
        }
    }

    async fn send(&mut self, transmit: Transmit) -> io::Result<()> {
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
        self.ws.feed(message).await.map_err(io_error)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.ws.flush().await.map_err(io_error)
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
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use async_tungstenite::tungstenite::protocol::Role;
    use futures_lite::future::{block_on, poll_once};

    use super::*;
    use crate::gate::tests::Counted;

    #[test]
    fn the_socket_is_read_again_only_once_it_woke_the_reader() {
        let socket = Counted::default();
        let (reads, data) = (Arc::clone(&socket.reads), Arc::clone(&socket.data));
        let ws = block_on(WebSocketStream::from_raw_socket(socket, Role::Server, None));
        let mut transport = WsTransport::new(ws);
        assert!(
            block_on(poll_once(transport.recv())).is_none(),
            "nothing to read"
        );
        let after_first = reads.load(Ordering::SeqCst);
        // The session wakes for other reasons (deliveries, timers) and polls again: no read.
        for _ in 0..5 {
            assert!(block_on(poll_once(transport.recv())).is_none());
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
        let received = block_on(poll_once(transport.recv())).flatten();
        assert_eq!(received, Some(Inbound::Text("hi".to_owned())));
        assert!(reads.load(Ordering::SeqCst) > after_first);
    }
}
