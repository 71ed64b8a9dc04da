//! SockJS's WebSocket transport: the SockJS framing over a WebSocket. The server opens with
//! `o`, sends messages as `a[...]`, a heartbeat as `h` beside the WebSocket ping, and ends with
//! `c[code,"reason"]` before the close; each client message is a JSON array of strings.

use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncWrite};
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::session::Transmit;
use roomcast_core::sockjs::frame::{self, ClientFrameError};

use crate::transport::{Inbound, TextTransport, Transport};
use crate::websocket::WsTransport;

/// A SockJS client on SockJS's WebSocket transport (`/<base>/<server>/<session>/websocket`).
pub struct SockJsWs<S> {
    ws: WsTransport<S>,
    /// The messages of the client's last frame not yet read: at most what one WebSocket
    /// message holds (its size is bounded).
    inbound: VecDeque<String>,
    /// The open frame waits for a flush.
    unflushed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> SockJsWs<S> {
    /// SockJS over `ws`, its open frame queued.
    pub fn new(mut ws: WsTransport<S>) -> io::Result<Self> {
        ws.queue_text(Bytes::from_static(frame::OPEN))?;
        Ok(Self {
            ws,
            inbound: VecDeque::new(),
            unflushed: true,
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for SockJsWs<S> {
    /// A pending read is the socket's (the client's messages are all read first).
    const RECV_WAKES: bool = true;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        loop {
            if let Some(message) = self.inbound.pop_front() {
                return Poll::Ready(Some(Inbound::Text(message)));
            }
            let bytes = match ready!(self.ws.poll_recv(cx)) {
                Some(Inbound::Text(text)) => text.into_bytes(),
                Some(Inbound::Binary(bytes)) => bytes,
                other => return Poll::Ready(other),
            };
            match frame::client_messages(&bytes) {
                Ok(messages) => self.inbound.extend(messages),
                // An empty message carries nothing (sockjs-node skips it too).
                Err(ClientFrameError::Empty) => {}
                Err(ClientFrameError::Broken) => {
                    let close = Close::new(CloseCode::Other(1002), "not a SockJS frame");
                    return Poll::Ready(Some(Inbound::Failed(close)));
                }
            }
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ws.poll_ready(cx)
    }

    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        match transmit {
            Transmit::Frame(delivery) => self
                .ws
                .queue_text(frame::messages([delivery.frame.as_bytes()])),
            Transmit::Ping => {
                self.ws.queue_text(Bytes::from_static(frame::HEARTBEAT))?;
                self.ws.start_send(Transmit::Ping)
            }
            Transmit::Close(close) => {
                let frame = frame::close(close.code.as_u16(), &close.reason);
                self.ws.queue_text(frame)?;
                self.ws.start_send(Transmit::Close(close))
            }
            other => self.ws.start_send(other),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = ready!(self.ws.poll_flush(cx));
        self.unflushed = false;
        Poll::Ready(flushed)
    }

    fn wants_flush(&self) -> bool {
        self.unflushed
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> TextTransport for SockJsWs<S> {
    fn queue_text(&mut self, text: Bytes) -> io::Result<()> {
        self.ws.queue_text(frame::messages([&text[..]]))
    }
}
