//! A session of SockJS's HTTP transports, which outlives the requests that carry it.
//!
//! The client receives by one request at a time (a *receiver*): an `xhr` poll answers one frame
//! and ends; an `xhr_streaming` or `eventsource` response streams frames until it has carried
//! [`HttpConfig::response_limit`] bytes, then ends so that the client opens another (browsers
//! keep a streaming response's bytes in memory). The client sends by `xhr_send` requests, each a
//! JSON array of messages. Between receivers the session keeps what it has to send.
//!
//! The rules (the SockJS protocol 0.3.3, and sockjs-node and Spring, which serve it):
//! - the first frame a session sends is `o`; then `a[...]` with every message waiting, `h` for a
//!   heartbeat, and `c[code,"reason"]` once the server closed it, to that receiver and every
//!   later one;
//! - a receiver while another is attached gets `c[2010,"Another connection still open"]` and
//!   ends; the session goes on with the first;
//! - a receiver the client broke off before it ended closes the session with
//!   `c[1002,"Connection interrupted"]`: the client may have lost what it carried, and a
//!   roomcast client then resumes from the last message it saw;
//! - a session with no receiver for [`HttpConfig::disconnect_delay`] (5 s) has expired.
//!
//! Time comes in with each call that needs it; [`HttpSession::poll_timeout`] says when to call
//! [`HttpSession::handle_timeout`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{self, ClientFrameError};

/// The limits of an HTTP session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// How long a session without a receiver lives (the protocol's 5 s).
    pub disconnect_delay: Duration,
    /// The bytes after which a streaming response ends (128 KiB, as sockjs-node and Spring).
    pub response_limit: usize,
    /// The bytes of messages that may wait for a receiver; at it [`HttpSession::has_room`] says
    /// no, and the caller holds its messages back (its own queue then decides).
    pub max_pending: usize,
    /// The bytes of the client's messages that may wait to be read; above it
    /// [`HttpSession::receive`] answers [`Received::Busy`] and `xhr_send` waits.
    pub max_inbound: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            disconnect_delay: Duration::from_secs(5),
            response_limit: 128 * 1024,
            max_pending: 256 * 1024,
            max_inbound: 256 * 1024,
        }
    }
}

/// A transport that receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Receiving {
    /// `POST .../xhr`: one frame per request, each followed by `\n`.
    Xhr,
    /// `POST .../xhr_streaming`: a prelude of 2,048 `h` and `\n`, then frames each followed by
    /// `\n`.
    XhrStreaming,
    /// `GET .../eventsource`: `\r\n`, then each frame as `data: <frame>\r\n\r\n`.
    EventSource,
}

impl Receiving {
    /// Whether a response carries more than one frame.
    pub fn streams(self) -> bool {
        self != Self::Xhr
    }

    /// What a response starts with.
    pub fn prelude(self) -> &'static [u8] {
        static XHR_STREAMING: [u8; 2049] = {
            let mut prelude = [b'h'; 2049];
            prelude[2048] = b'\n';
            prelude
        };
        match self {
            Self::Xhr => b"",
            Self::XhrStreaming => &XHR_STREAMING,
            Self::EventSource => b"\r\n",
        }
    }

    /// `frame` as this transport writes it, appended to `out`.
    pub fn write(self, frame: &[u8], out: &mut BytesMut) {
        match self {
            Self::Xhr | Self::XhrStreaming => {
                out.put_slice(frame);
                out.put_u8(b'\n');
            }
            Self::EventSource => {
                // A frame is JSON or one letter: no line break in it.
                out.put_slice(b"data: ");
                out.put_slice(frame);
                out.put_slice(b"\r\n\r\n");
            }
        }
    }
}

/// Which receiver, as [`HttpSession::attach`] named it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverId(u64);

/// The answer to [`HttpSession::attach`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attach {
    /// The receiver is the session's: write the prelude, then what [`HttpSession::take`] gives.
    Accepted {
        /// The receiver, for `take` and `detach`.
        id: ReceiverId,
        /// The response's first bytes (empty for `xhr`).
        prelude: Bytes,
    },
    /// Not the session's: the whole response (the prelude and a close frame), then its end.
    Refused(Bytes),
}

/// Bytes for a receiver, from [`HttpSession::take`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    /// The frames, as the receiver's transport writes them.
    pub bytes: Bytes,
    /// The response ends after these bytes (an `xhr` answer, a streaming response at its
    /// limit, a close frame): the receiver is detached, as finished.
    pub last: bool,
}

/// The answer to [`HttpSession::receive`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// The messages wait for [`HttpSession::next_inbound`] (`xhr_send` answers 204).
    Queued,
    /// Not read: the messages waiting are over [`HttpConfig::max_inbound`]; try again once they
    /// were read.
    Busy,
    /// The frame is not one (`xhr_send` answers 500 with [`ClientFrameError::message`]).
    Invalid(ClientFrameError),
    /// The session has ended: nothing more is read.
    Ended,
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server closed it with this code and reason.
    Closed(u16, String),
    /// A receiver was broken off by the client (`c[1002,"Connection interrupted"]`).
    Interrupted,
    /// No receiver came within the disconnect delay.
    Expired,
}

/// The close code and reason of an interrupted session.
const INTERRUPTED: (u16, &str) = (1002, "Connection interrupted");
/// The close code and reason a second receiver gets.
const ANOTHER: (u16, &str) = (2010, "Another connection still open");

#[derive(Clone, Copy, Debug)]
struct Attached {
    id: ReceiverId,
    kind: Receiving,
    /// Bytes written to this response so far.
    written: usize,
}

/// One SockJS session over the HTTP transports. See the module's documentation.
#[derive(Debug)]
pub struct HttpSession {
    config: HttpConfig,
    /// `o` was taken.
    opened: bool,
    /// Messages waiting for a receiver, in order.
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    /// A heartbeat waits for the receiver.
    heartbeat: bool,
    receiver: Option<Attached>,
    next_id: u64,
    /// Since when the session has no receiver (it expires `disconnect_delay` later).
    idle_since: Option<Instant>,
    ending: Option<Ending>,
    /// The client's messages, not yet read.
    inbound: VecDeque<String>,
    inbound_bytes: usize,
}

impl HttpSession {
    /// A session created at `now`, with no receiver yet.
    pub fn new(config: HttpConfig, now: Instant) -> Self {
        Self {
            config,
            opened: false,
            pending: VecDeque::new(),
            pending_bytes: 0,
            heartbeat: false,
            receiver: None,
            next_id: 0,
            idle_since: Some(now),
            ending: None,
            inbound: VecDeque::new(),
            inbound_bytes: 0,
        }
    }

    /// A receiving request of `kind` arrived at `now`.
    pub fn attach(&mut self, kind: Receiving, now: Instant) -> Attach {
        self.handle_timeout(now);
        let refused = |(code, reason): (u16, &str)| {
            let mut out = BytesMut::from(kind.prelude());
            kind.write(&frame::close(code, reason), &mut out);
            Attach::Refused(out.freeze())
        };
        if self.receiver.is_some() {
            return refused(ANOTHER);
        }
        // An expired session is gone for its caller too; it answers as a closed one would.
        if let Some(Ending::Expired) = self.ending {
            return refused(INTERRUPTED);
        }
        let id = ReceiverId(self.next_id);
        self.next_id += 1;
        self.receiver = Some(Attached {
            id,
            kind,
            written: 0,
        });
        self.idle_since = None;
        Attach::Accepted {
            id,
            prelude: Bytes::from_static(kind.prelude()),
        }
    }

    /// What receiver `id` should write now; `None` when there is nothing yet (or `id` is not
    /// the receiver).
    pub fn take(&mut self, id: ReceiverId, now: Instant) -> Option<Taken> {
        let attached = self.receiver.filter(|a| a.id == id)?;
        let kind = attached.kind;
        let mut out = BytesMut::new();
        let mut last = false;
        loop {
            if !self.opened {
                self.opened = true;
                kind.write(frame::OPEN, &mut out);
            } else if !self.pending.is_empty() {
                let frame = frame::messages(self.pending.iter().map(|m| &m[..]));
                self.pending.clear();
                self.pending_bytes = 0;
                self.heartbeat = false;
                kind.write(&frame, &mut out);
            } else if let Some(ending) = &self.ending {
                let (code, reason) = match ending {
                    Ending::Closed(code, reason) => (*code, reason.as_str()),
                    Ending::Interrupted | Ending::Expired => INTERRUPTED,
                };
                kind.write(&frame::close(code, reason), &mut out);
                last = true;
            } else if self.heartbeat {
                self.heartbeat = false;
                kind.write(frame::HEARTBEAT, &mut out);
            } else {
                break;
            }
            // A poll answers one frame; a stream takes all there is, up to its limit.
            let written = attached.written + out.len();
            if last || !kind.streams() || written >= self.config.response_limit {
                last = true;
                break;
            }
        }
        if out.is_empty() {
            return None;
        }
        match last {
            true => self.detach(id, true, now),
            false => {
                if let Some(receiver) = &mut self.receiver {
                    receiver.written += out.len();
                }
            }
        }
        Some(Taken {
            bytes: out.freeze(),
            last,
        })
    }

    /// Receiver `id` is gone at `now`: `finished` when its response ended as the session
    /// meant (after its last [`Taken`]), else broken off by the client, which interrupts the
    /// session.
    pub fn detach(&mut self, id: ReceiverId, finished: bool, now: Instant) {
        if self.receiver.is_none_or(|a| a.id != id) {
            return;
        }
        self.receiver = None;
        self.idle_since = Some(now);
        if !finished && self.ending.is_none() {
            self.ending = Some(Ending::Interrupted);
        }
    }

    /// Queues a message for the client; `Err` (nothing queued) once the session has ended. The
    /// caller asks [`has_room`](Self::has_room) before each message of its own, so what waits
    /// stays within [`HttpConfig::max_pending`] and one message.
    pub fn push(&mut self, message: Bytes) -> Result<(), Bytes> {
        if self.ending.is_some() {
            return Err(message);
        }
        self.pending_bytes += message.len();
        self.pending.push_back(message);
        Ok(())
    }

    /// Whether [`push`](Self::push) would take a message now.
    pub fn has_room(&self) -> bool {
        self.ending.is_none() && self.pending_bytes < self.config.max_pending
    }

    /// A heartbeat for the receiver (or the next one), unless messages go first.
    pub fn heartbeat(&mut self) {
        if self.ending.is_none() {
            self.heartbeat = true;
        }
    }

    /// The server closes the session: what waits goes first, then `c[code,"reason"]`.
    pub fn close(&mut self, code: u16, reason: &str) {
        if self.ending.is_none() {
            self.ending = Some(Ending::Closed(code, reason.to_owned()));
        }
    }

    /// An `xhr_send` body.
    pub fn receive(&mut self, body: &[u8]) -> Received {
        if self.ending.is_some() {
            return Received::Ended;
        }
        if !self.inbound.is_empty() && self.inbound_bytes + body.len() > self.config.max_inbound {
            return Received::Busy;
        }
        match frame::client_messages(body) {
            Ok(messages) => {
                for message in messages {
                    self.inbound_bytes += message.len();
                    self.inbound.push_back(message);
                }
                Received::Queued
            }
            Err(error) => Received::Invalid(error),
        }
    }

    /// The client's next message.
    pub fn next_inbound(&mut self) -> Option<String> {
        let message = self.inbound.pop_front()?;
        self.inbound_bytes -= message.len();
        Some(message)
    }

    /// How the session ended, if it has.
    pub fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }

    /// Whether a receiver is attached.
    pub fn has_receiver(&self) -> bool {
        self.receiver.is_some()
    }

    /// When [`handle_timeout`](Self::handle_timeout) has something to do: the expiry of a
    /// session without a receiver.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let since = self.idle_since?;
        match self.ending {
            Some(Ending::Expired) => None,
            _ => Some(since + self.config.disconnect_delay),
        }
    }

    /// Expires the session once it has been without a receiver for the disconnect delay. An
    /// ended session expires too: then it can be forgotten.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|at| at <= now) {
            self.ending = Some(Ending::Expired);
        }
    }

    /// Whether the session is over for good (expired): forget it.
    pub fn is_expired(&self) -> bool {
        self.ending == Some(Ending::Expired)
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
