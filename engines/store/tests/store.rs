//! The store over a real file and over a backend that loses power: what it acknowledges it
//! keeps, across reopening, and nothing torn.

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use redb::{BackendError, StorageBackend};
use roomcast_core::cursor::Position;
use roomcast_core::engine::{EngineEvent, Message, OpId, Operation, Record, Retention, StreamId};
use roomcast_core::envelope::Payload;
use roomcast_core::names::{RoomName, UserId};
use roomcast_io::EngineLink;
use roomcast_store::{Restored, Store, StoreError, StoreLimits, StoreOptions};

const RETENTION: Retention = Retention {
    max_messages: 1000,
    max_bytes: 1 << 20,
    max_age: Duration::from_secs(3600),
};

fn lobby() -> StreamId {
    StreamId::Room(RoomName::new("lobby").expect("valid"))
}

fn record(n: u64) -> Record {
    Record::new(
        0,
        None,
        Message::Room {
            event: None,
            from: Some(UserId::new("alice").expect("valid")),
            data: Payload::from_json(&format!("{{\"n\":{n}}}")).expect("JSON"),
        },
    )
}

fn append(op: u64, stream: &StreamId, n: u64) -> Operation {
    Operation::Append {
        op: OpId(op),
        stream: stream.clone(),
        record: record(n),
        retention: RETENTION,
    }
}

fn read(op: u64, stream: &StreamId, after: Option<Position>) -> Operation {
    Operation::Read {
        op: OpId(op),
        stream: stream.clone(),
        after,
        max: 10_000,
    }
}

/// A fresh directory for one test.
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("roomcast-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A running store and what it says.
struct Running {
    link: roomcast_store::StoreLink,
    events: Receiver<Vec<EngineEvent>>,
    _running: roomcast_store::Running,
}

fn start(store: Store) -> Running {
    let (sender, events) = mpsc::channel();
    let link = store.link();
    let running = store.start(move |batch| {
        let _ = sender.send(batch);
    });
    Running {
        link,
        events,
        _running: running,
    }
}

impl Running {
    fn submit(&mut self, operations: impl IntoIterator<Item = Operation>) {
        for operation in operations {
            self.link.submit(Instant::now(), operation);
        }
    }

    /// Events until `done` holds of one of them (within 10 s).
    fn until(&self, done: impl Fn(&EngineEvent) -> bool) -> Vec<EngineEvent> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        loop {
            let batch = self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the store answers within 10 s");
            let finished = batch.iter().any(&done);
            seen.extend(batch);
            if finished {
                return seen;
            }
        }
    }

    /// The records of `stream` after `after`, and its view.
    fn read(
        &mut self,
        op: u64,
        stream: &StreamId,
        after: Option<Position>,
    ) -> (Position, Vec<Arc<Record>>) {
        self.submit([read(op, stream, after)]);
        let events = self.until(|e| matches!(e, EngineEvent::Read { op: o, .. } if *o == OpId(op)));
        match events.into_iter().last() {
            Some(EngineEvent::Read { view, records, .. }) => (view.head, records),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn what_was_stored_is_there_after_reopening_and_offsets_go_on() {
    let dir = fresh_dir("reopen");
    let (store, restored) = Store::open(&dir, StoreOptions::default()).expect("opens");
    assert_eq!(restored.messages, 0);
    let mut running = start(store);
    running.submit([Operation::Follow {
        stream: lobby(),
        retention: RETENTION,
    }]);
    running.submit((1..=50).map(|n| append(n, &lobby(), n)));
    let events =
        running.until(|e| matches!(e, EngineEvent::Appended { op, .. } if *op == OpId(50)));
    // Each append is answered, then comes back live, in offset order.
    let appended: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Appended { at, .. } => Some(at.offset),
            _ => None,
        })
        .collect();
    assert_eq!(appended, (1..=50).collect::<Vec<_>>());
    let live: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Live { at, .. } => Some(at.offset),
            _ => None,
        })
        .collect();
    assert_eq!(live, appended);
    let (head, _) = running.read(100, &lobby(), None);
    drop(running);
    let (store, restored) = Store::open(&dir, StoreOptions::default()).expect("opens again");
    assert_eq!((restored.streams, restored.messages), (1, 50));
    let mut running = start(store);
    let (again, records) = running.read(1, &lobby(), Some(Position { offset: 0, ..head }));
    assert_eq!(again, head, "the same epoch and head");
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (1..=50).collect::<Vec<_>>());
    assert_eq!(*records[9], record(10).at(10), "what was stored");
    running.submit([append(2, &lobby(), 51)]);
    let events = running.until(|e| matches!(e, EngineEvent::Appended { .. }));
    assert!(
        matches!(events.last(), Some(EngineEvent::Appended { at, .. }) if *at == Position { offset: 51, ..head })
    );
}

#[test]
fn a_directory_another_store_holds_is_refused() {
    let dir = fresh_dir("locked");
    let (first, _) = Store::open(&dir, StoreOptions::default()).expect("opens");
    match Store::open(&dir, StoreOptions::default()) {
        Err(StoreError::Locked(locked)) => assert_eq!(locked, dir),
        other => panic!("not refused: {:?}", other.map(|(_, r)| r)),
    }
    drop(first);
    assert!(
        Store::open(&dir, StoreOptions::default()).is_ok(),
        "free once closed"
    );
}

/// After a purge (here, every record past its age), compaction gives the freed pages back:
/// the file shrinks, and what is kept is still there. Refused while a store holds the directory.
#[test]
fn compaction_shrinks_the_file_after_a_purge_and_keeps_what_is_kept() {
    let dir = fresh_dir("compact");
    let (store, _) = Store::open(&dir, StoreOptions::default()).expect("opens");
    let mut running = start(store);
    let short = Retention {
        max_age: Duration::from_millis(300),
        ..RETENTION
    };
    let big = Payload::from_json(&format!("\"{}\"", "x".repeat(4000))).expect("JSON");
    let other = StreamId::Room(RoomName::new("kept").expect("valid"));
    let mut op = 0;
    for n in 0..600 {
        op += 1;
        let (stream, retention) = if n % 100 == 0 {
            (other.clone(), RETENTION)
        } else {
            (lobby(), short)
        };
        let record = Record::new(
            0,
            None,
            Message::Room {
                event: None,
                from: None,
                data: big.clone(),
            },
        );
        running.submit([Operation::Append {
            op: OpId(op),
            stream,
            record,
            retention,
        }]);
    }
    let last = OpId(op);
    running.until(|e| matches!(e, EngineEvent::Appended { op, .. } if *op == last));
    match roomcast_store::compact(&dir) {
        Err(StoreError::Locked(locked)) => assert_eq!(locked, dir),
        other => panic!("not refused while open: {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(400));
    running.submit([Operation::Expire]);
    // A read after the sweep: it is committed by then.
    running.read(10_000, &other, None);
    drop(running);
    let compacted = roomcast_store::compact(&dir).expect("compacts");
    assert!(
        compacted.after * 2 < compacted.before,
        "{compacted:?}: 594 of 600 records of 4 KB were purged"
    );
    let (store, restored) = Store::open(&dir, StoreOptions::default()).expect("opens");
    assert_eq!(restored.messages, 6, "{restored:?}");
    let mut running = start(store);
    let (head, _) = running.read(1, &other, None);
    let (_, records) = running.read(2, &other, Some(Position { offset: 0, ..head }));
    assert_eq!(records.len(), 6);
}

#[test]
fn past_the_total_a_new_stream_is_refused_and_an_old_one_makes_room() {
    let dir = fresh_dir("budget");
    let size = record(1).size() as u64;
    let options = StoreOptions {
        limits: StoreLimits {
            max_bytes: 3 * size,
            max_outboxes: 10,
        },
        ..StoreOptions::default()
    };
    let (store, _) = Store::open(&dir, options).expect("opens");
    let mut running = start(store);
    running.submit((1..=4).map(|n| append(n, &lobby(), n)));
    let events = running.until(|e| matches!(e, EngineEvent::Appended { op, .. } if *op == OpId(4)));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, EngineEvent::Appended { .. }))
            .count(),
        4
    );
    let other = StreamId::Room(RoomName::new("other").expect("valid"));
    running.submit([append(5, &other, 1)]);
    let events = running.until(|e| matches!(e, EngineEvent::Failed { .. }));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, EngineEvent::Failed { op, .. } if *op == OpId(5)))
    );
    let (head, _) = running.read(6, &lobby(), None);
    let (_, kept) = running.read(7, &lobby(), Some(Position { offset: 1, ..head }));
    assert_eq!(
        kept.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![2, 3, 4],
        "the oldest made room"
    );
}

/// The figures a running store reports (kept by each commit) are what a count of the file
/// finds: rooms holding history, outboxes of users away, messages and bytes, through appends,
/// trimming by count, follows and unfollows.
#[test]
fn the_figures_are_what_is_stored() {
    let dir = fresh_dir("figures");
    let (store, _) = Store::open(&dir, StoreOptions::default()).expect("opens");
    let mut running = start(store);
    let room = |n: u64| StreamId::Room(RoomName::new(&format!("room{n}")).expect("valid"));
    let outbox = |n: u64| StreamId::Outbox(UserId::new(&format!("user{n}")).expect("valid"));
    let short = Retention {
        max_messages: 3,
        ..RETENTION
    };
    let mut op = 0;
    let mut next = || {
        op += 1;
        op
    };
    let mut operations = Vec::new();
    for n in 1..=4 {
        operations.push(Operation::Follow {
            stream: outbox(n),
            retention: short,
        });
    }
    for n in 1..=20 {
        operations.push(Operation::Append {
            op: OpId(next()),
            stream: room(n % 5),
            record: record(n),
            retention: short,
        });
        operations.push(Operation::Append {
            op: OpId(next()),
            stream: outbox(n % 7),
            record: record(n),
            retention: short,
        });
    }
    operations.push(Operation::Unfollow(outbox(1)));
    operations.push(Operation::Unfollow(outbox(2)));
    let last = next();
    operations.push(read(last, &lobby(), None));
    running.submit(operations);
    running.until(|e| matches!(e, EngineEvent::Read { op, .. } if *op == OpId(last)));
    let stats = running.link.stats();
    // 5 rooms and 7 outboxes, 3 messages each at most; users 0, 5, 6 never followed, 1 and 2
    // left: 5 outboxes of users away.
    assert_eq!(stats.rooms_with_history, 5);
    assert_eq!(stats.messages, 5 * 3 + 6 * 3 + 2, "user0 got 2 (n = 7, 14)");
    assert_eq!(stats.outboxes, 5);
    drop(running);
    let (store, _) = Store::open(&dir, StoreOptions::default()).expect("opens again");
    let counted = store.link().stats();
    assert_eq!(
        (counted.rooms_with_history, counted.messages, counted.bytes),
        (stats.rooms_with_history, stats.messages, stats.bytes),
        "reopened, a count of the file agrees"
    );
    assert_eq!(
        counted.outboxes, 7,
        "reopened, nobody follows: every user is away"
    );
}

/// A disk that keeps only what was synced: at the `crash_at`th operation the power goes, every
/// write since the last sync is lost, and every call fails from then on.
#[derive(Debug, Clone)]
struct Flaky {
    state: Arc<Mutex<Disk>>,
}

#[derive(Debug, Default)]
struct Disk {
    /// What a sync made durable.
    durable: Vec<u8>,
    /// What the process sees: durable plus the writes since.
    live: Vec<u8>,
    ops: u64,
    crash_at: u64,
    crashed: bool,
}

impl Flaky {
    fn new(durable: Vec<u8>, crash_at: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(Disk {
                live: durable.clone(),
                durable,
                crash_at,
                ..Disk::default()
            })),
        }
    }

    fn step(&self) -> Result<std::sync::MutexGuard<'_, Disk>, BackendError> {
        let mut disk = self.state.lock().expect("not poisoned");
        disk.ops += 1;
        if disk.crashed || disk.ops >= disk.crash_at {
            disk.crashed = true;
            return Err(BackendError::Io(std::io::Error::other("the power went")));
        }
        Ok(disk)
    }

    fn durable(&self) -> Vec<u8> {
        self.state.lock().expect("not poisoned").durable.clone()
    }
}

impl StorageBackend for Flaky {
    fn len(&self) -> Result<u64, BackendError> {
        Ok(self.step()?.live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        let disk = self.step()?;
        let start = offset as usize;
        let bytes = disk
            .live
            .get(start..start + out.len())
            .ok_or_else(|| BackendError::Io(std::io::Error::other("read past the end")))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), BackendError> {
        self.step()?.live.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), BackendError> {
        let mut disk = self.step()?;
        disk.durable = disk.live.clone();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let mut disk = self.step()?;
        let start = offset as usize;
        if disk.live.len() < start + data.len() {
            disk.live.resize(start + data.len(), 0);
        }
        disk.live[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// Runs appends to two streams against a disk that loses power at `crash_at`; returns the
/// positions acknowledged before the crash, and what the disk kept.
fn run_until_the_power_goes(
    crash_at: u64,
    batches: &[u8],
) -> (Vec<(StreamId, Position, u64)>, Vec<u8>) {
    let disk = Flaky::new(Vec::new(), u64::MAX);
    // Made on a disk that does not fail, then failing from `crash_at` operations on.
    let (store, _) = Store::with_backend(disk.clone(), StoreOptions::default()).expect("made");
    {
        // One guard: the two sides of an assignment would lock twice in one statement.
        let mut state = disk.state.lock().expect("not poisoned");
        state.crash_at = state.ops + crash_at;
    }
    let mut running = start(store);
    let streams = [
        lobby(),
        StreamId::Outbox(UserId::new("bob").expect("valid")),
    ];
    let mut acknowledged = Vec::new();
    let mut op = 0;
    'batches: for size in batches {
        let mut sent = Vec::new();
        for _ in 0..u64::from(*size % 8 + 1) {
            op += 1;
            let stream = &streams[(op % 2) as usize];
            sent.push((OpId(op), stream.clone(), op));
            running.submit([append(op, stream, op)]);
        }
        let last = sent.last().map(|(op, _, _)| *op).expect("one at least");
        for event in running.until(|e| matches!(e, EngineEvent::Appended { op, .. } | EngineEvent::Failed { op, .. } if *op == last)) {
            match event {
                EngineEvent::Appended { op, at, .. } => {
                    let (_, stream, n) = sent.iter().find(|(o, _, _)| *o == op).expect("sent").clone();
                    acknowledged.push((stream, at, n));
                }
                EngineEvent::Failed { .. } => break 'batches,
                _ => {}
            }
        }
    }
    drop(running);
    (acknowledged, disk.durable())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whenever the power goes, the disk holds every acknowledged record, exactly once, at its
    /// acknowledged position, whole; and the stream goes on from there.
    #[test]
    fn the_power_can_go_at_any_operation_and_nothing_acknowledged_is_lost(
        crash_at in 1u64..600,
        batches in proptest::collection::vec(any::<u8>(), 1..30),
    ) {
        let (acknowledged, durable) = run_until_the_power_goes(crash_at, &batches);
        let reopened = Store::with_backend(Flaky::new(durable, u64::MAX), StoreOptions::default());
        let (store, restored): (Store, Restored) = match reopened {
            Ok(opened) => opened,
            Err(error) => return Err(TestCaseError::fail(format!("does not reopen: {error}"))),
        };
        prop_assert!(restored.messages >= acknowledged.len() as u64);
        let mut running = start(store);
        let mut op = 1_000_000;
        for stream in [lobby(), StreamId::Outbox(UserId::new("bob").expect("valid"))] {
            let ours: Vec<&(StreamId, Position, u64)> = acknowledged.iter().filter(|(s, _, _)| *s == stream).collect();
            let Some((_, first, _)) = ours.first() else { continue };
            op += 1;
            let (head, records) = running.read(op, &stream, Some(Position { offset: 0, ..*first }));
            prop_assert_eq!(head.epoch, first.epoch, "the same epoch");
            for (_, at, n) in &ours {
                let found: Vec<&Arc<Record>> = records.iter().filter(|r| r.offset == at.offset).collect();
                prop_assert_eq!(found.len(), 1, "offset {} once", at.offset);
                prop_assert_eq!(&**found[0], &record(*n).at(at.offset), "whole");
            }
            let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
            prop_assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "contiguous: {:?}", offsets);
        }
    }
}
