//! A session's inputs from its client: frames, pongs, closes; the frame limit and the rate
//! limit they pass first.

use std::time::Instant;

use super::{Session, SessionError, SessionEvent, SessionKind, SessionState, error_frame};
use crate::close::{Close, CloseCode};
use crate::envelope::{ClientMessage, ErrorCode, Ref, Reply, ServerMessage};

impl Session {
    /// A text frame from the client. Counts as a sign of life. Over `max_frame`: close 1009,
    /// unread. Over the rate: `rate_limited` with the frame's `ref` (the message is dropped),
    /// and when rejections keep coming faster than `abuse_rate_per_sec`: close 1008. Otherwise
    /// decoded: errors are answered, `ping` is answered, the rest become events. Ignored unless
    /// open. `Err` only for an SSE session (one-way), whose state is left unchanged.
    pub fn handle_text(&mut self, now: Instant, text: &str) -> Result<(), SessionError> {
        if !self.inbound(now)? {
            return Ok(());
        }
        if self.too_big(now, text.len()) {
            return Ok(());
        }
        if !self.rate.try_take(now) {
            let reference = match self.codec.decode_client(text) {
                Ok(envelope) => envelope.reference,
                Err(error) => error.reference,
            };
            self.rate_limited(now, reference);
            return Ok(());
        }
        match self.codec.decode_client(text) {
            Err(error) => self.send(now, error.to_frame()),
            Ok(envelope) => match envelope.message {
                ClientMessage::Ping => {
                    // Counted first: its answer may be what closes the session (over budget).
                    self.events.push_back(SessionEvent::Pinged);
                    if let Some(reference) = envelope.reference {
                        self.send(now, ServerMessage::Reply(Reply::to(reference)).encode());
                    }
                }
                ClientMessage::App(_) => self.events.push_back(SessionEvent::App(envelope)),
                _ => self.events.push_back(SessionEvent::Request(envelope)),
            },
        }
        Ok(())
    }

    /// A binary frame from the client: a sign of life, answered `bad_frame` (protocol v1 has no
    /// binary frames), under the same rate limit as text. Ignored unless open; `Err` for SSE.
    pub fn handle_binary(&mut self, now: Instant, bytes: &[u8]) -> Result<(), SessionError> {
        if !self.inbound(now)? || self.too_big(now, bytes.len()) {
            return Ok(());
        }
        if !self.rate.try_take(now) {
            self.rate_limited(now, None);
            return Ok(());
        }
        let message = "binary frames are not part of protocol v1";
        self.send(now, error_frame(ErrorCode::BadFrame, None, message));
        Ok(())
    }

    /// A frame over `max_frame`, text or binary, is not read: the session closes with 1009.
    fn too_big(&mut self, now: Instant, len: usize) -> bool {
        if len <= self.config.max_frame {
            return false;
        }
        let limit = self.config.max_frame;
        let reason = format!("frame of {len} bytes is over the limit of {limit}");
        self.close_with(now, Close::new(CloseCode::TooBig, reason));
        true
    }

    /// A WebSocket pong: a sign of life. `Err` for SSE.
    pub fn handle_pong(&mut self, now: Instant) -> Result<(), SessionError> {
        self.inbound(now).map(drop)
    }

    /// The peer closed (WebSocket close frame `Some`, or a close without a code or a dropped
    /// connection `None`). Open: the close is echoed (same code, or 1000) and the session is
    /// closed. Closing (we closed first): the handshake is complete, the session is closed.
    pub fn handle_close(&mut self, now: Instant, close: Option<Close>) {
        match self.state {
            SessionState::Handshake | SessionState::Open => {
                let close = close.map_or_else(
                    || Close::new(CloseCode::Normal, ""),
                    |close| Close::new(close.code, close.reason),
                );
                self.close_with(now, close);
                self.closed();
            }
            SessionState::Closing => self.closed(),
            SessionState::Closed => {}
        }
    }

    /// Common to inbound frames: refuses them on SSE, records the sign of life, and says
    /// whether the session is open to read them.
    fn inbound(&mut self, now: Instant) -> Result<bool, SessionError> {
        if self.kind == SessionKind::Sse {
            return Err(SessionError::OneWay);
        }
        if let Some(heartbeat) = &mut self.heartbeat {
            heartbeat.on_inbound(now);
        }
        Ok(self.state == SessionState::Open)
    }

    /// A message over the rate: answered `rate_limited`, unless rejections, too, are over their
    /// rate: that is sustained abuse, and the session closes with 1008.
    fn rate_limited(&mut self, now: Instant, reference: Option<Ref>) {
        if !self.abuse.try_take(now) {
            let reason = "sustained abuse of the rate limit";
            self.close_with(now, Close::new(CloseCode::Policy, reason));
            return;
        }
        let message = format!(
            "slow down: the limit is {} messages per second",
            self.config.rate_per_sec
        );
        self.send(now, error_frame(ErrorCode::RateLimited, reference, message));
    }
}
