//! Deterministic simulation: the real hub and real sessions (roomcast-core), many clients, and
//! a fake network on a virtual clock, all driven by one seed.
//!
//! Each client is a tab that survives its connections (see [`client`]). Links have a latency
//! per connection and fail in the ways real ones do: a reset both ends see, a black hole (no
//! FIN: the server finds out by its heartbeat, the client by silence), a reader that stops
//! reading (the server closes it as a slow consumer), and reconnect storms. Clients resume from
//! their cursor, and sometimes from an old or a made-up one.
//!
//! Checked after every step: the hub's `check_invariants()`; every frame a client receives is
//! what the protocol promises (each `ref` answered at most once and only when asked, room
//! messages contiguous and in order, a resume `recovered` exactly when the history window
//! covers it, as an oracle kept apart from the hub works out); stored messages and session
//! queues within their budgets. At quiet points (faults healed, time run on): every client is
//! connected and in its rooms, every `ref` is answered, every client has seen its rooms' last
//! message, and presence, as the hub and every client see it, is the set of connected users.
//!
//! A failure names its seed and step, with the last events, and replays exactly.

mod client;
mod oracle;
mod planted;
mod rng;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use roomcast_core::close::{Close, CloseCode};
use roomcast_core::cursor::{Cursor, Position, Stream};
use roomcast_core::delivery::{SessionId, Shared};
use roomcast_core::envelope::{ClientMessage, Codec, Payload, ServerMessage};
use roomcast_core::hub::{Connect, HistoryLimit, Hub, HubConfig, Transmit, recipients};
use roomcast_core::names::{RoomName, UserId};
use roomcast_core::session::{self, Session, SessionConfig, SessionEvent, SessionKind};

use self::client::{Client, Request, View, index};
use self::oracle::Oracle;
use self::planted::Breaker;
pub use self::planted::Planted;
use self::rng::Rng;

const USERS: usize = 4;
const ROOMS: usize = 3;
const HISTORY: HistoryLimit = HistoryLimit {
    max_messages: 12,
    max_age: Duration::from_secs(20),
};
const GRACE: Duration = Duration::from_secs(2);
const PING_INTERVAL: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(1);
const QUEUE_BYTES: usize = 2048;
/// A client gives up on a connection silent for the announced interval + timeout, and a bit.
const SILENCE: Duration = Duration::from_millis(3500);
/// Time run on at a quiet point: long enough for every detection, reconnect and grace.
const SETTLE: Duration = Duration::from_secs(15);

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Steps: one client action or fault each, then time passing.
    pub steps: usize,
    /// Clients (tabs), spread over 4 users.
    pub clients: usize,
    /// A bug planted in the hub's output, to prove the checks catch it.
    pub planted: Option<Planted>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            steps: 2000,
            clients: 8,
            planted: None,
        }
    }
}

/// What a run did: figures to show that the faults and resumes happened.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub published: u64,
    pub received: u64,
    pub answered: u64,
    pub connections: u64,
    pub resumed: u64,
    pub not_recovered: u64,
    pub resets: u64,
    pub black_holes: u64,
    pub stalls: u64,
    pub storms: u64,
    pub slow_consumer_closes: u64,
    pub heartbeat_closes: u64,
}

impl Summary {
    /// Adds another run's figures.
    pub fn add(&mut self, other: &Summary) {
        self.published += other.published;
        self.received += other.received;
        self.answered += other.answered;
        self.connections += other.connections;
        self.resumed += other.resumed;
        self.not_recovered += other.not_recovered;
        self.resets += other.resets;
        self.black_holes += other.black_holes;
        self.stalls += other.stalls;
        self.storms += other.storms;
        self.slow_consumer_closes += other.slow_consumer_closes;
        self.heartbeat_closes += other.heartbeat_closes;
    }
}

/// A broken promise: the seed and step that show it, and the command that replays it.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub steps: usize,
    pub step: usize,
    pub message: String,
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} at step {}: {}",
            self.seed, self.step, self.message
        )?;
        writeln!(f, "last events:")?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        write!(
            f,
            "replay: SIM_SEED={} SIM_STEPS={} cargo test -p roomcast-tests --test simulation replay -- --nocapture",
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
            world.clients.push(Client::new(c % USERS));
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
        Ok(()) => Ok(world.summary),
        Err(message) => Err(Failure {
            seed,
            steps: options.steps,
            step,
            message,
            trace: world.trace.into_iter().collect(),
        }),
    }
}

/// Client to server.
#[derive(Debug)]
enum Up {
    Text(String),
    Pong,
    CloseEcho,
    /// The client dropped the connection (a FIN or RST the server sees).
    Reset,
}

/// Server to client.
#[derive(Debug)]
enum Down {
    Frame(Shared),
    Ping,
    Close(Close),
}

#[derive(Debug)]
enum Packet {
    Up(Up),
    Down(Down),
}

/// The server's side of one connection, and its link.
struct Conn {
    client: usize,
    session: Session,
    hub_id: SessionId,
    latency: Duration,
    /// Packets vanish both ways, and neither end is told.
    black_hole: bool,
    /// The latest arrival scheduled each way: a link delivers in order.
    last_up: Instant,
    last_down: Instant,
}

struct World {
    rng: Rng,
    now: Instant,
    hub: Hub,
    codec: Codec,
    config: SessionConfig,
    planted: Option<(Planted, Breaker)>,
    clients: Vec<Client>,
    conns: BTreeMap<u64, Conn>,
    by_session: BTreeMap<SessionId, u64>,
    next_conn: u64,
    /// In flight: (arrival, sequence) -> (connection, packet).
    net: BTreeMap<(Instant, u64), (u64, Packet)>,
    seq: u64,
    /// What arrived for a client that is not reading, in order.
    inbox: BTreeMap<usize, VecDeque<Down>>,
    oracle: Oracle,
    /// A join's expected `recovered`, by ref, from when the hub handled it.
    expected: BTreeMap<u64, bool>,
    next_ref: u64,
    summary: Summary,
    trace: VecDeque<String>,
}

impl World {
    #[allow(clippy::disallowed_methods)] // one real instant to offset from; only offsets matter
    fn new(seed: u64, options: &Options) -> Self {
        let hub_config = HubConfig {
            room_history: HISTORY,
            presence_grace: GRACE,
            ..HubConfig::default()
        };
        let config = SessionConfig {
            queue_bytes: QUEUE_BYTES,
            ping_interval: PING_INTERVAL,
            ping_timeout: PING_TIMEOUT,
            close_timeout: Duration::from_secs(1),
            ..SessionConfig::default()
        };
        Self {
            rng: Rng::new(seed),
            now: Instant::now(),
            hub: Hub::new(hub_config, seed),
            codec: Codec::new(),
            config,
            planted: options.planted.map(|bug| (bug, Breaker::default())),
            clients: Vec::new(),
            conns: BTreeMap::new(),
            by_session: BTreeMap::new(),
            next_conn: 0,
            net: BTreeMap::new(),
            seq: 0,
            inbox: BTreeMap::new(),
            oracle: Oracle::new(HISTORY, ROOMS),
            expected: BTreeMap::new(),
            next_ref: 0,
            summary: Summary::default(),
            trace: VecDeque::new(),
        }
    }

    fn log(&mut self, line: String) {
        if self.trace.len() == 40 {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    // Client actions and faults.

    /// One random action of one random client, or a fault.
    fn act(&mut self) -> Result<(), String> {
        let c = self.rng.index(self.clients.len());
        let connected = self.clients[c].conn.is_some();
        match self.rng.below(100) {
            0..30 if connected => {
                let joined: Vec<usize> = self.in_rooms(c);
                if !joined.is_empty() {
                    let r = joined[self.rng.index(joined.len())];
                    let data = Payload::from_json("1").expect("JSON");
                    let room = room(r);
                    self.send(
                        c,
                        Request::Publish(r),
                        ClientMessage::Publish { room, data },
                    );
                }
            }
            30..40 if connected => {
                // A room it is still leaving is joined again once the leave is answered.
                let r = self.rng.index(ROOMS);
                if !self.clients[c].views.contains_key(&r) && self.clients[c].rooms.insert(r) {
                    self.join(c, r);
                }
            }
            40..46 if connected => {
                let joined = self.in_rooms(c);
                if !joined.is_empty() {
                    let r = joined[self.rng.index(joined.len())];
                    self.clients[c].rooms.remove(&r);
                    self.clients[c].views.insert(r, View::Leaving);
                    let message = ClientMessage::Leave { room: room(r) };
                    self.send(c, Request::Leave(r), message);
                }
            }
            46..52 if connected => {
                let to = user(self.rng.index(USERS));
                let data = Payload::from_json("2").expect("JSON");
                self.send(c, Request::Direct, ClientMessage::Direct { to, data });
            }
            52..62 => {
                // The server publishes (the HTTP API), now and then a burst.
                let r = self.rng.index(ROOMS);
                let count = if self.rng.chance(20) { 40 } else { 1 };
                for _ in 0..count {
                    let data = Payload::from_json("3").expect("JSON");
                    let id = self.hub.publish(self.now, room(r), data).id;
                    self.oracle.stored(r, id, self.now)?;
                    self.summary.published += 1;
                }
            }
            62..66 => {
                let data = Payload::from_json("4").expect("JSON");
                let to = user(self.rng.index(USERS));
                self.hub
                    .notify(self.now, to, None, data)
                    .map_err(|e| e.to_string())?;
            }
            66..70 if connected => self.reset(c),
            70..73 if connected => {
                let conn = self.clients[c].conn.expect("connected");
                if let Some(link) = self.conns.get_mut(&conn) {
                    link.black_hole = true;
                }
                self.summary.black_holes += 1;
                self.log(format!("c{c}: its link becomes a black hole"));
            }
            73..77 if connected && self.clients[c].is_reading() => {
                let until = self.now + Duration::from_millis(self.rng.between(500, 6000));
                self.clients[c].stalled_until = Some(until);
                self.clients[c].silent_deadline = None;
                self.summary.stalls += 1;
                self.log(format!("c{c}: stops reading for a while"));
            }
            77 => {
                self.summary.storms += 1;
                self.log("a reconnect storm".into());
                for c in 0..self.clients.len() {
                    if self.clients[c].conn.is_some() {
                        self.reset(c);
                        let at = self.now + Duration::from_millis(self.rng.below(300));
                        self.clients[c].reconnect_at = Some(at);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn in_rooms(&self, c: usize) -> Vec<usize> {
        let client = &self.clients[c];
        client
            .views
            .iter()
            .filter(|(_, view)| matches!(view, View::In(_)))
            .map(|(r, _)| *r)
            .collect()
    }

    /// Joins room `r`, resuming from what the client saw there: its real position mostly, now
    /// and then an older one, one history no longer covers, or one of a made-up epoch.
    fn join(&mut self, c: usize, r: usize) {
        let mut since = self.clients[c].seen.get(&r).copied();
        if let Some(real) = since {
            since = match self.rng.below(20) {
                0 => Some(Position {
                    offset: real.offset.saturating_sub(self.rng.between(1, 5)),
                    ..real
                }),
                1 => self.oracle.lost_position(r, self.now).or(since),
                2 => Some(Position {
                    epoch: self.rng.next(),
                    ..real
                }),
                _ => since,
            };
        }
        match since {
            Some(p) => self.clients[c].seen.insert(r, p),
            None => self.clients[c].seen.remove(&r),
        };
        self.clients[c].views.insert(r, View::Joining);
        let message = ClientMessage::Join {
            room: room(r),
            since,
        };
        self.send(c, Request::Join { room: r, since }, message);
    }

    /// A request from client `c` on its connection, with a fresh ref.
    fn send(&mut self, c: usize, request: Request, message: ClientMessage) {
        let Some(conn) = self.clients[c].conn else {
            return;
        };
        self.next_ref += 1;
        let n = self.next_ref;
        let envelope = roomcast_core::envelope::ClientEnvelope {
            reference: Some(n.into()),
            message,
        };
        self.clients[c].pending.insert(n, request);
        self.post(conn, Packet::Up(Up::Text(envelope.encode())));
    }

    /// The client drops its connection; the server sees it after the link's latency.
    fn reset(&mut self, c: usize) {
        let Some(conn) = self.clients[c].conn else {
            return;
        };
        self.post(conn, Packet::Up(Up::Reset));
        self.lost(c, "resets its connection");
        self.summary.resets += 1;
    }

    /// Client `c` is without a connection: it comes back after a backoff.
    fn lost(&mut self, c: usize, why: &str) {
        self.clients[c].lost();
        self.inbox.remove(&c);
        let backoff = Duration::from_millis(self.rng.between(50, 1000));
        self.clients[c].reconnect_at = Some(self.now + backoff);
        self.log(format!("c{c}: {why}"));
    }

    fn connect(&mut self, c: usize) -> Result<(), String> {
        let client = &mut self.clients[c];
        client.reconnect_at = None;
        let mut cursor = Cursor::new();
        if let Some(position) = client.seen_user {
            cursor
                .set(Stream::User, position)
                .map_err(|e| e.to_string())?;
        }
        let connect = Connect {
            user: user(client.user),
            broadcast: false,
            rooms: Vec::new(),
            cursor: Some(cursor),
        };
        let hub_id = self
            .hub
            .connect(self.now, connect)
            .map_err(|e| e.to_string())?;
        let mut session = Session::new(
            SessionKind::WebSocket,
            self.config.clone(),
            self.codec.clone(),
            self.now,
        );
        session.accept(self.now, hub_id, user(client.user));
        let conn = self.next_conn;
        self.next_conn += 1;
        let latency = Duration::from_millis(self.rng.between(1, 80));
        self.conns.insert(
            conn,
            Conn {
                client: c,
                session,
                hub_id,
                latency,
                black_hole: false,
                last_up: self.now,
                last_down: self.now,
            },
        );
        self.by_session.insert(hub_id, conn);
        let client = &mut self.clients[c];
        client.conn = Some(conn);
        client.silent_deadline = Some(self.now + SILENCE);
        self.summary.connections += 1;
        self.log(format!("c{c}: connects as {hub_id} ({latency:?} away)"));
        let rooms: Vec<usize> = self.clients[c].rooms.iter().copied().collect();
        for r in rooms {
            self.join(c, r);
        }
        Ok(())
    }

    // The network.

    fn post(&mut self, conn: u64, packet: Packet) {
        let Some(link) = self.conns.get_mut(&conn) else {
            return;
        };
        if link.black_hole {
            return;
        }
        let last = match packet {
            Packet::Up(_) => &mut link.last_up,
            Packet::Down(_) => &mut link.last_down,
        };
        let at = (self.now + link.latency).max(*last);
        *last = at;
        self.seq += 1;
        self.net.insert((at, self.seq), (conn, packet));
    }

    fn arrive(&mut self, conn: u64, packet: Packet) -> Result<(), String> {
        let Some(link) = self.conns.get_mut(&conn) else {
            return Ok(()); // the server is done with it
        };
        if link.black_hole {
            return Ok(());
        }
        let now = self.now;
        match packet {
            Packet::Up(up) => {
                let session = &mut link.session;
                match up {
                    Up::Text(text) => session.handle_text(now, &text).map_err(|e| e.to_string())?,
                    Up::Pong => session.handle_pong(now).map_err(|e| e.to_string())?,
                    Up::CloseEcho | Up::Reset => session.handle_close(now, None),
                }
            }
            Packet::Down(down) => {
                let c = link.client;
                if self.clients[c].conn != Some(conn) {
                    return Ok(()); // the client gave up on this connection
                }
                self.inbox.entry(c).or_default().push_back(down);
                self.read(c)?;
            }
        }
        Ok(())
    }

    /// Client `c` reads what arrived, unless it is stalled.
    fn read(&mut self, c: usize) -> Result<(), String> {
        while self.clients[c].is_reading() {
            let Some(down) = self.inbox.get_mut(&c).and_then(VecDeque::pop_front) else {
                break;
            };
            let conn = self.clients[c].conn.expect("a reading client is connected");
            self.clients[c].silent_deadline = Some(self.now + SILENCE);
            match down {
                Down::Ping => self.post(conn, Packet::Up(Up::Pong)),
                Down::Close(close) => {
                    self.post(conn, Packet::Up(Up::CloseEcho));
                    let why = format!(
                        "closed by the server: {} {}",
                        close.code.as_u16(),
                        close.reason
                    );
                    self.lost(c, &why);
                }
                Down::Frame(delivery) => {
                    let message = self
                        .codec
                        .decode_server(delivery.frame.as_str())
                        .map_err(|e| format!("an invalid frame: {e:?}"))?;
                    match &message {
                        ServerMessage::Reply(_) => self.summary.answered += 1,
                        ServerMessage::Message { .. } => self.summary.received += 1,
                        _ => {}
                    }
                    if let ServerMessage::Reply(reply) = &message {
                        if reply.recovered.is_some() {
                            self.summary.resumed += 1;
                            self.summary.not_recovered += u64::from(reply.recovered == Some(false));
                        }
                    }
                    self.clients[c]
                        .receive(message, &mut self.expected)
                        .map_err(|broken| format!("c{c}: {broken}"))?;
                }
            }
        }
        Ok(())
    }

    // The server: sessions and hub, pumped until quiet.

    fn pump(&mut self) -> Result<(), String> {
        loop {
            let mut progress = false;
            let ids: Vec<u64> = self.conns.keys().copied().collect();
            for id in ids {
                progress |= self.pump_conn(id)?;
            }
            while let Some(mut transmit) = self.hub.poll_transmit() {
                progress = true;
                self.observe(&transmit)?;
                if let Some((bug, breaker)) = &mut self.planted {
                    breaker.apply(*bug, &self.codec, &mut transmit);
                }
                self.route(transmit);
            }
            if !progress {
                break;
            }
        }
        for r in 0..ROOMS {
            let present = !self.hub.members(&room(r)).is_empty();
            self.oracle.settle(r, present, self.now);
        }
        Ok(())
    }

    /// One connection's session: its events to the hub, its transmits to the link.
    fn pump_conn(&mut self, id: u64) -> Result<bool, String> {
        let now = self.now;
        let mut progress = false;
        let conn = self.conns.get_mut(&id).expect("listed");
        let (hub_id, c) = (conn.hub_id, conn.client);
        let mut events = Vec::new();
        while let Some(event) = conn.session.poll_event() {
            events.push(event);
        }
        for event in events {
            progress = true;
            match event {
                SessionEvent::Request(request) => {
                    if let (
                        ClientMessage::Join {
                            room,
                            since: Some(since),
                        },
                        Some(reference),
                    ) = (&request.message, &request.reference)
                    {
                        let n = match reference {
                            roomcast_core::envelope::Ref::Number(n) => *n,
                            _ => unreachable!("the simulation sends numbers"),
                        };
                        let covered = self.oracle.covers(index(room.as_str()), *since, now);
                        self.expected.insert(n, covered);
                    }
                    self.hub.handle_request(now, hub_id, request);
                }
                SessionEvent::Closed(close) => {
                    match close.code {
                        CloseCode::SlowConsumer => self.summary.slow_consumer_closes += 1,
                        CloseCode::HeartbeatTimeout => self.summary.heartbeat_closes += 1,
                        _ => {}
                    }
                    self.log(format!(
                        "c{c}: {hub_id} closed with {}",
                        close.code.as_u16()
                    ));
                    self.hub.disconnect(now, hub_id);
                }
                _ => {}
            }
        }
        let reading = self.clients[c].is_reading();
        let conn = self.conns.get_mut(&id).expect("listed");
        let mut out = Vec::new();
        if reading || conn.black_hole {
            while let Some(transmit) = conn.session.poll_transmit(now) {
                out.push(transmit);
            }
        }
        let closed = conn.session.state() == session::SessionState::Closed;
        for transmit in out {
            progress = true;
            let down = match transmit {
                session::Transmit::Frame(delivery) => Down::Frame(delivery),
                session::Transmit::Ping => Down::Ping,
                session::Transmit::Close(close) => Down::Close(close),
                _ => continue,
            };
            self.post(id, Packet::Down(down));
        }
        if closed {
            let conn = self.conns.remove(&id).expect("listed");
            self.by_session.remove(&conn.hub_id);
            progress = true;
        }
        Ok(progress)
    }

    /// The oracle learns from the hub's output what was stored (a publish's reply) and each
    /// room's epoch (a join's reply).
    fn observe(&mut self, transmit: &Transmit) -> Result<(), String> {
        let Transmit::To { deliveries, .. } = transmit else {
            return Ok(());
        };
        for delivery in deliveries {
            let Ok(ServerMessage::Reply(reply)) = self.codec.decode_server(delivery.frame.as_str())
            else {
                continue;
            };
            if let (Some(room), Some(id)) = (&reply.room, reply.id) {
                let r = index(room.as_str());
                if reply.members.is_some() {
                    self.oracle.saw_epoch(r, id.epoch)?;
                } else {
                    self.oracle.stored(r, id, self.now)?;
                    self.summary.published += 1;
                }
            }
        }
        Ok(())
    }

    fn route(&mut self, transmit: Transmit) {
        let now = self.now;
        match transmit {
            Transmit::To {
                session,
                deliveries,
            } => {
                if let Some(conn) = self.by_session.get(&session) {
                    let conn = self.conns.get_mut(conn).expect("mapped");
                    conn.session.deliver_batch(now, deliveries);
                }
            }
            Transmit::Fanout {
                sessions,
                except,
                delivery,
            } => {
                for session in recipients(&sessions, except) {
                    if let Some(conn) = self.by_session.get(&session) {
                        let conn = self.conns.get_mut(conn).expect("mapped");
                        conn.session.deliver(now, delivery.clone());
                    }
                }
            }
            _ => {}
        }
    }

    // Time.

    /// Runs every timer and arrival up to `until`, checking after each.
    fn run_until(&mut self, until: Instant) -> Result<(), String> {
        loop {
            self.pump()?;
            self.check()?;
            match self.next_due() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.fire()?;
                }
                _ => {
                    self.now = until;
                    return Ok(());
                }
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        let packets = self.net.keys().next().map(|(at, _)| *at);
        let sessions = self.conns.values().filter_map(|c| c.session.poll_timeout());
        let clients = self.clients.iter().flat_map(|c| {
            [c.stalled_until, c.reconnect_at, c.silent_deadline]
                .into_iter()
                .flatten()
        });
        packets
            .into_iter()
            .chain(self.hub.poll_timeout())
            .chain(sessions)
            .chain(clients)
            .min()
    }

    /// Everything due at `now`: hub timers first, so history is pruned before requests read it.
    fn fire(&mut self) -> Result<(), String> {
        let now = self.now;
        if self.hub.poll_timeout().is_some_and(|at| at <= now) {
            self.hub.handle_timeout(now);
        }
        for conn in self.conns.values_mut() {
            if conn.session.poll_timeout().is_some_and(|at| at <= now) {
                conn.session.handle_timeout(now);
            }
        }
        for c in 0..self.clients.len() {
            if self.clients[c].stalled_until.is_some_and(|at| at <= now) {
                self.clients[c].stalled_until = None;
                self.clients[c].silent_deadline = Some(now + SILENCE);
                self.read(c)?;
            }
            if self.clients[c].silent_deadline.is_some_and(|at| at <= now) {
                self.lost(c, "gives up on a silent connection");
            }
            if self.clients[c].reconnect_at.is_some_and(|at| at <= now) {
                self.connect(c)?;
            }
        }
        while let Some(entry) = self.net.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (conn, packet) = entry.remove();
            self.arrive(conn, packet)?;
        }
        Ok(())
    }

    // Checks.

    /// After every step: the hub's invariants and the memory budgets.
    fn check(&self) -> Result<(), String> {
        self.hub.check_invariants()?;
        let budget = ROOMS * HISTORY.max_messages
            + USERS * self.hub.config().outbox_history.max_messages
            + self.hub.config().broadcast_history.max_messages;
        let (stored, _) = self.hub.stored();
        if stored > budget {
            return Err(format!(
                "{stored} messages stored, over the budget of {budget}"
            ));
        }
        // A replay batch is taken whole: at most a history's worth over the queue budget.
        let queue_budget = QUEUE_BYTES + HISTORY.max_messages * 256;
        for conn in self.conns.values() {
            if conn.session.queued_bytes() > queue_budget {
                return Err(format!(
                    "{}: a queue of {} bytes",
                    conn.hub_id,
                    conn.session.queued_bytes()
                ));
            }
        }
        Ok(())
    }

    /// Faults healed and time run on: everything has converged.
    fn quiet(&mut self) -> Result<(), String> {
        for client in &mut self.clients {
            client.stalled_until = client.stalled_until.map(|_| self.now);
        }
        let until = self.now + SETTLE;
        self.run_until(until)?;
        let mut truth: Vec<BTreeSet<String>> = vec![BTreeSet::new(); ROOMS];
        for (c, client) in self.clients.iter().enumerate() {
            if client.conn.is_none() {
                return Err(format!("quiet: c{c} is not connected"));
            }
            if !client.pending.is_empty() {
                return Err(format!(
                    "quiet: c{c} waits for refs {:?}",
                    client.pending.keys()
                ));
            }
            for r in &client.rooms {
                if !matches!(client.views.get(r), Some(View::In(_))) {
                    return Err(format!("quiet: c{c} is not back in room{r}"));
                }
                truth[*r].insert(format!("user{}", client.user));
            }
        }
        for (r, present) in truth.iter().enumerate() {
            let hub: BTreeSet<String> = self
                .hub
                .members(&room(r))
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect();
            if &hub != present {
                return Err(format!(
                    "quiet: room{r} presence {hub:?}, connected {present:?}"
                ));
            }
            let head = self.oracle.head(r);
            for (c, client) in self.clients.iter().enumerate() {
                if let Some(View::In(seen)) = client.views.get(&r) {
                    if seen != present {
                        return Err(format!(
                            "quiet: c{c} sees {seen:?} in room{r}, not {present:?}"
                        ));
                    }
                    let last = client.seen.get(&r).copied();
                    if head.is_some() && last != head {
                        return Err(format!(
                            "quiet: c{c} saw {last:?} in room{r}, the last is {head:?}"
                        ));
                    }
                }
            }
        }
        if self.hub.session_count() != self.clients.len() {
            return Err(format!(
                "quiet: {} sessions for {} clients",
                self.hub.session_count(),
                self.clients.len()
            ));
        }
        Ok(())
    }
}

fn user(u: usize) -> UserId {
    UserId::new(&format!("user{u}")).expect("valid")
}

fn room(r: usize) -> RoomName {
    RoomName::new(&format!("room{r}")).expect("valid")
}
