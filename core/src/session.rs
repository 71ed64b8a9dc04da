//! One connection's lifecycle: handshake, open, closing, closed.
//!
//! A [`Session`] owns everything that belongs to one connection and to no other: the bounded
//! outbound queue, the heartbeat, the inbound rate limit, and the close reason. It answers what
//! it can answer alone (`ping`, malformed frames, `rate_limited`) and hands every other client
//! message to the hub as a [`SessionEvent`]. See `docs/protocol.md`, sections 2, 10, 11 and 12.

use std::collections::VecDeque;
use std::fmt;
use std::mem;
use std::time::{Duration, Instant};

use smol_str::SmolStr;

use crate::close::{Close, CloseCode};
use crate::delivery::{Delivery, SessionId, Shared};
use crate::envelope::{ClientEnvelope, Codec, EnvelopeError, ErrorCode, Frame, Ref, ServerMessage};
use crate::heartbeat::{Beat, Heartbeat};
pub use crate::limits::SessionConfig;
use crate::limits::TokenBucket;
use crate::names::UserId;

mod expiry;
mod inputs;
mod queue;
use expiry::Expiry;
use queue::Queue;

/// The reason of a slow consumer's close (4000).
pub const SLOW_CONSUMER_REASON: &str = "slow consumer: reconnect and resume";
/// The reason of a `shutdown` message and of the close (1001) that follows it.
pub const SHUTDOWN_REASON: &str = "server shutting down";

/// The transport of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionKind {
    /// Both ways: text frames in and out, pings, a close handshake.
    WebSocket,
    /// Server-Sent Events: one-way, server to client; keep-alives instead of pings, no inbound
    /// frames, no close handshake.
    Sse,
}

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// Created, not yet accepted: waiting for authentication, nothing is sent.
    Handshake,
    /// Accepted: the welcome is queued and frames flow both ways.
    Open,
    /// We closed a WebSocket session and wait for the peer's close (up to `close_timeout`).
    Closing,
    /// Over. Drain [`Session::poll_transmit`] once more, then drop the connection.
    Closed,
}

/// Something for the transport to send, from [`Session::poll_transmit`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transmit {
    /// A text frame (an SSE event, with the delivery's stream position as its `id`).
    Frame(Shared),
    /// A WebSocket ping.
    Ping,
    /// An SSE keep-alive comment.
    KeepAlive,
    /// The close frame (WebSocket), or the end of the stream (SSE). Always the last transmit.
    Close(Close),
}

/// Something for the caller to act on, from [`Session::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A protocol message for the hub (`join`, `leave`, `publish`, `typing`, `direct`). If it
    /// has a `ref`, the hub owes it exactly one answer.
    Request(ClientEnvelope),
    /// A message of an application-registered type, for the application, under the same rule.
    App(ClientEnvelope),
    /// A `ping` the session answered itself: nothing to do but count it.
    Pinged,
    /// The session stopped being usable, for this reason (ours or the peer's): stop delivering.
    /// Emitted exactly once, when the session leaves [`SessionState::Open`] (or
    /// [`SessionState::Handshake`], for a connection that never opened).
    Closed(Close),
}

/// The caller's misuse of a session (the peer's faults are answers and closes, never errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// An inbound frame or pong was given to an SSE session, which is one-way. It was ignored.
    OneWay,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OneWay => f.write_str("an SSE session is one-way: it takes no inbound frames"),
        }
    }
}

impl std::error::Error for SessionError {}

/// One connection of one user, as a sans-IO state machine.
///
/// **Method taxonomy.** Getters take `&self` ([`state`](Self::state), [`id`](Self::id), ...).
/// Inputs say what happened, at `now`: [`handle_text`](Self::handle_text),
/// [`handle_binary`](Self::handle_binary), [`handle_pong`](Self::handle_pong),
/// [`handle_close`](Self::handle_close), [`handle_timeout`](Self::handle_timeout). Commands are
/// the server's decisions: [`accept`](Self::accept), [`deliver`](Self::deliver) (a frame from
/// the hub), [`close`](Self::close), [`shutdown`](Self::shutdown). Outputs queue up and are
/// drained: [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
/// [`poll_timeout`](Self::poll_timeout). Inputs after the close are ignored.
///
/// **Timers.**
///
/// | Timer | Armed | At the deadline |
/// |---|---|---|
/// | handshake | [`new`](Self::new), until [`accept`](Self::accept) | close 4008 |
/// | heartbeat | while open | a ping or keep-alive; no sign of life after a ping: close 4001 |
/// | shutdown grace | [`shutdown`](Self::shutdown) | close 1001, after the frames queued |
/// | close | our close of a WebSocket | [`SessionState::Closed`] |
///
/// **The run loop.** Drain every output, then wait for exactly one input (a frame from the
/// client, a delivery from the hub, or the timer at [`poll_timeout`](Self::poll_timeout)), feed
/// it in with the current time, and repeat. When the state is [`SessionState::Closed`] and
/// `poll_transmit` is empty, drop the connection.
///
/// ```text
/// loop {
///     while let Some(transmit) = session.poll_transmit(now) { transport.send(transmit) }
///     while let Some(event) = session.poll_event() { hub.handle(session_id, event) }
///     if session.state() == SessionState::Closed { break }
///     select! {
///         frame = transport.recv() => session.handle_text(clock.now(), &frame)?,
///         delivery = from_hub.recv() => session.deliver(clock.now(), delivery),
///         () = sleep_until(session.poll_timeout()) => session.handle_timeout(clock.now()),
///     }
/// }
/// ```
///
/// The same loop, driven by hand:
///
/// ```
/// use std::time::{Duration, Instant};
/// use roomcast_core::close::CloseCode;
/// use roomcast_core::cursor::{Position, Stream};
/// use roomcast_core::delivery::{Delivery, SessionId};
/// use roomcast_core::envelope::{ClientMessage, Codec, Payload, ServerMessage};
/// use roomcast_core::names::{RoomName, UserId};
/// use roomcast_core::session::{Session, SessionConfig, SessionEvent, SessionKind, SessionState, Transmit};
///
/// let start = Instant::now(); // the run loop's clock: the session never reads one
/// let config = SessionConfig::default();
/// let mut session = Session::new(SessionKind::WebSocket, config, Codec::new(), start);
/// session.accept(start, SessionId(1), UserId::new("alice")?);
///
/// // Drain: the welcome is the first frame.
/// let Some(Transmit::Frame(welcome)) = session.poll_transmit(start) else { panic!("welcome") };
/// assert!(welcome.frame.as_str().starts_with(r#"{"type":"welcome","protocol":1,"session":"s1""#));
/// assert_eq!(session.poll_transmit(start), None);
/// assert_eq!(session.poll_event(), None);
///
/// // Input, a frame from the client: `join` is a request for the hub.
/// let now = start + Duration::from_secs(1);
/// session.handle_text(now, r#"{"type":"join","ref":1,"room":"lobby"}"#)?;
/// let Some(SessionEvent::Request(join)) = session.poll_event() else { panic!("request") };
/// assert!(matches!(join.message, ClientMessage::Join { .. }));
///
/// // Input, a delivery from the hub: it is transmitted as it is.
/// let (room, id) = (RoomName::new("lobby")?, Position { epoch: 1, offset: 1 });
/// let data = Payload::from_json(r#""hi""#)?;
/// let message = ServerMessage::Message { room: room.clone(), id, from: None, event: None, data };
/// let frame = message.encode();
/// session.deliver(now, Delivery::streamed(frame.clone(), Stream::Room(room), id));
/// assert!(matches!(session.poll_transmit(now), Some(Transmit::Frame(d)) if d.frame == frame));
///
/// // Input, the timer: a ping is due 25 s after the accept...
/// let ping_at = session.poll_timeout().expect("a timer");
/// assert_eq!(ping_at, start + Duration::from_secs(25));
/// session.handle_timeout(ping_at);
/// assert_eq!(session.poll_transmit(ping_at), Some(Transmit::Ping));
///
/// // ... and 10 s of silence after it, the session closes with 4001.
/// let dead_at = session.poll_timeout().expect("a timer");
/// assert_eq!(dead_at, ping_at + Duration::from_secs(10));
/// session.handle_timeout(dead_at);
/// let Some(Transmit::Close(close)) = session.poll_transmit(dead_at) else { panic!("close") };
/// assert_eq!(close.code, CloseCode::HeartbeatTimeout);
/// assert_eq!(session.poll_event(), Some(SessionEvent::Closed(close)));
/// assert_eq!(session.state(), SessionState::Closing);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
// `repr(C)`, in this order: what every input and drain touches comes first, in four cache
// lines; the rest after. A server's sessions are cold when a fan-out reaches them, so each line a
// delivery touches is a miss (docs/performance.md, "Cache lines per delivery").
#[derive(Debug)]
#[repr(C)]
pub struct Session {
    state: SessionState,
    kind: SessionKind,
    ping_due: bool,
    keep_alive_due: bool,
    /// The bytes of the frames in `queue`.
    queued_bytes: usize,
    /// Frames to send, in order.
    queue: Queue,
    /// At most one per input since the last drain (plus one `Closed`).
    events: VecDeque<SessionEvent>,
    /// Present while open.
    heartbeat: Option<Heartbeat>,
    /// `Some` after `shutdown`: the end of the grace (`None` inside if beyond `Instant`).
    shutdown_at: Option<Option<Instant>>,
    /// The close frame, sent after every queued frame.
    close_due: Option<Close>,
    /// Its queue budget comes first (`SessionConfig` is `repr(C)` too).
    config: SessionConfig,
    // Touched on other inputs only.
    /// The end of the handshake (while in Handshake; `None` if beyond what `Instant` holds).
    handshake_deadline: Option<Instant>,
    /// The end of the wait for the peer's close (while Closing).
    closing_deadline: Option<Instant>,
    /// When the credentials expire (close 4003), and when to say so first (`expiring`).
    expiry: Option<Expiry>,
    codec: Codec,
    id: Option<SessionId>,
    user: Option<UserId>,
    rate: TokenBucket,
    abuse: TokenBucket,
    /// Why the session ended.
    close_reason: Option<Close>,
}

impl Session {
    /// A new connection at `now`, in [`SessionState::Handshake`] until [`accept`](Self::accept).
    /// The codec decides the application's message types; the frame limit is `config.max_frame`.
    pub fn new(kind: SessionKind, config: SessionConfig, codec: Codec, now: Instant) -> Self {
        Self {
            kind,
            codec: codec.with_max_frame(config.max_frame),
            state: SessionState::Handshake,
            id: None,
            user: None,
            rate: TokenBucket::new(config.rate_per_sec, config.burst, now),
            abuse: TokenBucket::new(config.abuse_rate_per_sec, config.abuse_burst, now),
            heartbeat: None,
            handshake_deadline: now.checked_add(config.handshake_timeout),
            shutdown_at: None,
            closing_deadline: None,
            expiry: None,
            queue: Queue::default(),
            queued_bytes: 0,
            ping_due: false,
            keep_alive_due: false,
            close_due: None,
            close_reason: None,
            events: VecDeque::new(),
            config,
        }
    }

    // Getters.

    /// The session's id, once accepted.
    pub fn id(&self) -> Option<SessionId> {
        self.id
    }

    /// The authenticated user, once accepted.
    pub fn user(&self) -> Option<&UserId> {
        self.user.as_ref()
    }

    /// The transport.
    pub fn kind(&self) -> SessionKind {
        self.kind
    }

    /// Where the session is in its life.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// True while open: accepted, not closed (frames flow, including during a shutdown's grace).
    pub fn is_open(&self) -> bool {
        self.state == SessionState::Open
    }

    /// Bytes of frames queued and not yet taken by [`poll_transmit`](Self::poll_transmit).
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Frames queued and not yet taken by [`poll_transmit`](Self::poll_transmit).
    pub fn queued_frames(&self) -> usize {
        self.queue.len()
    }

    /// Why the session ended (our close or the peer's), once it did.
    pub fn close_reason(&self) -> Option<&Close> {
        self.close_reason.as_ref()
    }

    /// The session's limits and timings.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    // Commands.

    /// Authentication succeeded: the session opens as `id` of `user`, and the `welcome` is
    /// queued as its first frame. Ignored unless in [`SessionState::Handshake`]; at or after the
    /// handshake deadline, the session closes with 4008 instead.
    pub fn accept(&mut self, now: Instant, id: SessionId, user: UserId) {
        if self.state != SessionState::Handshake {
            return;
        }
        if self.handshake_deadline.is_some_and(|at| at <= now) {
            self.handle_timeout(now);
            return;
        }
        self.state = SessionState::Open;
        self.handshake_deadline = None;
        // An SSE client sees a keep-alive where a WebSocket client sees a ping: announce that
        // rhythm, so its "nothing for interval + timeout means dead" rule holds for both.
        let interval = match self.kind {
            SessionKind::WebSocket => {
                self.heartbeat = Some(Heartbeat::ping(
                    self.config.ping_interval,
                    self.config.ping_timeout,
                    now,
                ));
                self.config.ping_interval
            }
            SessionKind::Sse => {
                self.heartbeat = Some(Heartbeat::keep_alive(self.config.keep_alive, now));
                self.config.keep_alive
            }
        };
        let welcome = ServerMessage::Welcome {
            session: SmolStr::new(id.to_string()),
            user: user.clone(),
            ping_interval_ms: millis(interval),
            ping_timeout_ms: millis(self.config.ping_timeout),
            max_frame: u64::try_from(self.config.max_frame).unwrap_or(u64::MAX),
        };
        self.id = Some(id);
        self.user = Some(user);
        self.send(now, welcome.encode());
    }

    /// Queues a frame from the hub. Ignored unless open. Over the queue budget (bytes or
    /// frames), the session closes as a slow consumer (4000): the queue is dropped, its
    /// messages stay in their streams, and the client resumes from its cursor.
    pub fn deliver(&mut self, now: Instant, delivery: Shared) {
        if self.state != SessionState::Open {
            return;
        }
        let bytes = delivery.frame.len();
        let over_frames = self.queue.len() >= self.config.queue_frames;
        let over_bytes = self.queued_bytes.saturating_add(bytes) > self.config.queue_bytes;
        if over_frames || over_bytes {
            self.close_with(
                now,
                Close::new(CloseCode::SlowConsumer, SLOW_CONSUMER_REASON),
            );
            return;
        }
        self.queued_bytes += bytes;
        self.queue.push_back(delivery);
        self.ping_with_traffic(now);
    }

    /// Queues a batch of frames from the hub: what one [`Hub::poll_transmit`] returned. The
    /// batch is taken whole when the queue is within budget as it arrives, so a resume's replay
    /// (bounded by history) can complete even when it is larger than the budget; a queue still
    /// over budget when the next batch comes means a slow consumer (4000).
    ///
    /// [`Hub::poll_transmit`]: crate::hub::Hub::poll_transmit
    pub fn deliver_batch(&mut self, now: Instant, batch: impl IntoIterator<Item = Shared>) {
        if self.state != SessionState::Open {
            return;
        }
        if self.queued_bytes > self.config.queue_bytes
            || self.queue.len() > self.config.queue_frames
        {
            self.close_with(
                now,
                Close::new(CloseCode::SlowConsumer, SLOW_CONSUMER_REASON),
            );
            return;
        }
        let queued = self.queue.len();
        for delivery in batch {
            self.queued_bytes += delivery.frame.len();
            self.queue.push_back(delivery);
        }
        if self.queue.len() > queued {
            self.ping_with_traffic(now);
        }
    }

    /// Closes the session (server-initiated: auth revoked, kicked, ...). The queue is dropped;
    /// the close is the last transmit. Ignored once closing or closed.
    pub fn close(&mut self, now: Instant, close: Close) {
        self.close_with(now, close);
    }

    /// True once [`shutdown`](Self::shutdown) was called while open.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_at.is_some()
    }

    /// The server is going away: queues a `shutdown` message (reason [`SHUTDOWN_REASON`], the
    /// client's reconnect hint `reconnect_ms`), keeps the frames flowing for
    /// `config.shutdown_grace`, then closes with 1001 after every frame still queued. Before
    /// accept, closes with 1001 at once. A second call changes nothing.
    pub fn shutdown(&mut self, now: Instant, reconnect_ms: u64) {
        match self.state {
            SessionState::Handshake => {
                self.close_with(now, Close::new(CloseCode::GoingAway, SHUTDOWN_REASON));
            }
            SessionState::Open if self.shutdown_at.is_none() => {
                let notice = ServerMessage::Shutdown {
                    reason: SHUTDOWN_REASON.to_owned(),
                    reconnect_ms,
                };
                self.send(now, notice.encode());
                if self.state == SessionState::Open {
                    self.shutdown_at = Some(now.checked_add(self.config.shutdown_grace));
                }
            }
            _ => {}
        }
    }

    /// The timer at [`poll_timeout`](Self::poll_timeout) fired (an early or late `now` is fine:
    /// exactly what is due at `now` happens, including a deadline that a close armed at `now`,
    /// so afterwards the next timer is later than `now`).
    pub fn handle_timeout(&mut self, now: Instant) {
        loop {
            let state = self.state;
            self.handle_timeout_once(now);
            if self.state == state {
                break;
            }
        }
    }

    fn handle_timeout_once(&mut self, now: Instant) {
        match self.state {
            SessionState::Handshake => {
                if self.handshake_deadline.is_some_and(|at| at <= now) {
                    let close = Close::new(CloseCode::HandshakeTimeout, "handshake timed out");
                    self.close_with(now, close);
                }
            }
            SessionState::Open => {
                if self.expiry_due(now) {
                    return;
                }
                if self.shutdown_at.flatten().is_some_and(|at| at <= now) {
                    self.queue_close(now, Close::new(CloseCode::GoingAway, SHUTDOWN_REASON));
                    return;
                }
                while let Some(beat) = self.heartbeat.as_mut().and_then(|h| h.handle_timeout(now)) {
                    match beat {
                        Beat::Ping => self.ping_due = true,
                        Beat::KeepAlive => self.keep_alive_due = true,
                        Beat::Expired => {
                            let close =
                                Close::new(CloseCode::HeartbeatTimeout, "heartbeat timeout");
                            self.close_with(now, close);
                            return;
                        }
                    }
                }
            }
            SessionState::Closing => {
                if self.closing_deadline.is_some_and(|at| at <= now) {
                    self.closed();
                }
            }
            SessionState::Closed => {}
        }
    }

    // Outputs.

    /// The next thing to send: a ping first (it may pass queued frames), then frames in order,
    /// then a keep-alive if nothing else went, and the close last of all. Taking one counts as
    /// transmitting at `now` for the SSE keep-alive.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let transmit = if mem::take(&mut self.ping_due) {
            Transmit::Ping
        } else if let Some(delivery) = self.queue.pop_front() {
            self.queued_bytes -= delivery.frame.len();
            self.keep_alive_due = false;
            Transmit::Frame(delivery)
        } else if mem::take(&mut self.keep_alive_due) {
            Transmit::KeepAlive
        } else {
            Transmit::Close(self.close_due.take()?)
        };
        if let Some(heartbeat) = &mut self.heartbeat {
            heartbeat.on_transmit(now);
        }
        Some(transmit)
    }

    /// The next event for the hub or the application. An input adds at most one event (and the
    /// session one `Closed` in its life), so draining after every input, as the run loop does,
    /// keeps this queue short.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called: the earliest
    /// deadline of the current state. `None` when no timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            SessionState::Handshake => self.handshake_deadline,
            SessionState::Open => {
                let beat = self.heartbeat.as_ref().and_then(Heartbeat::poll_timeout);
                [beat, self.shutdown_at.flatten(), self.expiry_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
            }
            SessionState::Closing => self.closing_deadline,
            SessionState::Closed => None,
        }
    }

    // Internals.

    /// Deliveries were queued: a ping due soon rides along in their write, instead of a
    /// wake-up and a write of its own when its timer fires ([`Heartbeat::ping_early`]).
    fn ping_with_traffic(&mut self, now: Instant) {
        if !self.ping_due && self.heartbeat.as_mut().is_some_and(|h| h.ping_early(now)) {
            self.ping_due = true;
        }
    }

    /// Queues a frame of the session's own (welcome, reply, error, shutdown), within the budget.
    fn send(&mut self, now: Instant, frame: Frame) {
        self.deliver(now, Delivery::unstreamed(frame));
    }

    /// Every close but the end of a shutdown: the queue is dropped first.
    fn close_with(&mut self, now: Instant, close: Close) {
        if matches!(self.state, SessionState::Handshake | SessionState::Open) {
            self.queue.clear();
            self.queued_bytes = 0;
            self.queue_close(now, close);
        }
    }

    /// Leaves Open (or Handshake): the close goes after whatever is queued, the timers stop,
    /// and `Closed` is emitted, once.
    fn queue_close(&mut self, now: Instant, close: Close) {
        if !matches!(self.state, SessionState::Handshake | SessionState::Open) {
            return;
        }
        self.heartbeat = None;
        self.handshake_deadline = None;
        self.shutdown_at = None;
        self.expiry = None;
        self.ping_due = false;
        self.keep_alive_due = false;
        self.close_due = Some(close.clone());
        self.close_reason = Some(close.clone());
        self.events.push_back(SessionEvent::Closed(close));
        match self.kind {
            SessionKind::WebSocket => {
                self.state = SessionState::Closing;
                self.closing_deadline = now.checked_add(self.config.close_timeout);
            }
            SessionKind::Sse => self.closed(),
        }
    }

    fn closed(&mut self) {
        self.state = SessionState::Closed;
        self.closing_deadline = None;
    }
}

fn error_frame(code: ErrorCode, reference: Option<Ref>, message: impl Into<String>) -> Frame {
    EnvelopeError::new(code, reference, message).to_frame()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
