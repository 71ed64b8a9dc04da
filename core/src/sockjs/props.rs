//! The invariant of an HTTP session: whatever the receivers do, every message pushed reaches
//! the client once, in order, or the session ends interrupted (and the client resumes); at
//! most one receiver holds the session.

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use super::http::{Attach, HttpConfig, HttpSession, Receiving};
use crate::testing::start;

#[derive(Clone, Debug)]
enum Op {
    Push(u8),
    Attach(Receiving),
    Take,
    Finish,
    BreakOff,
    Heartbeat,
    Wait(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::Push),
        2 => prop::sample::select(vec![Receiving::Xhr, Receiving::XhrStreaming, Receiving::EventSource]).prop_map(Op::Attach),
        4 => Just(Op::Take),
        1 => Just(Op::Finish),
        1 => Just(Op::BreakOff),
        1 => Just(Op::Heartbeat),
        1 => (0u16..3_000).prop_map(Op::Wait),
    ]
}

/// The messages of the frames in `bytes`, written by `kind`.
fn messages(kind: Receiving, bytes: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(bytes).expect("utf-8");
    let text = text
        .trim_start_matches('h')
        .trim_start_matches(['\r', '\n']);
    let mut out = Vec::new();
    for line in text.split(['\n', '\r']).filter(|l| !l.is_empty()) {
        let frame = match kind {
            Receiving::EventSource => line.strip_prefix("data: ").expect("a data line"),
            _ => line,
        };
        if let Some(array) = frame.strip_prefix('a') {
            let items: Vec<String> = serde_json::from_str(array).expect("an array of strings");
            out.extend(items);
        }
    }
    out
}

proptest! {
    #[test]
    fn every_message_arrives_once_in_order_or_the_session_is_interrupted(
        ops in prop::collection::vec(op(), 1..80),
        limit in 8usize..200,
    ) {
        let mut now = start();
        let config = HttpConfig { response_limit: limit, ..HttpConfig::default() };
        let mut session = HttpSession::new(config, now);
        let mut pushed = Vec::new();
        let mut received = Vec::new();
        let mut receiver = None;
        let mut next = 0u32;
        for op in ops {
            match op {
                Op::Push(len) => {
                    let message = format!("{next}:{}", "m".repeat(usize::from(len % 40)));
                    if session.push(Bytes::from(message.clone())).is_ok() {
                        pushed.push(message);
                        next += 1;
                    }
                }
                Op::Attach(kind) => match session.attach(kind, now) {
                    Attach::Accepted { id, .. } => {
                        prop_assert!(receiver.is_none(), "one receiver at a time");
                        receiver = Some((id, kind));
                    }
                    Attach::Refused(bytes) => {
                        prop_assert!(messages(kind, &bytes).is_empty());
                    }
                },
                Op::Take => {
                    if let Some((id, kind)) = receiver
                        && let Some(taken) = session.take(id, now)
                    {
                        received.extend(messages(kind, &taken.bytes));
                        if taken.last {
                            receiver = None;
                        }
                    }
                }
                Op::Finish | Op::BreakOff => {
                    if let Some((id, _)) = receiver.take() {
                        session.detach(id, matches!(op, Op::Finish), now);
                    }
                }
                Op::Heartbeat => session.heartbeat(),
                Op::Wait(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    session.handle_timeout(now);
                }
            }
            prop_assert_eq!(session.has_receiver(), receiver.is_some());
            // What arrived is what was pushed, in order, each once (a prefix of it).
            prop_assert!(received.len() <= pushed.len());
            prop_assert_eq!(&received[..], &pushed[..received.len()]);
        }
        if session.ending().is_none() {
            // A receiver that takes everything gets the rest.
            if receiver.is_none() {
                match session.attach(Receiving::XhrStreaming, now) {
                    Attach::Accepted { id, .. } => receiver = Some((id, Receiving::XhrStreaming)),
                    Attach::Refused(_) => prop_assert!(false, "no other receiver"),
                }
            }
            // Bounded: a session that never runs dry fails here, not by running forever.
            for _ in 0..1_000 {
                let Some((id, kind)) = receiver else { break };
                match session.take(id, now) {
                    Some(taken) => {
                        received.extend(messages(kind, &taken.bytes));
                        if taken.last {
                            receiver = session.attach(kind, now).accepted().map(|id| (id, kind));
                        }
                    }
                    None => break,
                }
            }
            prop_assert_eq!(received, pushed);
        }
    }
}

impl Attach {
    fn accepted(self) -> Option<super::http::ReceiverId> {
        match self {
            Attach::Accepted { id, .. } => Some(id),
            Attach::Refused(_) => None,
        }
    }
}
