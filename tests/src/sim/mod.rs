//! Deterministic simulation: real hubs and real sessions (roomcast-core), each hub driven with
//! its sessions by the core's harness (`roomcast_core::harness`), one to three hubs over one
//! shared engine, many clients, and a fake network on a virtual clock, all driven by one seed.
//!
//! Each client is a tab that survives its connections (see `client.rs`), over WebSocket or SSE.
//! Each connection goes to a hub drawn from the seed, so clients move between hubs and resume
//! on another from their cursors. Links have a latency per connection and fail in the ways real
//! ones do: a reset both ends see, a black hole (no FIN: the server finds out by its heartbeat,
//! the client by silence), a reader that stops reading (the server closes it as a slow
//! consumer), and reconnect storms. A hub's process dies now and then: its clients are reset,
//! and a new hub on a new node number takes its place. Clients resume from their cursor, and
//! sometimes from an old or a made-up one.
//!
//! The engine is shared as Redis is by many nodes (`shared.rs`): one store of streams, presence
//! and sessions, behind each hub's own link (`link.rs`) with the faults of a network: late
//! answers, `Live`s late, twice or lost, the link down now and then; and now and then a
//! failover loses a stream's newest records, and the stream goes on in a new epoch.
//!
//! Checked after every step, per hub: its `check_invariants()`, no delivery to a session
//! outside it, its session queues within their budget; for the store, the messages it holds
//! within their budget. Across hubs, every frame a client receives is what the protocol
//! promises, whichever hub sends it (each `ref` answered at most once and only when asked, room
//! messages contiguous and in order per epoch, a resume `recovered` exactly when the shared
//! history covers it, as an oracle kept apart from the hubs works out). At quiet points (faults
//! healed, time run on): every client is connected and in its rooms, every `ref` and command is
//! answered, every client has seen its rooms' last message, and presence, as every hub following
//! the room and every client sees it, is the set of users connected to any hub.
//!
//! A failure names its seed and step, with the last events, and replays exactly.

mod actions;
mod checks;
mod client;
mod clock;
mod link;
mod network;
mod oracle;
mod planted;
mod rng;
mod server;
mod shared;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use roomcast_core::close::{Close, CloseCode};
use roomcast_core::cursor::{Cursor, Position, Stream};
use roomcast_core::delivery::{SessionId, Shared};
use roomcast_core::engine::{EngineEvent, MemoryEngine, MemoryLimits, Record, StreamId};
use roomcast_core::envelope::{ClientMessage, Codec, Payload, ServerMessage};
use roomcast_core::harness::Harness;
use roomcast_core::hub::{
    Connect, HistoryLimit, Hub, HubConfig, HubError, HubEvent, Ticket, Transmit,
};
use roomcast_core::names::{RoomName, UserId};
use roomcast_core::session::{self, SessionConfig, SessionEvent, SessionKind};

use self::client::{Client, Request, View, index};
pub use self::link::EngineFaults;
use self::network::{Conn, Down, Packet, Up};
use self::oracle::Oracle;
use self::planted::Breaker;
pub use self::planted::Planted;
use self::rng::Rng;
use self::server::{Ledger, Wire};
use self::shared::{Handle, Store};

const USERS: usize = 4;
const ROOMS: usize = 3;
const HISTORY: HistoryLimit = HistoryLimit {
    max_messages: 12,
    max_bytes: 1 << 20,
    max_age: Duration::from_secs(20),
};
const GRACE: Duration = Duration::from_secs(2);
const PING_INTERVAL: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(1);
const QUEUE_BYTES: usize = 2048;
const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// A black-holed link with data in flight is reset by the kernel after its retransmissions:
/// how an SSE server, which hears nothing from its client, learns of it.
const KERNEL_GIVES_UP: Duration = Duration::from_secs(10);
/// A client gives up on a connection silent for the announced interval + timeout, and a bit.
const SILENCE: Duration = Duration::from_millis(3500);
/// Time run on at a quiet point: long enough for every detection, reconnect and grace.
const SETTLE: Duration = Duration::from_secs(15);
/// How often the hub asks the engine its heads: a lost last `Live` is found within it.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Steps: one client action or fault each, then time passing.
    pub steps: usize,
    /// Clients (tabs), spread over 4 users.
    pub clients: usize,
    /// A bug planted in the hub's output or the shared engine, to prove the checks catch it.
    pub planted: Option<Planted>,
    /// Hubs sharing the engine; `None`: one, two or three, drawn from the seed.
    pub hubs: Option<usize>,
    /// A link that goes down fails the engine's answers on their way too, though the engine
    /// carried the operations out (an append stored, answered `unavailable`), as the Redis
    /// driver does with appends past its retry window; in every run, not only the odd seeds'.
    pub ambiguous: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            steps: 2000,
            clients: 8,
            planted: None,
            hubs: None,
            ambiguous: false,
        }
    }
}

/// What a run did: figures to show that the faults and resumes happened.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Runs of more than one hub.
    pub multi_hub_runs: u64,
    pub published: u64,
    /// Answered `unavailable`: the engine's link was down.
    pub unavailable: u64,
    /// `streams` resets a client received: a stream it was on could not be followed on from.
    pub stream_resets: u64,
    pub engine: EngineFaults,
    pub received: u64,
    pub answered: u64,
    pub connections: u64,
    /// Connections to another hub than the client's last.
    pub moved: u64,
    pub resumed: u64,
    /// Resumes answered on a connection that moved to another hub.
    pub resumed_elsewhere: u64,
    pub not_recovered: u64,
    /// Typing news received (from the client's hub, or relayed from another).
    pub typing: u64,
    pub resets: u64,
    pub black_holes: u64,
    pub stalls: u64,
    pub storms: u64,
    /// Hubs that died (a process killed), each replaced by a new one on a new node number.
    pub hubs_killed: u64,
    pub slow_consumer_closes: u64,
    pub heartbeat_closes: u64,
}

impl Summary {
    /// Adds another run's figures.
    pub fn add(&mut self, other: &Summary) {
        self.multi_hub_runs += other.multi_hub_runs;
        self.published += other.published;
        self.unavailable += other.unavailable;
        self.stream_resets += other.stream_resets;
        self.engine.add(&other.engine);
        self.received += other.received;
        self.answered += other.answered;
        self.connections += other.connections;
        self.moved += other.moved;
        self.resumed += other.resumed;
        self.resumed_elsewhere += other.resumed_elsewhere;
        self.not_recovered += other.not_recovered;
        self.typing += other.typing;
        self.resets += other.resets;
        self.black_holes += other.black_holes;
        self.stalls += other.stalls;
        self.storms += other.storms;
        self.hubs_killed += other.hubs_killed;
        self.slow_consumer_closes += other.slow_consumer_closes;
        self.heartbeat_closes += other.heartbeat_closes;
    }
}

/// A broken promise: the seed and step that show it, and the command that replays it.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub steps: usize,
    /// The hubs it ran, and whether their number was forced (`SIM_HUBS`) rather than drawn.
    pub hubs: usize,
    pub forced_hubs: bool,
    pub ambiguous: bool,
    pub step: usize,
    pub message: String,
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} ({} hub(s)) at step {}: {}",
            self.seed, self.hubs, self.step, self.message
        )?;
        writeln!(f, "last events:")?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        let hubs = if self.forced_hubs {
            format!("SIM_HUBS={} ", self.hubs)
        } else {
            String::new()
        };
        let ambiguous = if self.ambiguous {
            "SIM_AMBIGUOUS=1 "
        } else {
            ""
        };
        write!(
            f,
            "replay: {hubs}{ambiguous}SIM_SEED={} SIM_STEPS={} cargo test -p roomcast-tests --test simulation replay -- --nocapture",
            self.seed, self.steps
        )
    }
}

/// Runs one seed.
pub fn run(seed: u64, options: &Options) -> Result<Summary, Failure> {
    let mut world = World::new(seed, options);
    let mut step = 0;
    let outcome = (|| {
        for _ in 0..options.clients {
            let c = world.clients.len();
            // Every fourth client reads SSE: one-way, its rooms fixed per connection.
            let client = if c % 4 == 3 {
                Client::new(c % USERS, SessionKind::Sse, [c % ROOMS])
            } else {
                Client::new(c % USERS, SessionKind::WebSocket, [])
            };
            world.clients.push(client);
            world.connect(c)?;
        }
        let quiet_every = (options.steps / 4).max(1);
        while step < options.steps {
            step += 1;
            world.act()?;
            let gap = Duration::from_millis(world.rng.below(300));
            world.run_until(world.now + gap)?;
            if step % quiet_every == 0 {
                world.quiet()?;
            }
        }
        world.quiet()
    })();
    match outcome {
        Ok(()) => {
            let mut summary = world.ledger.summary.clone();
            summary.engine = world.store.borrow().counts();
            summary.multi_hub_runs = u64::from(world.hubs.len() > 1);
            Ok(summary)
        }
        Err(message) => Err(Failure {
            seed,
            steps: options.steps,
            hubs: world.hubs.len(),
            forced_hubs: options.hubs.is_some(),
            ambiguous: options.ambiguous,
            step,
            message,
            trace: world.trace.into_iter().collect(),
        }),
    }
}

struct World {
    rng: Rng,
    /// The virtual clock; `run_until` moves the harnesses' with it.
    now: Instant,
    /// Each hub with its sessions and its handle on the shared engine, and what passes
    /// between them.
    hubs: Vec<Harness<Wire, Handle>>,
    /// The node number of the next hub that replaces a dead one.
    next_node: u64,
    planted: Option<Planted>,
    /// The engine the hubs share.
    store: Rc<RefCell<Store>>,
    /// Whether each hub's engine link goes down now and then: `unavailable` is then an answer
    /// to expect from it.
    faulty: Vec<bool>,
    /// The oracle, each resume's expectation, the figures.
    ledger: Ledger,
    /// The servers' commands (the HTTP API) not answered yet, by hub.
    api: BTreeSet<(usize, Ticket)>,
    codec: Codec,
    clients: Vec<Client>,
    conns: BTreeMap<u64, Conn>,
    /// Connections the server let go of while their link was a black hole: what was in
    /// flight on them vanishes still.
    holed: BTreeSet<u64>,
    by_session: BTreeMap<(usize, SessionId), u64>,
    next_conn: u64,
    /// In flight: (arrival, sequence) -> (connection, packet).
    net: BTreeMap<(Instant, u64), (u64, usize, Packet)>,
    seq: u64,
    /// What arrived for a client that is not reading, in order.
    inbox: BTreeMap<usize, VecDeque<Down>>,
    next_ref: u64,
    /// The last events, for a failure's message: 40, or `SIM_TRACE`.
    trace: VecDeque<String>,
    trace_len: usize,
}

impl World {
    #[allow(clippy::disallowed_methods)] // one real instant to offset from; only offsets matter
    fn new(seed: u64, options: &Options) -> Self {
        let count = options
            .hubs
            .unwrap_or_else(|| 1 + Rng::new(seed ^ 0x4B0B_5000_0000_0003).index(3));
        let now = Instant::now();
        // Node numbers as a real deployment draws them: any, but unique.
        let nodes: Vec<u64> = (0..count as u64).map(|h| 0x1000 + h * 7).collect();
        let store = Rc::new(RefCell::new(Store::new(seed, nodes.clone(), now, options)));
        let faulty = store
            .borrow()
            .links
            .iter()
            .map(|link| link.faults.outages)
            .collect();
        let hubs = nodes
            .iter()
            .enumerate()
            .map(|(h, &node)| house(&store, h, node, now, options.planted))
            .collect();
        Self {
            rng: Rng::new(seed),
            now,
            hubs,
            next_node: 0x2000,
            planted: options.planted,
            store,
            faulty,
            ledger: Ledger::new(),
            api: BTreeSet::new(),
            codec: Codec::new(),
            clients: Vec::new(),
            conns: BTreeMap::new(),
            holed: BTreeSet::new(),
            by_session: BTreeMap::new(),
            next_conn: 0,
            net: BTreeMap::new(),
            seq: 0,
            inbox: BTreeMap::new(),
            next_ref: 0,
            trace: VecDeque::new(),
            trace_len: std::env::var("SIM_TRACE")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(40),
        }
    }

    fn log(&mut self, line: String) {
        if self.trace.len() == self.trace_len {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }
}

/// Hub `h` of the world, node `node`, with its handle on the shared engine, at `now`.
fn house(
    store: &Rc<RefCell<Store>>,
    h: usize,
    node: u64,
    now: Instant,
    planted: Option<Planted>,
) -> Harness<Wire, Handle> {
    let hub_config = HubConfig {
        node,
        room_history: HISTORY,
        presence_grace: GRACE,
        check_every: CHECK_EVERY,
        ..HubConfig::default()
    };
    let config = SessionConfig {
        queue_bytes: QUEUE_BYTES,
        ping_interval: PING_INTERVAL,
        ping_timeout: PING_TIMEOUT,
        keep_alive: KEEP_ALIVE,
        close_timeout: Duration::from_secs(1),
        ..SessionConfig::default()
    };
    Harness::with_engine(Hub::new(hub_config), Handle::new(store, h), now)
        .with_session_config(config, Codec::new())
        .with_tap(Wire::new(planted))
}

fn user(u: usize) -> UserId {
    UserId::new(&format!("user{u}")).expect("valid")
}

fn room(r: usize) -> RoomName {
    RoomName::new(&format!("room{r}")).expect("valid")
}
