//! One session under any sequence of inputs, commands, partial drains and time, with small
//! limits so that every limit is reached.

use std::collections::BTreeMap;
use std::time::Instant;

use super::input::Input;
use crate::close::{Close, CloseCode};
use crate::delivery::{Delivery, SessionId};
use crate::envelope::{Codec, Payload, Ref, ServerMessage};
use crate::names::UserId;
use crate::session::{
    Session, SessionConfig, SessionError, SessionEvent, SessionKind, SessionState, Transmit,
};

/// Drives a [`Session`] with the program the input spells, checking after every step:
/// - the state only moves forward, and `Closed` is reported once, when it leaves Open;
/// - nothing is transmitted after the close, and the welcome is the first frame;
/// - after `handle_timeout(now)`, the next timer is later than `now` (a run loop never spins);
/// - the queue stays within its budget (a batch from the hub may overshoot by its own size);
/// - every frame it sends is a valid server message;
/// - each `ref` gets at most one answer (a reply, an error, or an event for the hub), and
///   exactly one when the session is still open at the end;
/// - an SSE session refuses inbound frames without changing state.
pub fn session_ops(input: &[u8]) {
    let mut input = Input::new(input);
    let mut run = Run::new(&mut input);
    while !input.is_empty() {
        run.step(&mut input);
        run.drain_events();
        run.check();
    }
    run.finish();
}

/// A tracked `ref` is `"fz<n>"`; raw fuzz text containing `fz` is not sent, so nothing else
/// can carry one.
const MARK: &str = "fz";

struct Run {
    session: Session,
    codec: Codec,
    now: Instant,
    /// Answers per tracked ref sent while open: replies, errors and events.
    answers: BTreeMap<u64, u32>,
    next_ref: u64,
    state: SessionState,
    closed_events: u32,
    close_sent: bool,
    frames_sent: u32,
    /// The largest batch delivered, in bytes and frames: how far a batch may overshoot.
    batch_bytes: usize,
    batch_frames: usize,
}

impl Run {
    #[allow(clippy::disallowed_methods)] // one real instant to offset from; only offsets matter
    fn new(input: &mut Input<'_>) -> Self {
        let kind = if input.byte() & 1 == 0 {
            SessionKind::WebSocket
        } else {
            SessionKind::Sse
        };
        let config = SessionConfig {
            expiry_warning: std::time::Duration::from_secs(60),
            max_frame: 16 + input.below(512),
            queue_bytes: input.below(4096),
            queue_frames: input.below(32),
            rate_per_sec: input.below(50) as u32,
            burst: input.below(20) as u32,
            abuse_rate_per_sec: input.below(10) as u32,
            abuse_burst: input.below(10) as u32,
            ping_interval: input.millis(5000),
            ping_timeout: input.millis(5000),
            keep_alive: input.millis(5000),
            handshake_timeout: input.millis(5000),
            close_timeout: input.millis(5000),
            shutdown_grace: input.millis(5000),
        };
        let codec = Codec::new().with_app_type("note").expect("a valid type");
        let now = Instant::now();
        Self {
            session: Session::new(kind, config, codec.clone(), now),
            codec,
            now,
            answers: BTreeMap::new(),
            next_ref: 0,
            state: SessionState::Handshake,
            closed_events: 0,
            close_sent: false,
            frames_sent: 0,
            batch_bytes: 0,
            batch_frames: 0,
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let now = self.now;
        match input.byte() % 12 {
            0 => self
                .session
                .accept(now, SessionId(1), UserId::new("fuzz").expect("valid")),
            1 => {
                let text = self.tracked_text(input);
                self.inbound(|s| s.handle_text(now, &text));
            }
            2 => {
                let len = input.below(600);
                let text = String::from_utf8_lossy(input.take(len)).into_owned();
                if !text.contains(MARK) {
                    self.inbound(|s| s.handle_text(now, &text));
                }
            }
            3 => {
                let len = input.below(600);
                let bytes = input.take(len).to_vec();
                self.inbound(|s| s.handle_binary(now, &bytes));
            }
            4 => self.inbound(|s| s.handle_pong(now)),
            5 => {
                let frame = frame_of(input.below(300));
                self.session.deliver(now, frame);
            }
            6 => {
                let batch: Vec<_> = (0..input.below(8))
                    .map(|_| frame_of(input.below(300)))
                    .collect();
                self.batch_frames = self.batch_frames.max(batch.len());
                let bytes = batch.iter().map(|d| d.frame.len()).sum();
                self.batch_bytes = self.batch_bytes.max(bytes);
                self.session.deliver_batch(now, batch);
            }
            7 => {
                for _ in 0..input.below(8) {
                    self.transmit();
                }
            }
            8 => {
                // Time passes: by a random step, or exactly to the next timer.
                self.now = match (input.byte() & 1, self.session.poll_timeout()) {
                    (0, Some(at)) if at > now => at,
                    _ => now + input.millis(3000),
                };
                self.session.handle_timeout(self.now);
                if let Some(at) = self.session.poll_timeout() {
                    assert!(
                        at > self.now,
                        "a timer at or before now after handle_timeout"
                    );
                }
            }
            9 => {
                let close = match input.byte() % 4 {
                    0 => None,
                    1 => Some(Close::new(CloseCode::Normal, "bye")),
                    2 => Some(Close::new(CloseCode::GoingAway, "")),
                    _ => Some(Close::new(CloseCode::Other(4321), "app")),
                };
                self.session.handle_close(now, close);
            }
            10 => self
                .session
                .close(now, Close::new(CloseCode::Policy, "kicked")),
            _ => self.session.shutdown(now, input.below(5000) as u64),
        }
    }

    /// A client message with a fresh tracked ref, of a kind the input picks.
    fn tracked_text(&mut self, input: &mut Input<'_>) -> String {
        self.next_ref += 1;
        let r = format!("\"{MARK}{}\"", self.next_ref);
        let text = match input.below(9) {
            0 => format!(r#"{{"type":"ping","ref":{r}}}"#),
            1 => format!(r#"{{"type":"join","ref":{r},"room":"lobby"}}"#),
            2 => format!(r#"{{"type":"publish","ref":{r},"room":"lobby","data":1}}"#),
            3 => format!(r#"{{"type":"nope","ref":{r}}}"#),
            4 => format!(r#"{{"type":"join","ref":{r},"room":""}}"#),
            5 => format!(r#"{{"type":"join","ref":{r}}}"#),
            6 => format!(r#"{{"type":"note","ref":{r},"x":[1]}}"#),
            7 => format!(r#"{{"ref":{r}}}"#),
            _ => {
                let pad = "x".repeat(input.below(600));
                format!(r#"{{"type":"publish","ref":{r},"room":"lobby","data":"{pad}"}}"#)
            }
        };
        // Only a frame the session reads while open is owed an answer.
        let reads = self.session.kind() == SessionKind::WebSocket && self.session.is_open();
        if reads && text.len() <= self.session.config().max_frame {
            self.answers.insert(self.next_ref, 0);
        }
        text
    }

    /// An inbound frame or pong: refused on SSE without a change of state, read on WebSocket.
    fn inbound(&mut self, feed: impl FnOnce(&mut Session) -> Result<(), SessionError>) {
        let before = self.session.state();
        let result = feed(&mut self.session);
        match self.session.kind() {
            SessionKind::Sse => {
                assert_eq!(result, Err(SessionError::OneWay));
                assert_eq!(self.session.state(), before);
            }
            _ => assert_eq!(result, Ok(())),
        }
    }

    /// Takes one transmit, as a writer would.
    fn transmit(&mut self) -> bool {
        let Some(transmit) = self.session.poll_transmit(self.now) else {
            return false;
        };
        assert!(!self.close_sent, "{transmit:?} after the close");
        match transmit {
            Transmit::Frame(delivery) => {
                let message = self
                    .codec
                    .decode_server(delivery.frame.as_str())
                    .expect("the session sends valid frames");
                assert_eq!(
                    self.frames_sent == 0,
                    matches!(message, ServerMessage::Welcome { .. }),
                    "the welcome comes first, once"
                );
                self.frames_sent += 1;
                match message {
                    ServerMessage::Reply(reply) => self.answered(&Some(reply.reference)),
                    ServerMessage::Error { reference, .. } => self.answered(&reference),
                    _ => {}
                }
            }
            Transmit::Close(_) => self.close_sent = true,
            _ => {}
        }
        true
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Request(envelope) | SessionEvent::App(envelope) => {
                    assert_eq!(self.closed_events, 0, "a request after Closed");
                    self.answered(&envelope.reference);
                }
                SessionEvent::Closed(close) => {
                    self.closed_events += 1;
                    assert_eq!(Some(&close), self.session.close_reason());
                }
                SessionEvent::Pinged => assert_eq!(self.closed_events, 0, "a ping after Closed"),
            }
        }
    }

    fn answered(&mut self, reference: &Option<Ref>) {
        let Some(Ref::Text(text)) = reference else {
            return;
        };
        let Some(n) = text.strip_prefix(MARK).and_then(|n| n.parse().ok()) else {
            return;
        };
        if let Some(count) = self.answers.get_mut(&n) {
            *count += 1;
            assert_eq!(*count, 1, "ref {text} answered twice");
        }
    }

    fn check(&mut self) {
        let state = self.session.state();
        assert!(
            rank(state) >= rank(self.state),
            "{:?} -> {state:?}",
            self.state
        );
        self.state = state;
        let closed = matches!(state, SessionState::Closing | SessionState::Closed);
        let left = self.session.close_reason().is_some();
        assert_eq!(self.closed_events, u32::from(left), "Closed reported once");
        assert!(!closed || left, "closed without a reason");
        let config = self.session.config();
        assert!(self.session.queued_bytes() <= config.queue_bytes + self.batch_bytes);
        assert!(self.session.queued_frames() <= config.queue_frames + self.batch_frames);
    }

    /// Everything is written; a session still open has answered every ref it read.
    fn finish(mut self) {
        while self.transmit() {}
        self.drain_events();
        self.check();
        if self.session.close_reason().is_none() {
            for (n, count) in &self.answers {
                assert_eq!(*count, 1, "ref {MARK}{n} unanswered by an open session");
            }
        }
    }
}

fn rank(state: SessionState) -> u8 {
    match state {
        SessionState::Handshake => 0,
        SessionState::Open => 1,
        SessionState::Closing => 2,
        _ => 3,
    }
}

/// A delivery from the hub of about `len` bytes.
fn frame_of(len: usize) -> crate::delivery::Shared {
    let data = Payload::from_json(&format!("\"{}\"", "d".repeat(len))).expect("JSON");
    let message = ServerMessage::Broadcast {
        id: crate::cursor::Position {
            epoch: 1,
            offset: 1,
        },
        event: None,
        data,
    };
    Delivery::unstreamed(message.encode())
}
