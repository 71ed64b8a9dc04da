use std::time::Duration;

use super::*;
use crate::engine::{Message, Origin};
use crate::envelope::Payload;
use crate::names::RoomName;

const RETENTION: Retention = Retention {
    max_messages: 3,
    max_bytes: 1 << 20,
    max_age: Duration::from_secs(60),
};

fn room(name: &str) -> StreamId {
    StreamId::Room(RoomName::new(name).expect("valid"))
}

fn outbox(name: &str) -> StreamId {
    StreamId::Outbox(UserId::new(name).expect("valid"))
}

fn record(n: u64) -> Record {
    Record::new(
        0,
        None,
        Message::Broadcast {
            event: None,
            data: Payload::from_json(&n.to_string()).expect("JSON"),
        },
    )
}

/// A test's engine and clock.
struct Bench {
    engine: MemoryEngine,
    now: Instant,
    ops: u64,
}

impl Bench {
    fn new(limits: MemoryLimits) -> Self {
        Self {
            engine: MemoryEngine::new(limits, 7),
            now: crate::testing::start(),
            ops: 0,
        }
    }

    fn events(&mut self, operation: Operation) -> Vec<EngineEvent> {
        self.engine.handle(self.now, operation);
        std::iter::from_fn(|| self.engine.poll_event()).collect()
    }

    fn op(&mut self) -> OpId {
        self.ops += 1;
        OpId(self.ops)
    }

    fn append_with(&mut self, stream: &StreamId, n: u64, retention: Retention) -> EngineEvent {
        let op = self.op();
        let events = self.events(Operation::Append {
            op,
            stream: stream.clone(),
            record: record(n),
            retention,
        });
        events.into_iter().next().expect("an answer")
    }

    fn append(&mut self, stream: &StreamId, n: u64) -> Position {
        match self.append_with(stream, n, RETENTION) {
            EngineEvent::Appended { at, .. } => at,
            other => panic!("not appended: {other:?}"),
        }
    }

    fn read(&mut self, stream: &StreamId, after: Option<Position>, max: usize) -> (View, Vec<u64>) {
        let op = self.op();
        let events = self.events(Operation::Read {
            op,
            stream: stream.clone(),
            after,
            max,
        });
        match events.as_slice() {
            [EngineEvent::Read { view, records, .. }] => {
                (*view, records.iter().map(|r| r.offset).collect())
            }
            other => panic!("not one read: {other:?}"),
        }
    }
}

#[test]
fn offsets_start_at_one_in_an_epoch_of_each_stream() {
    let mut bench = Bench::new(MemoryLimits::default());
    let a = bench.append(&room("a"), 1);
    let b = bench.append(&room("b"), 1);
    assert_eq!((a.offset, b.offset), (1, 1));
    assert_ne!(a.epoch, b.epoch, "each stream has its own epoch");
    assert_eq!(bench.append(&room("a"), 2), Position { offset: 2, ..a });
    let (view, records) = bench.read(&room("a"), None, 10);
    assert_eq!(view.head, Position { offset: 2, ..a });
    assert_eq!((view.first, records), (1, Vec::<u64>::new()));
}

#[test]
fn an_append_comes_back_live_only_to_a_follower_and_after_its_answer() {
    let mut bench = Bench::new(MemoryLimits::default());
    let lobby = room("lobby");
    bench.append(&lobby, 1);
    bench.events(Operation::Follow {
        stream: lobby.clone(),
        retention: RETENTION,
    });
    let op = bench.op();
    let origin = Some(Origin {
        node: 1,
        session: crate::delivery::SessionId(9),
        op,
    });
    let events = bench.events(Operation::Append {
        op,
        stream: lobby.clone(),
        record: Record::new(
            0,
            origin,
            Message::Room {
                event: None,
                from: None,
                data: Payload::from_json("2").expect("JSON"),
            },
        ),
        retention: RETENTION,
    });
    match events.as_slice() {
        [
            EngineEvent::Appended {
                op: answered, at, ..
            },
            EngineEvent::Live {
                stream,
                at: live,
                record,
            },
        ] => {
            assert_eq!((*answered, at.offset, stream), (op, 2, &lobby));
            assert_eq!((live, record.offset, record.origin), (at, 2, origin));
        }
        other => panic!("{other:?}"),
    }
    bench.events(Operation::Unfollow(lobby.clone()));
    assert!(matches!(
        bench.append_with(&lobby, 3, RETENTION),
        EngineEvent::Appended { .. }
    ));
    assert_eq!(bench.engine.poll_event(), None, "no Live once unfollowed");
}

#[test]
fn a_read_is_whole_or_empty_with_the_view_to_tell() {
    let mut bench = Bench::new(MemoryLimits::default());
    let lobby = room("lobby");
    let at = (1..=5)
        .map(|n| bench.append(&lobby, n))
        .last()
        .expect("five");
    let position = |offset| Position { offset, ..at };
    // Kept: 3, 4, 5 (three messages).
    assert_eq!(bench.read(&lobby, Some(position(2)), 10).1, vec![3, 4, 5]);
    assert_eq!(
        bench.read(&lobby, Some(position(3)), 1).1,
        vec![4],
        "at most max"
    );
    assert_eq!(
        bench.read(&lobby, Some(position(5)), 10).1,
        Vec::<u64>::new()
    );
    let (view, records) = bench.read(&lobby, Some(position(1)), 10);
    assert!(
        records.is_empty() && !view.covers(position(1)),
        "message 2 is gone"
    );
    assert!(!view.covers(position(6)), "beyond the head");
    let other = Position {
        epoch: at.epoch + 1,
        offset: 3,
    };
    assert!(
        bench.read(&lobby, Some(other), 10).1.is_empty(),
        "another epoch"
    );
    assert!(view.covers(position(2)) && view.covers(position(5)));
}

#[test]
fn history_ages_out_exactly_at_its_age() {
    let mut bench = Bench::new(MemoryLimits::default());
    let lobby = room("lobby");
    let first = bench.append(&lobby, 1);
    bench.now += Duration::from_secs(30);
    bench.append(&lobby, 2);
    bench.now += Duration::from_secs(30) - Duration::from_nanos(1);
    assert_eq!(
        bench
            .read(&lobby, Some(Position { offset: 0, ..first }), 9)
            .1,
        vec![1, 2]
    );
    bench.now += Duration::from_nanos(1);
    let (view, records) = bench.read(&lobby, Some(Position { offset: 1, ..first }), 9);
    assert_eq!((view.first, records), (2, vec![2]));
    assert_eq!(bench.engine.stats().records, 1);
}

#[test]
fn past_the_total_a_stream_drops_its_own_oldest_and_a_new_stream_is_refused() {
    let size = record(1).size();
    let mut bench = Bench::new(MemoryLimits {
        max_bytes: 2 * size,
        max_outboxes: 10,
    });
    let big = Retention {
        max_messages: 100,
        ..RETENTION
    };
    let lobby = room("lobby");
    for n in 1..=2 {
        assert!(matches!(
            bench.append_with(&lobby, n, big),
            EngineEvent::Appended { .. }
        ));
    }
    // Full: the room's oldest goes to make room for its newest.
    let third = bench.append_with(&lobby, 3, big);
    assert!(matches!(third, EngineEvent::Appended { at, .. } if at.offset == 3));
    let head = bench.read(&lobby, None, 0).0;
    assert_eq!((head.first, head.head.offset), (2, 3));
    assert_eq!(bench.engine.stats().bytes, 2 * size);
    // Another stream has nothing to drop: refused, and the room keeps what it had.
    let refused = bench.append_with(&room("other"), 1, big);
    assert!(matches!(
        refused,
        EngineEvent::Failed {
            fault: Fault::LimitReached(_),
            ..
        }
    ));
    assert_eq!(bench.engine.stats().records, 2);
}

#[test]
fn outboxes_past_their_number_are_refused_and_an_emptied_one_frees_its_place() {
    let mut bench = Bench::new(MemoryLimits {
        max_bytes: 1 << 20,
        max_outboxes: 2,
    });
    bench.append(&outbox("a"), 1);
    bench.append(&outbox("b"), 1);
    bench.append(&outbox("a"), 2);
    let refused = bench.append_with(&outbox("c"), 1, RETENTION);
    assert!(matches!(
        refused,
        EngineEvent::Failed {
            fault: Fault::LimitReached(_),
            ..
        }
    ));
    assert_eq!(bench.engine.stats().outboxes, 2);
    // Their messages age out: "c" gets a place.
    bench.now += RETENTION.max_age;
    bench.events(Operation::Expire);
    assert_eq!(bench.engine.stats().outboxes, 0);
    assert!(matches!(
        bench.append_with(&outbox("c"), 1, RETENTION),
        EngineEvent::Appended { .. }
    ));
}

#[test]
fn a_read_mark_never_moves_back_nor_past_the_head() {
    let mut bench = Bench::new(MemoryLimits::default());
    let alice = UserId::new("alice").expect("valid");
    let at = (1..=3)
        .map(|n| bench.append(&outbox("alice"), n))
        .last()
        .expect("three");
    let mark = |bench: &mut Bench, offset, epoch| {
        let op = bench.op();
        let upto = Position { epoch, offset };
        match bench
            .events(Operation::MarkRead {
                op,
                user: alice.clone(),
                upto,
            })
            .as_slice()
        {
            [EngineEvent::Marked { before, read, .. }] => (*before, read.offset),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(mark(&mut bench, 2, at.epoch), (0, 2));
    assert_eq!(mark(&mut bench, 1, at.epoch), (2, 2), "never back");
    assert_eq!(mark(&mut bench, 9, at.epoch), (2, 3), "at most the head");
    assert_eq!(
        mark(&mut bench, 1, at.epoch + 1),
        (3, 3),
        "another epoch: no change"
    );
    assert_eq!(bench.read(&outbox("alice"), None, 0).0.read, 3);
}

#[test]
fn an_idle_stream_nobody_follows_is_forgotten_and_comes_back_in_a_new_epoch() {
    let mut bench = Bench::new(MemoryLimits::default());
    let lobby = room("lobby");
    let first = bench.append(&lobby, 1);
    bench.now += RETENTION.max_age;
    bench.events(Operation::Expire);
    assert_eq!(
        (bench.engine.stats().streams, bench.engine.stats().records),
        (1, 0),
        "emptied, and remembered a retention age longer"
    );
    bench.now += RETENTION.max_age;
    bench.events(Operation::Expire);
    assert_eq!(bench.engine.stats().streams, 0);
    let again = bench.append(&lobby, 2);
    assert_ne!(again.epoch, first.epoch);
    assert_eq!(again.offset, 1);
    // A followed stream is kept, empty as it may be.
    bench.events(Operation::Follow {
        stream: room("kept"),
        retention: RETENTION,
    });
    for _ in 0..2 {
        bench.now += Duration::from_secs(3600);
        bench.events(Operation::Expire);
    }
    assert_eq!(bench.engine.stats().streams, 1, "the followed one");
}
