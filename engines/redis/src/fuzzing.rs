//! The fuzz target's body (feature `fuzzing`, and every `cargo test` under proptest): the
//! plan reading whatever Redis could send. It must never panic, give exactly one event per
//! answer, and pass on only reads whose records follow on from their position within the
//! stream's head.

use roomcast_core::cursor::Position;
use roomcast_core::engine::{EngineEvent, OpId, StreamId};
use roomcast_core::names::UserId;

use crate::plan::{Answer, Plan, PlanConfig, Reply};

/// Reads `data` as an answer kind, a position and a tree of replies (or a pub/sub message),
/// and hands them to the plan.
///
/// # Panics
/// When the plan breaks one of its promises (above).
pub fn replies(data: &[u8]) {
    let plan = Plan::new(PlanConfig::default(), 1);
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let mut input = Input(rest);
    let stream = match input.byte() % 3 {
        0 => StreamId::Broadcast,
        1 => StreamId::Outbox(UserId::new("alice").expect("valid")),
        _ => StreamId::Room(roomcast_core::names::RoomName::new("lobby").expect("valid")),
    };
    let op = OpId(7);
    let answer = match kind % 5 {
        0 => Answer::Append {
            op,
            online: kind & 0x80 != 0,
        },
        1 | 2 => {
            let after = (kind % 5 == 2).then(|| Position {
                epoch: u64::from(input.byte() % 3),
                offset: u64::from(input.byte() % 8),
            });
            Answer::Read {
                op,
                stream: stream.clone(),
                after,
            }
        }
        3 => Answer::Tops {
            op,
            streams: vec![stream.clone(); usize::from(input.byte() % 3)],
        },
        _ => {
            // A pub/sub message.
            let channel = plan.keys().channel(&stream);
            if let Some(EngineEvent::Live { stream: live, .. }) = plan.live(&channel, input.0) {
                assert_eq!(live, stream);
            }
            return;
        }
    };
    let mut replies = Vec::new();
    while !input.0.is_empty() && replies.len() < 4 {
        replies.push(input.reply(0));
    }
    let after = match &answer {
        Answer::Read { after, .. } => *after,
        _ => None,
    };
    let events = plan.answer(answer, replies);
    assert_eq!(events.len(), 1, "{events:?}");
    match &events[0] {
        EngineEvent::Read { view, records, .. } => {
            let mut last = after.map_or(0, |after| after.offset);
            for record in records {
                assert!(record.offset > last && record.offset <= view.head.offset);
                last = record.offset;
            }
        }
        EngineEvent::Failed { op: failed, .. } => assert_eq!(*failed, op),
        EngineEvent::Appended { op: done, .. } | EngineEvent::Tops { op: done, .. } => {
            assert_eq!(*done, op);
        }
        other => panic!("not an answer: {other:?}"),
    }
}

/// Bytes read as small reply trees.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&byte, rest)) => {
                self.0 = rest;
                byte
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken.to_vec()
    }

    fn reply(&mut self, depth: u8) -> Reply {
        match self.byte() % 8 {
            0 => Reply::Nil,
            1 => Reply::Int(i64::from(self.byte()) - 8),
            // Numbers as Redis writes them, and entry ids.
            2 => Reply::Data(self.byte().to_string().into_bytes()),
            3 => Reply::Data(format!("{}-0", self.byte() % 10).into_bytes()),
            4 => {
                let n = usize::from(self.byte() % 64);
                Reply::Data(self.take(n))
            }
            5 => Reply::Error(String::from_utf8_lossy(&self.take(8)).into_owned()),
            _ if depth < 4 => {
                let n = usize::from(self.byte() % 9);
                Reply::Array((0..n).map(|_| self.reply(depth + 1)).collect())
            }
            _ => Reply::Data(b"r".to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// The seeds committed for the fuzz target (`fuzz/corpus/redis_replies/`) replay here.
    #[test]
    fn the_committed_seeds_replay() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/redis_replies");
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).expect("the seed corpus") {
            let path = entry.expect("an entry").path();
            super::replies(&std::fs::read(&path).expect("a seed"));
            seeds += 1;
        }
        assert!(seeds > 0, "no seeds in {}", dir.display());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn the_plan_reads_any_reply_without_breaking_a_promise(
            data in proptest::collection::vec(any::<u8>(), 0..200)
        ) {
            super::replies(&data);
        }
    }
}
