//! Hub fan-out speed against baselines measured in the same run, and the hub's memory per
//! session and per room membership. Prints ns per delivery, the ratios and the memory at the end.
//!
//! The target: one 256-byte room message to 10,000 and 100,000 member sessions costs at most 2x
//! cloning one `Arc<[u8]>` into N `VecDeque`s, and at least 25x less than serializing the message
//! once per recipient with serde_json.
//!
//! `cargo bench -p roomcast-core --bench hub` (add `-- --quick` for a short run).

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput};
use roomcast_core::delivery::{SessionId, Shared};
use roomcast_core::engine::{Engine, MemoryEngine, MemoryLimits};
use roomcast_core::envelope::{ClientEnvelope, ClientMessage, Frame, Payload};
use roomcast_core::hub::{Connect, Hub, HubConfig, HubEvent, Published, Transmit, recipients};
use roomcast_core::names::{RoomName, UserId};

/// Member sessions of the room, per benchmark group.
const SIZES: [usize; 2] = [10_000, 100_000];
/// Size of the message's `data`, in bytes of JSON.
const PAYLOAD_BYTES: usize = 256;
/// Sessions per batch when measuring memory (see `measure_memory`).
const MEMORY_SESSIONS: usize = 100_000;
/// Sessions per batch when measuring memberships of distinct users: each join announces a new
/// user to every member, so that setup is quadratic.
const MEMORY_DISTINCT_MEMBERS: usize = 5_000;

/// The bench's one reading of the clock. The core is sans-IO and `core/clippy.toml` bans the
/// clock; a bench needs one real `now` to pass in, and the start of the run to tell this run's
/// criterion estimates from older ones.
#[allow(clippy::disallowed_methods)]
fn clock() -> (Instant, SystemTime) {
    (Instant::now(), SystemTime::now())
}

/// A chat message as an application would send it, exactly `PAYLOAD_BYTES` of JSON.
fn payload_json() -> String {
    let head = r#"{"kind":"chat","author":{"id":"u_1842","name":"Ada Lovelace"},"ts":1718000000123,"tags":["general","greeting"],"reactions":{"+1":3,"heart":1},"text":""#;
    let tail = r#""}"#;
    let text: String = "hello there, this is a message to the whole room. "
        .chars()
        .cycle()
        .take(PAYLOAD_BYTES - head.len() - tail.len())
        .collect();
    let json = format!("{head}{text}{tail}");
    assert_eq!(json.len(), PAYLOAD_BYTES);
    json
}

fn config() -> HubConfig {
    HubConfig::default()
}

fn room() -> RoomName {
    RoomName::new("lobby").expect("valid room name")
}

/// Moves the hub's engine operations to a memory engine and its events back, until nothing
/// moves; `transmit` takes each transmit of the hub on the way. Returns the results of the
/// hub's commands.
fn settle(
    hub: &mut Hub,
    engine: &mut MemoryEngine,
    now: Instant,
    mut transmit: impl FnMut(Transmit),
) -> Vec<HubEvent> {
    let mut done = Vec::new();
    loop {
        while let Some(t) = hub.poll_transmit() {
            transmit(t);
        }
        let mut moved = false;
        while let Some(operation) = hub.poll_engine() {
            moved = true;
            engine.handle(now, operation);
        }
        while let Some(event) = engine.poll_event() {
            moved = true;
            hub.handle_engine(now, event);
            while let Some(t) = hub.poll_transmit() {
                transmit(t);
            }
        }
        done.extend(std::iter::from_fn(|| hub.poll_event()));
        if !moved {
            return done;
        }
    }
}

/// What a driver does with the hub's output: the engine's answers back to the hub (a memory
/// engine's, in the same call), one pointer into each recipient's queue (a `Vec` indexed by
/// `SessionId::index`), then the queues are emptied, as a transport writing them out would. The
/// same shape of work as the `arc_vecdeque` baseline, plus the hub's own and the engine's.
struct Driver {
    queues: Vec<VecDeque<Shared>>,
    engine: MemoryEngine,
    now: Instant,
    /// The last command's result.
    published: Option<Published>,
}

impl Driver {
    /// Queues for `n` sessions, allocated up front, before the hub, as a transport that sizes
    /// its per-connection queues when it accepts connections would; the baseline's are made the
    /// same way, so neither is favoured by where its queues sit in memory.
    fn new(n: usize, now: Instant) -> Self {
        Self {
            queues: (0..n).map(|_| VecDeque::with_capacity(4)).collect(),
            engine: MemoryEngine::new(MemoryLimits::default(), 0x5eed),
            now,
            published: None,
        }
    }

    /// Takes every transmit, then empties the queues. Returns how many deliveries there were.
    fn drain(&mut self, hub: &mut Hub) -> usize {
        let queues = &mut self.queues;
        let done = settle(hub, &mut self.engine, self.now, |transmit| match transmit {
            Transmit::To {
                session,
                deliveries,
            } => queues[session.index()].extend(deliveries),
            Transmit::Fanout {
                sessions,
                except,
                delivery,
            } => {
                for session in recipients(&sessions, except) {
                    queues[session.index()].push_back(Arc::clone(&delivery));
                }
            }
            _ => unreachable!("the bench knows every transmit"),
        });
        if let Some(HubEvent::Done { result, .. }) = done.into_iter().last() {
            self.published = result.ok();
        }
        black_box(&self.queues);
        let mut deliveries = 0;
        for queue in &mut self.queues {
            deliveries += queue.len();
            queue.clear();
        }
        deliveries
    }
}

/// A hub with `n` sessions in one room and nothing queued. All the sessions belong to one user,
/// "bench": presence announces each newly present *user* to every member, so `n` distinct users
/// would make the setup quadratic (n presence messages, each to up to n sessions), while the cost
/// of a fan-out depends only on the number of member sessions.
fn hub_with_members(now: Instant, n: usize, driver: &mut Driver) -> Hub {
    let user = UserId::new("bench").expect("valid user id");
    let mut hub = Hub::new(config());
    for _ in 0..n {
        let connect = Connect {
            access: Default::default(),
            user: user.clone(),
            broadcast: false,
            rooms: vec![room()],
            cursor: None,
        };
        hub.connect(now, connect).expect("within limits");
    }
    driver.drain(&mut hub); // each session's `streams` message
    assert_eq!(hub.session_count(), n);
    hub
}

/// The same message as the hub's `message` frame, for the baseline that serializes it once per
/// recipient; `data` is a parsed `serde_json::Value`, as a server that does not keep the raw text
/// would hold it.
#[derive(serde::Serialize)]
struct RoomMessage<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    room: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    data: &'a serde_json::Value,
}

fn group_name(n: usize) -> String {
    format!("hub_fanout_{n}")
}

fn bench_fan_out(c: &mut Criterion, now: Instant, n: usize) {
    let json = payload_json();
    let payload = Payload::from_json(&json).expect("valid JSON");
    let room = room();
    let mut driver = Driver::new(n, now);
    let mut hub = hub_with_members(now, n, &mut driver);

    // Once, outside the timed loop: every member session gets exactly one delivery (a server
    // publish has no sender to exclude).
    hub.publish(now, room.clone(), payload.clone());
    assert_eq!(driver.drain(&mut hub), n, "one delivery per member session");
    let published = driver.published.expect("stored");
    assert_eq!(published.sessions, n);
    let frame: Frame = driver.queues[0]
        .back()
        .map(|delivery| delivery.frame.clone())
        .unwrap_or_else(|| {
            hub.publish(now, room.clone(), payload.clone());
            let mut frame = None;
            settle(&mut hub, &mut driver.engine, now, |transmit| {
                if let Transmit::Fanout { delivery, .. } = transmit {
                    frame = Some(delivery.frame.clone());
                }
            });
            frame.expect("a room message is one fan-out")
        });

    let data: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let id = published.id.to_string();
    let message = RoomMessage {
        kind: "message",
        room: room.as_str(),
        id: &id,
        from: None,
        data: &data,
    };
    let serialized = serde_json::to_vec(&message).expect("serializable");
    assert_eq!(
        serialized.len(),
        frame.len(),
        "the serde baseline encodes the same message: {} vs {}",
        String::from_utf8_lossy(&serialized),
        frame.as_str()
    );

    let mut group = c.benchmark_group(group_name(n));
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);

    group.bench_function("roomcast", |b| {
        b.iter(|| {
            hub.publish(now, room.clone(), payload.clone());
            driver.drain(&mut hub)
        })
    });
    assert_eq!(hub.session_count(), n);
    drop(hub);

    let mut queues: Vec<VecDeque<Arc<[u8]>>> = (0..n).map(|_| VecDeque::with_capacity(4)).collect();
    group.bench_function("arc_vecdeque", |b| {
        b.iter(|| {
            let message: Arc<[u8]> = Arc::from(frame.as_bytes());
            for queue in &mut queues {
                queue.push_back(Arc::clone(&message));
            }
            black_box(&queues);
            for queue in &mut queues {
                queue.clear();
            }
        })
    });
    drop(queues);

    group.bench_function("serde_per_recipient", |b| {
        b.iter(|| {
            for _ in 0..n {
                black_box(serde_json::to_vec(black_box(&message)).expect("serializable"));
            }
        })
    });
    group.finish();
}

/// Anonymous resident memory of this process (heap and stacks), in bytes.
fn rss_anon() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("RssAnon:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes per idle session and per room membership.
struct Memory {
    sessions: usize,
    idle: f64,
    members: usize,
    membership: f64,
}

/// Heap growth per session and per membership, from the process's anonymous resident memory.
///
/// The workspace sets `unsafe_code = "forbid"` for every target of the crate, benches included,
/// and a `forbid` from the command line cannot be lowered with `#![allow]`, so a counting
/// `#[global_allocator]` (an `unsafe impl GlobalAlloc`) is not possible here. Resident memory
/// counts pages, so it includes malloc's own per-chunk overhead, and memory freed inside the heap
/// stays resident. To keep freed memory out of the figure, sessions are added in two equal
/// batches and only the second is measured: connecting queues a `streams` message per session,
/// and the second batch's messages reuse the memory the first batch's freed when drained. Joins
/// are measured the same way. The run must be fresh: this is done before criterion starts.
fn measure_memory(now: Instant, distinct_users: bool) -> Option<Memory> {
    let sessions = MEMORY_SESSIONS;
    let members = if distinct_users {
        MEMORY_DISTINCT_MEMBERS
    } else {
        MEMORY_SESSIONS
    };
    let user = |i: usize| {
        let id = if distinct_users {
            format!("user-{i}")
        } else {
            "bench".to_string()
        };
        UserId::new(&id).expect("valid user id")
    };
    let mut hub = Hub::new(config());
    let mut engine = MemoryEngine::new(MemoryLimits::default(), 7);
    // Transmits are dropped, not queued: the figures are the hub's memory, not a driver's.
    let mut discard = |hub: &mut Hub| {
        settle(hub, &mut engine, now, drop);
    };
    // Filled (so its pages are resident) before the first reading; zeroes would stay untouched.
    let mut ids = vec![SessionId(u64::MAX); 2 * sessions];
    let mut rss = Vec::with_capacity(4);

    for batch in 0..2 {
        for (i, id) in ids
            .iter_mut()
            .enumerate()
            .skip(batch * sessions)
            .take(sessions)
        {
            let connect = Connect {
                access: Default::default(),
                user: user(i),
                broadcast: false,
                rooms: Vec::new(),
                cursor: None,
            };
            *id = hub.connect(now, connect).expect("within limits");
        }
        discard(&mut hub);
        rss.push(rss_anon()?);
    }
    for batch in 0..2 {
        for &session in ids.iter().skip(batch * members).take(members) {
            let join = ClientMessage::Join {
                token: None,
                room: room(),
                since: None,
            };
            let request = ClientEnvelope {
                reference: None,
                message: join,
            };
            hub.handle_request(now, session, request);
            if distinct_users {
                // Each join announces a new user to every member: keep the queues short.
                discard(&mut hub);
            }
        }
        discard(&mut hub);
        rss.push(rss_anon()?);
    }
    assert_eq!(hub.session_count(), 2 * sessions);
    assert_eq!(hub.rooms_of(ids[2 * members - 1]), [room()]);
    let per = |before: usize, after: usize, n: usize| (after as f64 - before as f64) / n as f64;
    Some(Memory {
        sessions,
        idle: per(rss[0], rss[1], sessions),
        members,
        membership: per(rss[2], rss[3], members),
    })
}

/// Reads criterion's median estimate (ns) for one benchmark, if this run wrote it.
fn median_ns(group: &str, bench: &str, run_start: SystemTime) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").to_string());
    let path = format!("{dir}/criterion/{group}/{bench}/new/estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < run_start {
        return None; // from an earlier run
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn verdict(meets: bool) -> &'static str {
    if meets { "meets" } else { "MISSES" }
}

fn print_ratios(run_start: SystemTime) {
    println!(
        "\nhub fan-out of one {PAYLOAD_BYTES}-byte room message, ns per delivery (median; the mean is pulled up by this VM's outliers):"
    );
    for n in SIZES {
        let group = group_name(n);
        let per = |bench| median_ns(&group, bench, run_start).map(|ns| ns / n as f64);
        let (ours, arc, serde) = (
            per("roomcast"),
            per("arc_vecdeque"),
            per("serde_per_recipient"),
        );
        let show = |ns: Option<f64>| ns.map_or("not measured".to_string(), |ns| format!("{ns:.2}"));
        println!(
            "  N = {n:>7}: roomcast {}, arc_vecdeque {}, serde_per_recipient {}",
            show(ours),
            show(arc),
            show(serde)
        );
        if let (Some(ours), Some(arc)) = (ours, arc) {
            let ratio = ours / arc;
            println!(
                "    roomcast / arc_vecdeque        {ratio:6.2}x (target <= 2.0x): {}",
                verdict(ratio <= 2.0)
            );
        }
        if let (Some(ours), Some(serde)) = (ours, serde) {
            let ratio = serde / ours;
            println!(
                "    serde_per_recipient / roomcast {ratio:6.2}x (target >= 25x): {}",
                verdict(ratio >= 25.0)
            );
        }
    }
}

fn print_memory(memory: &[(&str, Option<Memory>)]) {
    if memory.is_empty() {
        return;
    }
    println!(
        "\nhub memory (growth of anonymous resident memory, malloc overhead included; \
         second of two equal batches):"
    );
    for (users, memory) in memory {
        let Some(m) = memory else {
            println!("  sessions of {users}: not measured (no /proc/self/status RssAnon)");
            continue;
        };
        println!(
            "  sessions of {users:14}: {:7.1} bytes per idle session ({} sessions), \
             {:7.1} bytes per room membership ({} joins)",
            m.idle, m.sessions, m.membership, m.members
        );
    }
}

fn main() {
    let (now, run_start) = clock();
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|arg| arg == flag);
    // Memory is measured first, on a fresh heap, when benchmarking (not under `cargo test`,
    // `--list` or `--profile-time`).
    let memory = if has("--bench") && !has("--list") && !has("--profile-time") {
        vec![
            ("one user", measure_memory(now, false)),
            ("distinct users", measure_memory(now, true)),
        ]
    } else {
        Vec::new()
    };

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for n in SIZES {
        bench_fan_out(&mut c, now, n);
    }
    c.final_summary();
    print_ratios(run_start);
    print_memory(&memory);
}
