//! The plan's scripts on a real `redis-server` (started here on a loopback port with a fresh
//! directory, stopped at the end), against the memory engine as the reference: the same
//! operations give the same events, epochs aside (each engine draws its own), and every append
//! comes back on its stream's channel, in offset order.
//!
//! Without `redis-server` these tests are ignored (`apt-get install redis-server`);
//! `ROOMCAST_REQUIRE_REDIS=1` runs them anyway, so that a missing server fails them (CI).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use roomcast_core::cursor::Position;
use roomcast_core::engine::{
    Engine, EngineEvent, MemoryEngine, MemoryLimits, Message, OpId, Operation, Record, Retention,
    StreamId,
};
use roomcast_core::envelope::Payload;
use roomcast_core::names::{RoomName, UserId};
use roomcast_redis::driver::{error_reply, reply};
use roomcast_redis::plan::{Call, Plan, PlanConfig, Step};
use roomcast_tests::redis::RedisServer;

/// A `redis-server` of this test: no persistence, loopback only; killed when dropped.
struct Server(RedisServer);

impl Server {
    fn start() -> Self {
        Self(RedisServer::start(env!("ROOMCAST_TEST_REDIS_SERVER"), &[]))
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.0.url())?.get_connection()
    }
}

/// Runs a plan's step on `connection` (scripts by `EVAL`, each call's reply in its place).
fn run(plan: &Plan, connection: &mut redis::Connection, step: Step) -> Vec<EngineEvent> {
    let Step::Run { calls, answer } = step else {
        return Vec::new();
    };
    let replies = calls
        .into_iter()
        .map(|call| {
            let command = match call {
                Call::Script { script, keys, args } => {
                    let mut command = redis::cmd("EVAL");
                    command.arg(script.source()).arg(keys.len()).arg(keys);
                    for arg in args {
                        command.arg(arg);
                    }
                    command
                }
                Call::Head { key } => {
                    let mut command = redis::cmd("HMGET");
                    command.arg(key).arg("e").arg("o");
                    command
                }
                Call::Command(words) => {
                    let mut command = redis::cmd(&String::from_utf8_lossy(&words[0]));
                    for word in &words[1..] {
                        command.arg(word.as_slice());
                    }
                    command
                }
            };
            match command.query::<redis::Value>(connection) {
                Ok(value) => reply(value),
                Err(error) => error_reply(&error),
            }
        })
        .collect();
    plan.answer(answer, replies)
}

fn room(name: &str) -> StreamId {
    StreamId::Room(RoomName::new(name).expect("valid"))
}

fn outbox(name: &str) -> StreamId {
    StreamId::Outbox(UserId::new(name).expect("valid"))
}

fn record(n: u64, size: usize) -> Record {
    let text = format!("{n}{}", "x".repeat(size));
    Record::new(
        0,
        None,
        Message::Room {
            event: None,
            from: None,
            data: Payload::from_json(&format!("\"{text}\"")).expect("JSON"),
        },
    )
}

const RETENTION: Retention = Retention {
    max_messages: 5,
    max_bytes: 800,
    max_age: Duration::from_secs(3600),
};

/// What the tests do to the two engines.
#[derive(Clone, Debug)]
enum Act {
    Append { stream: usize, size: usize },
    Read { stream: usize, back: u64 },
    ReadView { stream: usize },
    Mark { back: u64 },
    Tops,
}

const STREAMS: usize = 3;

fn stream(index: usize) -> StreamId {
    match index {
        0 => room("lobby"),
        1 => outbox("alice"),
        _ => StreamId::Broadcast,
    }
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (0..STREAMS, prop_oneof![8 => 0usize..60, 1 => 100usize..900])
            .prop_map(|(stream, size)| Act::Append { stream, size }),
        2 => (0..STREAMS, 0u64..8).prop_map(|(stream, back)| Act::Read { stream, back }),
        1 => (0..STREAMS).prop_map(|stream| Act::ReadView { stream }),
        1 => (0u64..4).prop_map(|back| Act::Mark { back }),
        1 => Just(Act::Tops),
    ]
}

/// Epochs replaced by their order of appearance, so two engines' events compare.
#[derive(Default)]
struct Epochs(BTreeMap<u64, u64>);

impl Epochs {
    fn of(&mut self, epoch: u64) -> u64 {
        let next = self.0.len() as u64;
        *self.0.entry(epoch).or_insert(next)
    }

    fn position(&mut self, at: Position) -> Position {
        Position {
            epoch: self.of(at.epoch),
            offset: at.offset,
        }
    }

    /// An event with its epochs replaced, its records by their offsets and data, and a fault
    /// by its kind.
    fn normal(&mut self, event: EngineEvent) -> String {
        match event {
            EngineEvent::Appended { op, at, .. } => {
                format!("appended {op:?} {:?}", self.position(at))
            }
            EngineEvent::Failed { op, fault } => {
                let kind = match fault {
                    roomcast_core::engine::Fault::LimitReached(_) => "limit",
                    _ => "unavailable",
                };
                format!("failed {op:?} {kind}")
            }
            EngineEvent::Read {
                op,
                stream,
                view,
                records,
            } => {
                let head = self.position(view.head);
                let records: Vec<String> = records.iter().map(describe).collect();
                format!(
                    "read {op:?} {stream:?} {head:?} first {} read {} {records:?}",
                    view.first, view.read
                )
            }
            EngineEvent::Marked {
                op,
                user,
                before,
                read,
            } => format!("marked {op:?} {user} {before} {:?}", self.position(read)),
            EngineEvent::Tops { op, mut heads } => {
                // A stream that holds nothing may be left out (the memory engine knows every
                // stream followed; Redis, those with a meta): there is nothing to miss in it.
                heads.retain(|(_, head)| head.offset > 0);
                heads.sort();
                let heads: Vec<String> = heads
                    .into_iter()
                    .map(|(stream, head)| format!("{stream:?} {:?}", self.position(head)))
                    .collect();
                format!("tops {op:?} {heads:?}")
            }
            EngineEvent::Live { stream, at, record } => {
                format!(
                    "live {stream:?} {:?} {}",
                    self.position(at),
                    describe(&record)
                )
            }
            other => format!("{other:?}"),
        }
    }
}

fn describe(record: &Arc<Record>) -> String {
    match &record.message {
        Message::Room { data, .. } => {
            // The act's number, which each record's data starts with.
            let json = data.as_json().trim_start_matches('"');
            let n: String = json.chars().take_while(char::is_ascii_digit).collect();
            format!("{}:{n}:{}", record.offset, json.len())
        }
        other => format!("{}:{other:?}", record.offset),
    }
}

/// Both engines through the same acts, following every stream: the events side by side.
fn compare(server: &Server, acts: &[Act]) -> Result<(), TestCaseError> {
    let mut connection = server.connection().expect("connects");
    redis::cmd("FLUSHALL")
        .query::<()>(&mut connection)
        .expect("flushes");
    let mut pubsub_connection = server.connection().expect("connects");
    let mut pubsub = pubsub_connection.as_pubsub();
    let mut plan = Plan::new(PlanConfig::default(), 11);
    let mut memory = MemoryEngine::new(
        MemoryLimits {
            max_bytes: usize::MAX / 2,
            max_outboxes: usize::MAX / 2,
        },
        3,
    );
    let now = Instant::now();
    let (mut mine, mut theirs) = (Epochs::default(), Epochs::default());
    let (mut lives_memory, mut lives_redis) = (Vec::new(), Vec::new());
    // Where each stream stands in each engine, for positions that mean the same in both.
    let mut heads: BTreeMap<usize, (Position, Position)> = BTreeMap::new();
    for index in 0..STREAMS {
        let follow = Operation::Follow {
            stream: stream(index),
            retention: RETENTION,
        };
        memory.handle(now, follow.clone());
        match plan.plan(0, follow) {
            Step::Subscribe(channel) => pubsub.subscribe(channel).expect("subscribes"),
            other => panic!("{other:?}"),
        }
    }
    for (n, act) in acts.iter().enumerate() {
        let op = OpId(n as u64 + 1);
        let position = |heads: &BTreeMap<usize, (Position, Position)>, index: usize, back: u64| {
            heads.get(&index).map(|(m, r)| {
                let at = |p: Position| Position {
                    offset: p.offset.saturating_sub(back),
                    ..p
                };
                (at(*m), at(*r))
            })
        };
        let (for_memory, for_redis) = match act {
            Act::Append {
                stream: index,
                size,
            } => {
                let operation = Operation::Append {
                    op,
                    stream: stream(*index),
                    record: record(n as u64, *size),
                    retention: RETENTION,
                };
                (operation.clone(), operation)
            }
            Act::Read {
                stream: index,
                back,
            } => {
                let (m, r) = position(&heads, *index, *back).unzip();
                let read = |after| Operation::Read {
                    op,
                    stream: stream(*index),
                    after,
                    max: 3,
                };
                (read(m), read(r))
            }
            Act::ReadView { stream: index } => {
                let read = Operation::Read {
                    op,
                    stream: stream(*index),
                    after: None,
                    max: 10,
                };
                (read.clone(), read)
            }
            Act::Mark { back, .. } => {
                let Some((m, r)) = position(&heads, 1, *back) else {
                    continue;
                };
                let mark = |upto| Operation::MarkRead {
                    op,
                    user: UserId::new("alice").expect("valid"),
                    upto,
                };
                (mark(m), mark(r))
            }
            Act::Tops => {
                let tops = Operation::Tops {
                    op,
                    streams: (0..STREAMS).map(stream).collect(),
                };
                (tops.clone(), tops)
            }
        };
        memory.handle(now, for_memory);
        let mut from_memory = Vec::new();
        while let Some(event) = memory.poll_event() {
            match event {
                EngineEvent::Live { .. } => lives_memory.push(mine.normal(event)),
                event => from_memory.push(event),
            }
        }
        let step = plan.plan(0, for_redis);
        let from_redis = run(&plan, &mut connection, step);
        // Heads as each engine reports them, kept per stream.
        for (events, side) in [(&from_memory, 0), (&from_redis, 1)] {
            for event in events {
                let found = match event {
                    EngineEvent::Appended { at, .. } => Some((act_stream(act), *at)),
                    EngineEvent::Read { view, .. } => Some((act_stream(act), view.head)),
                    _ => None,
                };
                if let Some((Some(index), head)) = found {
                    let entry = heads.entry(index).or_insert((head, head));
                    if side == 0 {
                        entry.0 = head;
                    } else {
                        entry.1 = head;
                    }
                }
            }
        }
        let a: Vec<String> = from_memory.into_iter().map(|e| mine.normal(e)).collect();
        let b: Vec<String> = from_redis.into_iter().map(|e| theirs.normal(e)).collect();
        prop_assert_eq!(a, b, "act {} {:?}", n, act);
    }
    // Every append came back on its channel, in order, as the memory engine's Lives.
    pubsub
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a timeout");
    while lives_redis.len() < lives_memory.len() {
        let message = match pubsub.get_message() {
            Ok(message) => message,
            Err(error) if error.is_timeout() => break,
            Err(error) => panic!("{error}"),
        };
        let payload: Vec<u8> = message.get_payload().expect("bytes");
        let live = plan
            .live(message.get_channel_name(), &payload)
            .expect("a live record");
        lives_redis.push(theirs.normal(live));
    }
    prop_assert_eq!(lives_memory, lives_redis);
    Ok(())
}

fn act_stream(act: &Act) -> Option<usize> {
    match act {
        Act::Append { stream, .. } | Act::Read { stream, .. } | Act::ReadView { stream } => {
            Some(*stream)
        }
        Act::Mark { .. } => Some(1),
        Act::Tops => None,
    }
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn the_scripts_do_what_the_memory_engine_does() {
    let server = Server::start();
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(acts in proptest::collection::vec(act(), 1..40))| {
        compare(&server, &acts)?;
    });
}

/// `verify.lua`, the check after a reconnection: a stream that still holds the record a node
/// delivered keeps its epoch; one whose record at that offset is another (its nonce differs),
/// or whose offset never reached it (writes lost in a failover), starts a new epoch; a record
/// trimmed since cannot be compared and is let be.
#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_stream_that_lost_what_a_node_delivered_starts_a_new_epoch() {
    let server = Server::start();
    let mut connection = server.connection().expect("connects");
    let mut plan = Plan::new(PlanConfig::default(), 11);
    let lobby = room("verify");
    let append = |plan: &mut Plan, connection: &mut redis::Connection, n: u64| {
        let operation = Operation::Append {
            op: OpId(n),
            stream: lobby.clone(),
            record: record(n, 1),
            retention: RETENTION,
        };
        let step = plan.plan(1_000, operation);
        match run(plan, connection, step).as_slice() {
            [EngineEvent::Appended { at, .. }] => *at,
            other => panic!("{other:?}"),
        }
    };
    let log = plan.keys().log(&lobby);
    let nonce_at = |connection: &mut redis::Connection, offset: u64| -> String {
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(&log)
            .arg(format!("{offset}-0"))
            .arg(format!("{offset}-0"))
            .query(connection)
            .expect("XRANGE");
        entries[0].1[3].clone()
    };
    let verify = |plan: &mut Plan, connection: &mut redis::Connection, at, nonce: &str| {
        let Call::Script { script, keys, args } = plan.verify(&lobby, at, nonce) else {
            panic!("a script");
        };
        let mut command = redis::cmd("EVAL");
        command.arg(script.source()).arg(keys.len()).arg(keys);
        for arg in args {
            command.arg(arg);
        }
        let reset: i64 = command.query(connection).expect("verify");
        let epoch: u64 = redis::cmd("HGET")
            .arg(plan.keys().meta(&lobby))
            .arg("e")
            .query(connection)
            .expect("HGET");
        (reset, epoch)
    };
    let mut last = Position {
        epoch: 0,
        offset: 0,
    };
    for n in 1..=3 {
        last = append(&mut plan, &mut connection, n);
    }
    let nonce = nonce_at(&mut connection, 3);
    // Still there: nothing changes.
    assert_eq!(
        verify(&mut plan, &mut connection, last, &nonce),
        (0, last.epoch)
    );
    // Another record at that offset (given out again after a failover): a new epoch.
    let (reset, epoch) = verify(&mut plan, &mut connection, last, "0000000000000000");
    assert_eq!(reset, 1);
    assert_ne!(epoch, last.epoch);
    // A position of an epoch the stream no longer has: the hub finds that by itself.
    assert_eq!(
        verify(&mut plan, &mut connection, last, "0000000000000000"),
        (0, epoch)
    );
    // An offset the stream never reached (lost writes): a new epoch.
    let ahead = Position { epoch, offset: 9 };
    let (reset, newer) = verify(&mut plan, &mut connection, ahead, "x");
    assert_eq!(reset, 1);
    assert_ne!(newer, epoch);
    // Trimmed since (RETENTION keeps 5): nothing left to compare, nothing changes.
    for n in 4..=10 {
        last = append(&mut plan, &mut connection, n);
    }
    assert_eq!(last.epoch, newer);
    let trimmed = Position {
        epoch: newer,
        offset: 2,
    };
    assert_eq!(verify(&mut plan, &mut connection, trimmed, "x"), (0, newer));
}

/// An append is idempotent by its nonce: its retry (after a link failure lost the answer)
/// answers the first attempt's position; a first attempt arriving after its retry (a
/// connection that delivered it late) answers the retry's; nothing is stored twice.
#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn an_append_retried_or_arriving_late_is_stored_once() {
    let server = Server::start();
    let mut connection = server.connection().expect("connects");
    let mut plan = Plan::new(PlanConfig::default(), 5);
    let lobby = room("once");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let position = |events: Vec<EngineEvent>| match events.as_slice() {
        [EngineEvent::Appended { at, .. }] => *at,
        other => panic!("{other:?}"),
    };
    let append = |plan: &mut Plan, n: u64, at_ms: u64| {
        let operation = Operation::Append {
            op: OpId(n),
            stream: lobby.clone(),
            record: record(n, 1),
            retention: RETENTION,
        };
        match plan.plan(at_ms, operation) {
            Step::Run { calls, answer } => (calls, answer),
            other => panic!("{other:?}"),
        }
    };
    let run_calls = |connection: &mut redis::Connection, plan: &Plan, calls: Vec<Call>, answer| {
        run(plan, connection, Step::Run { calls, answer })
    };
    // Stored, then retried: the same position, one record.
    let (calls, answer) = append(&mut plan, 1, now_ms);
    let first = position(run_calls(
        &mut connection,
        &plan,
        calls.clone(),
        answer.clone(),
    ));
    let retry = Plan::retry(&calls).expect("an append's calls");
    let again = position(run_calls(&mut connection, &plan, retry, answer.clone()));
    assert_eq!(again, first);
    // A retry that comes first (its first attempt held up on the way), then the first
    // attempt, late: the retry stores it, and the first attempt finds the retry's marker.
    let (calls2, answer2) = append(&mut plan, 2, now_ms);
    let retry2 = Plan::retry(&calls2).expect("an append's calls");
    let second = position(run_calls(&mut connection, &plan, retry2, answer2.clone()));
    assert_eq!(second.offset, first.offset + 1);
    let late = position(run_calls(&mut connection, &plan, calls2, answer2));
    assert_eq!(late, second);
    // A retry of an append that never reached Redis: stored now.
    let (calls3, answer3) = append(&mut plan, 3, now_ms);
    let retry3 = Plan::retry(&calls3).expect("an append's calls");
    let third = position(run_calls(&mut connection, &plan, retry3, answer3));
    assert_eq!(third.offset, second.offset + 1);
    let kept: usize = redis::cmd("XLEN")
        .arg(plan.keys().log(&lobby))
        .query(&mut connection)
        .expect("XLEN");
    assert_eq!(kept, 3, "each message once");
}
