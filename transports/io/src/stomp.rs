//! STOMP as a roomcast [`Transport`]: the messages of a transport of text (a WebSocket, or one
//! of SockJS's transports) go through a [`Bridge`] (`roomcast_core::stomp::bridge`), which
//! turns the client's STOMP frames into the session's requests and the session's frames into
//! STOMP frames.

use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::session::Transmit;
use roomcast_core::stomp::bridge::{Bridge, BridgeEvent};

use crate::transport::{Inbound, TextTransport, Transport};

/// A STOMP connection over a transport of text messages `C`: a WebSocket (subprotocol
/// `v12.stomp`, `v11.stomp` or `v10.stomp`), or one of SockJS's transports (`sockjs/`).
pub struct StompTransport<C> {
    carrier: C,
    bridge: Bridge,
    /// The bridge ended the connection (an `ERROR` sent, or `DISCONNECT` answered): the next
    /// read says so, and the session closes after what is queued.
    closing: bool,
    /// The session's task, woken when a delivery made the bridge end the connection.
    waker: Option<Waker>,
    /// The STOMP frames written since the last flush, sent as one message of the carrier at
    /// the flush (or once they reach [`COALESCE`]): a burst's frames cost one allocation and
    /// one WebSocket frame, not one each. STOMP over WebSocket allows several frames in a
    /// message, and every client reads them so.
    out: BytesMut,
    /// The bridge queued bytes of its own that no flush has written yet.
    unflushed: bool,
    /// What the bridge made of the client's frames, for the session, in order. At most what one
    /// message of the carrier holds (its size is bounded).
    inbound: VecDeque<Inbound>,
}

/// The frames written since a flush that go out as one message without waiting for it: a
/// client reads a message whole before it parses it.
const COALESCE: usize = 16 * 1024;

impl<C> StompTransport<C> {
    /// A STOMP connection over `carrier`, its protocol state in `bridge`.
    pub fn new(carrier: C, bridge: Bridge) -> Self {
        Self {
            carrier,
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

impl<C: TextTransport> StompTransport<C> {
    /// Answers the client's `CONNECT` with `ERROR` (`message`, and `details` as its body): its
    /// credential did not pass. The caller then closes.
    pub fn refuse(&mut self, message: &str, details: &str) {
        self.bridge.refuse(message, details);
        let _ = self.pump();
    }

    /// Acts on the bridge's events: bytes join what goes out at the flush; requests and signs
    /// of life wait in `inbound` for the session, in order.
    fn pump(&mut self) -> io::Result<()> {
        while let Some(event) = self.bridge.poll_event() {
            match event {
                BridgeEvent::Request(text) => self.inbound.push_back(Inbound::Text(text)),
                BridgeEvent::Send(bytes) => {
                    self.out.extend_from_slice(&bytes);
                    self.unflushed = true;
                    self.queue_if_large()?;
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

    /// Hands the frames written so far to the carrier, as one message.
    fn queue_out(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        // Taken whole: no spare capacity stays behind to hold the buffer while idle.
        let frames = std::mem::take(&mut self.out).freeze();
        self.carrier.queue_text(frames)
    }

    /// [`queue_out`](Self::queue_out) once the frames written reach [`COALESCE`].
    fn queue_if_large(&mut self) -> io::Result<()> {
        match self.out.len() >= COALESCE {
            true => self.queue_out(),
            false => Ok(()),
        }
    }

    /// Ends the session once the bridge did: a normal close after the frames queued.
    fn ended(&mut self) -> Option<Inbound> {
        self.closing.then(|| {
            self.closing = false;
            Inbound::Failed(Close::new(CloseCode::Normal, "STOMP connection ended"))
        })
    }
}

impl<C: TextTransport> Transport for StompTransport<C> {
    /// As the carrier's: a pending read is the carrier's, and a delivery that makes a read
    /// ready (the bridge ended the connection, or queued a request) wakes the reader.
    const RECV_WAKES: bool = C::RECV_WAKES;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
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
                // Drained: an idle connection keeps no buffer for its last frame's requests.
                if self.inbound.is_empty() {
                    self.inbound = VecDeque::new();
                }
                return Poll::Ready(Some(inbound));
            }
            if let Some(inbound) = self.ended() {
                return Poll::Ready(Some(inbound));
            }
            match std::task::ready!(self.carrier.poll_recv(cx)) {
                Some(Inbound::Text(text)) => self.bridge.handle_bytes(text.as_bytes()),
                Some(Inbound::Binary(bytes)) => self.bridge.handle_bytes(&bytes),
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.carrier.poll_ready(cx)
    }

    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        match transmit {
            Transmit::Frame(delivery) => {
                self.bridge.handle_delivery(&delivery, &mut self.out);
                self.queue_if_large()?;
                // An `ERROR` (a refused request) goes out, and the connection ends after it:
                // the next read says so, woken for it.
                self.pump()?;
                if (self.closing || !self.inbound.is_empty())
                    && let Some(waker) = &self.waker
                {
                    waker.wake_by_ref();
                }
                Ok(())
            }
            Transmit::Ping => {
                if self.bridge.sends_heart_beats() {
                    self.out.extend_from_slice(b"\n");
                }
                self.carrier.start_send(Transmit::Ping)
            }
            other => {
                // The close goes after every frame written.
                self.queue_out()?;
                self.carrier.start_send(other)
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.queue_out()?;
        let flushed = std::task::ready!(self.carrier.poll_flush(cx));
        self.unflushed = false;
        Poll::Ready(flushed)
    }

    fn wants_flush(&self) -> bool {
        self.unflushed || self.carrier.wants_flush()
    }
}
