//! A property test of the session: random operation sequences, every promise checked after
//! every step.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::tests::{alice, answers, codec, sized};
use super::*;
use crate::testing::start;

/// Frames a client may send: `{r}` is where a `ref` goes, and whether the session can read it.
const TEMPLATES: [(&str, bool); 8] = [
    (r#"{"type":"ping"{r}}"#, true),
    (r#"{"type":"join"{r},"room":"lobby"}"#, true),
    (r#"{"type":"publish"{r},"room":"lobby","data":[1,2]}"#, true),
    (r#"{"type":"reaction"{r},"emoji":"+1"}"#, true),
    (r#"{"type":"join"{r}}"#, true),
    (r#"{"type":"dance"{r}}"#, true),
    (r#"{"type":"ping"{r},"room":5}"#, true),
    (r#"{"type":"ping"{r}"#, false),
];

#[derive(Clone, Debug)]
enum Op {
    Accept,
    Text {
        template: usize,
        with_ref: bool,
    },
    /// `n` pings with refs at the same instant: reaches the rate limit and the abuse close.
    Flood(usize),
    /// A frame over `max_frame`.
    Oversized,
    Binary,
    Pong,
    Deliver(usize),
    Advance(u64),
    Timeout,
    Drain,
    PeerClose(bool),
    Close,
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Accept),
        30 => (0..TEMPLATES.len(), any::<bool>())
            .prop_map(|(template, with_ref)| Op::Text { template, with_ref }),
        3 => (1..12usize).prop_map(Op::Flood),
        1 => Just(Op::Oversized),
        2 => Just(Op::Binary),
        6 => Just(Op::Pong),
        10 => (2..300usize).prop_map(Op::Deliver),
        10 => (0..800u64).prop_map(Op::Advance),
        2 => Just(Op::Timeout),
        10 => Just(Op::Drain),
        1 => any::<bool>().prop_map(Op::PeerClose),
        1 => Just(Op::Close),
        1 => Just(Op::Shutdown),
    ]
}

/// Small limits and short timers, so every limit is reached within a few dozen steps.
fn small() -> SessionConfig {
    let ms = Duration::from_millis;
    SessionConfig {
        expiry_warning: std::time::Duration::from_secs(60),
        max_frame: 200,
        queue_bytes: 1_000,
        queue_frames: 10,
        rate_per_sec: 5,
        burst: 4,
        abuse_rate_per_sec: 2,
        abuse_burst: 3,
        ping_interval: ms(1_000),
        ping_timeout: ms(500),
        keep_alive: ms(700),
        handshake_timeout: ms(300),
        close_timeout: ms(400),
        shutdown_grace: ms(300),
    }
}

/// What the run loop saw, checked after every step.
#[derive(Default)]
struct Seen {
    /// Per `ref` sent while open: answers in transmits, plus events handed to the caller.
    answered: BTreeMap<u64, usize>,
    closed_events: usize,
    close_sent: bool,
}

impl Seen {
    fn transmits(&mut self, session: &mut Session, now: Instant) {
        while let Some(transmit) = session.poll_transmit(now) {
            assert!(!self.close_sent, "{transmit:?} after the close");
            match &transmit {
                Transmit::Close(_) => self.close_sent = true,
                Transmit::Frame(_) => {
                    for (_, reference, _) in answers(std::slice::from_ref(&transmit)) {
                        if let Some(n) = reference.as_u64() {
                            *self.answered.entry(n).or_default() += 1;
                        }
                    }
                }
                Transmit::Ping | Transmit::KeepAlive => {}
            }
        }
    }

    fn events(&mut self, session: &mut Session, was_open: bool) {
        while let Some(event) = session.poll_event() {
            match event {
                SessionEvent::Request(e) | SessionEvent::App(e) => {
                    assert!(was_open, "a request from a session that was not open");
                    if let Some(Ref::Number(n)) = e.reference {
                        *self.answered.entry(n).or_default() += 1;
                    }
                }
                SessionEvent::Pinged => assert!(was_open, "a ping answered by a closed session"),
                SessionEvent::Closed(_) => self.closed_events += 1,
            }
        }
    }
}

/// The run loop of one connection, checking every promise after every step.
struct Run {
    config: SessionConfig,
    session: Session,
    now: Instant,
    seen: Seen,
    /// Refs the session could read, sent while it was open: each is owed exactly one answer.
    owed: Vec<u64>,
    next_ref: u64,
}

impl Run {
    fn text(&mut self, template: usize, with_ref: bool) {
        let (template, readable) = TEMPLATES[template];
        self.next_ref += 1;
        let n = self.next_ref;
        let reference = if with_ref {
            format!(r#","ref":{n}"#)
        } else {
            String::new()
        };
        let was_open = self.session.is_open();
        let result = self
            .session
            .handle_text(self.now, &template.replace("{r}", &reference));
        if result.is_ok() && with_ref && readable && was_open {
            self.owed.push(n);
        }
    }

    /// The run loop's timer: each deadline up to `by` from now fires at its time, in order.
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        for _ in 0..1_000 {
            let Some(at) = self.session.poll_timeout().filter(|at| *at <= target) else {
                self.now = target;
                return;
            };
            self.now = self.now.max(at);
            self.session.handle_timeout(self.now);
            let next = self.session.poll_timeout();
            assert!(
                next.is_none_or(|next| next > self.now),
                "a timer that does not move"
            );
        }
        panic!("more than 1000 timers in {by:?}");
    }

    fn step(&mut self, op: &Op) {
        let (session, now) = (&mut self.session, self.now);
        let was_open = session.is_open();
        match op {
            Op::Accept => session.accept(now, SessionId(1), alice()),
            Op::Text { template, with_ref } => self.text(*template, *with_ref),
            Op::Flood(n) => (0..*n).for_each(|_| self.text(0, true)),
            Op::Oversized => _ = session.handle_text(now, &"x".repeat(self.config.max_frame + 1)),
            Op::Binary => _ = session.handle_binary(now, b"\x00"),
            Op::Pong => _ = session.handle_pong(now),
            Op::Deliver(len) => session.deliver(now, sized(*len)),
            Op::Advance(ms) => self.advance(Duration::from_millis(*ms)),
            Op::Timeout => session.handle_timeout(now),
            Op::Drain => self.seen.transmits(session, now),
            Op::PeerClose(code) => {
                session.handle_close(now, code.then(|| Close::new(CloseCode::GoingAway, "bye")));
            }
            Op::Close => session.close(now, Close::new(CloseCode::Unauthorized, "revoked")),
            Op::Shutdown => session.shutdown(now, 100),
        }
        self.seen.events(&mut self.session, was_open);
        self.check(matches!(op, Op::Drain));
    }

    fn check(&self, drained: bool) {
        let (session, seen) = (&self.session, &self.seen);
        assert!(session.queued_bytes() <= self.config.queue_bytes);
        assert!(session.queued_frames() <= self.config.queue_frames);
        assert!(seen.closed_events <= 1, "Closed emitted twice");
        assert_eq!(seen.closed_events == 1, session.close_reason().is_some());
        assert_eq!(
            session.is_open(),
            session.close_reason().is_none() && session.id().is_some()
        );
        assert!(
            seen.answered.values().all(|&n| n == 1),
            "a ref answered twice"
        );
        assert!(
            seen.answered.keys().all(|n| self.owed.contains(n)),
            "an answer to nothing"
        );
        if drained && session.is_open() {
            let unanswered = self.owed.iter().find(|n| !seen.answered.contains_key(n));
            assert_eq!(
                unanswered, None,
                "drained while open, yet a ref is unanswered"
            );
        }
    }
}

fn run(kind: SessionKind, accept_first: bool, ops: &[Op]) {
    let now = start();
    let config = small();
    let mut session = Session::new(kind, config.clone(), codec(), now);
    if accept_first {
        session.accept(now, SessionId(1), alice());
    }
    let seen = Seen::default();
    let mut run = Run {
        config,
        session,
        now,
        seen,
        owed: Vec::new(),
        next_ref: 0,
    };
    for op in ops.iter().chain([&Op::Drain]) {
        run.step(op);
    }
}

proptest! {
    #[test]
    fn random_sequences_keep_every_promise(
        sse in prop::bool::weighted(0.2),
        accept_first in prop::bool::weighted(0.9),
        ops in prop::collection::vec(op(), 0..120),
    ) {
        let kind = if sse { SessionKind::Sse } else { SessionKind::WebSocket };
        run(kind, accept_first, &ops);
    }
}
