//! STOMP over WebSocket as a roomcast [`Transport`]: the WebSocket's messages go through a
//! [`Bridge`] (`roomcast_core::stomp::bridge`), which turns the client's STOMP frames into the
//! session's requests and the session's frames into STOMP frames. The WebSocket carries the
//! frames as they are, or in SockJS's framing (`sockjs.rs`) for a SockJS client.

use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite};
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::session::Transmit;
use roomcast_core::stomp::bridge::{Bridge, BridgeEvent};

use crate::sockjs;
use crate::transport::{Inbound, Transport};
use crate::websocket::WsTransport;

/// How the WebSocket carries the STOMP frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// One or more frames per WebSocket message, as they are (`/stomp`).
    Plain,
    /// SockJS's `o`, `a[...]`, `h`, `c[...]` around them (`/stomp/<server>/<session>/websocket`).
    SockJs,
}

/// A STOMP connection over a WebSocket (subprotocol `v12.stomp`, `v11.stomp` or `v10.stomp`).
pub struct StompTransport<S> {
    ws: WsTransport<S>,
    framing: Framing,
    bridge: Bridge,
    /// The bridge ended the connection (an `ERROR` sent, or `DISCONNECT` answered): the next
    /// read says so, and the session closes after what is queued.
    closing: bool,
    /// The session's task, woken when a delivery made the bridge end the connection.
    waker: Option<Waker>,
    /// Scratch for the STOMP frames of one transmit.
    out: BytesMut,
    /// The bridge queued bytes of its own that no flush has written yet.
    unflushed: bool,
    /// What the bridge made of the client's frames, for the session, in order. At most what one
    /// WebSocket message holds (its size is bounded).
    inbound: VecDeque<Inbound>,
}

impl<S> StompTransport<S> {
    /// A STOMP connection over `ws`, its protocol state in `bridge`.
    pub fn new(ws: WsTransport<S>, bridge: Bridge) -> Self {
        Self {
            ws,
            framing: Framing::Plain,
            bridge,
            closing: false,
            waker: None,
            out: BytesMut::new(),
            unflushed: false,
            inbound: VecDeque::new(),
        }
    }

    /// The bridge (its state, the credentials its `CONNECT` carried).
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> StompTransport<S> {
    /// A STOMP connection of a SockJS client over `ws` (SockJS's WebSocket transport): the
    /// open frame goes first.
    pub fn sockjs(ws: WsTransport<S>, bridge: Bridge) -> io::Result<Self> {
        let mut transport = Self::new(ws, bridge);
        transport.framing = Framing::SockJs;
        transport.ws.queue_text(Bytes::from_static(sockjs::OPEN))?;
        transport.unflushed = true;
        Ok(transport)
    }

    /// Answers the client's `CONNECT` with `ERROR` (`message`, and `details` as its body): its
    /// credential did not pass. The caller then closes.
    pub fn refuse(&mut self, message: &str, details: &str) {
        self.bridge.refuse(message, details);
        let _ = self.pump();
    }

    /// Queues STOMP bytes for the client, in the connection's framing.
    fn send_text(&mut self, bytes: Bytes) -> io::Result<()> {
        match self.framing {
            Framing::Plain => self.ws.queue_text(bytes),
            Framing::SockJs => self.ws.queue_text(sockjs::messages([&bytes[..]])),
        }
    }

    /// Feeds what a WebSocket message held to the bridge; `false` for a SockJS frame that is
    /// not one (the connection is then broken off).
    fn feed(&mut self, bytes: &[u8]) -> bool {
        if self.framing == Framing::Plain {
            self.bridge.handle_bytes(bytes);
            return true;
        }
        let Some(messages) = std::str::from_utf8(bytes)
            .ok()
            .and_then(sockjs::client_messages)
        else {
            return false;
        };
        for message in messages {
            self.bridge.handle_bytes(message.as_bytes());
        }
        true
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> StompTransport<S> {
    /// Acts on the bridge's events: bytes go out now; requests and signs of life wait in
    /// `inbound` for the session, in order.
    fn pump(&mut self) -> io::Result<()> {
        while let Some(event) = self.bridge.poll_event() {
            match event {
                BridgeEvent::Request(text) => self.inbound.push_back(Inbound::Text(text)),
                BridgeEvent::Send(bytes) => {
                    self.send_text(bytes)?;
                    self.unflushed = true;
                }
                // One sign of life stands for several in a row.
                BridgeEvent::Alive if self.inbound.back() != Some(&Inbound::Pong) => {
                    self.inbound.push_back(Inbound::Pong);
                }
                BridgeEvent::Close => self.closing = true,
                _ => {}
            }
        }
        Ok(())
    }

    /// Ends the session once the bridge did: a normal close after the frames queued.
    fn ended(&mut self) -> Option<Inbound> {
        self.closing.then(|| {
            self.closing = false;
            Inbound::Failed(Close::new(CloseCode::Normal, "STOMP connection ended"))
        })
    }
}

impl<S> Transport for StompTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // A delivery can end the connection (an `ERROR` for a refused request): reads are polled
    // on every wake-up so that the close is seen.
    const RECV_WAKES: bool = false;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        self.waker = Some(cx.waker().clone());
        loop {
            if self.pump().is_err() {
                return Poll::Ready(None);
            }
            // After an `ERROR` nothing more of the client's reaches the session: it was told
            // its frames failed, and a request run anyway would be stored twice on its retry.
            if self.closing {
                self.inbound.clear();
            }
            if let Some(inbound) = self.inbound.pop_front() {
                return Poll::Ready(Some(inbound));
            }
            if let Some(inbound) = self.ended() {
                return Poll::Ready(Some(inbound));
            }
            let bytes: Bytes = match std::task::ready!(self.ws.poll_recv(cx)) {
                Some(Inbound::Text(text)) => Bytes::from(text),
                Some(Inbound::Binary(bytes)) => Bytes::from(bytes),
                other => return Poll::Ready(other),
            };
            if !self.feed(&bytes) {
                let close = Close::new(CloseCode::Other(1002), "not a SockJS frame");
                return Poll::Ready(Some(Inbound::Failed(close)));
            }
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ws.poll_ready(cx)
    }

    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        match transmit {
            Transmit::Frame(delivery) => {
                self.bridge.handle_delivery(&delivery, &mut self.out);
                if !self.out.is_empty() {
                    let frames = self.out.split().freeze();
                    self.send_text(frames)?;
                }
                // An `ERROR` (a refused request) goes out, and the connection ends after it:
                // the next read says so.
                self.pump()?;
                if self.closing
                    && let Some(waker) = &self.waker
                {
                    waker.wake_by_ref();
                }
                Ok(())
            }
            Transmit::Ping => {
                if self.framing == Framing::SockJs {
                    self.ws.queue_text(Bytes::from_static(sockjs::HEARTBEAT))?;
                }
                if self.bridge.sends_heart_beats() {
                    self.send_text(Bytes::from_static(b"\n"))?;
                }
                self.ws.start_send(Transmit::Ping)
            }
            Transmit::Close(close) if self.framing == Framing::SockJs => {
                let frame = sockjs::close(close.code.as_u16(), &close.reason);
                self.ws.queue_text(frame)?;
                self.ws.start_send(Transmit::Close(close))
            }
            other => self.ws.start_send(other),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = std::task::ready!(self.ws.poll_flush(cx));
        self.unflushed = false;
        Poll::Ready(flushed)
    }

    fn wants_flush(&self) -> bool {
        self.unflushed
    }
}
