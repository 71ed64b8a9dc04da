//! One engine shared by every hub, as Redis is shared by many nodes: one store of streams (the
//! memory engine is the truth), and a handle per hub that is that hub's engine.
//!
//! What the store adds to the memory engine is what a shared engine must do for many nodes
//! (`core/src/engine/mod.rs`, `docs/scaling.md`): each hub numbers its operations from 1, so the
//! store renumbers them for the inner engine and sends each answer back to the hub that asked,
//! under its own number; it keeps each hub's follows and sends every `Live` to each hub that
//! follows the stream (the inner engine follows a stream while any hub does); it keeps presence
//! per (room, node, user), relays each hub's presence and typing to the other hubs following the
//! room, and answers a follow of a room, and now and then every followed room, with a snapshot;
//! and an outbox append is `Appended::online` when a hub whose link is up follows the outbox, as
//! Redis's publish counts the nodes subscribed to it.
//!
//! Between the store and each hub is its link (`link.rs`), which fails in its own ways. The
//! store itself fails over now and then: a stream loses its newest records and goes on in a new
//! epoch, its older records kept, as the Redis driver's check after a failover does.
//!
//! In odd seeds (and all with `Options::ambiguous`), a link that goes down also fails the answers
//! on their way, as the Redis driver does with appends past its retry window: an append stored,
//! and answered `unavailable`. The hub then delivers the message to its publisher too, as to
//! everyone (exclude-sender holds only while a reply is to come).
//!
//! A hub may die: a new one, on a new node number, takes its place; the dead node's presence
//! and session entries expire after a TTL, as nobody refreshes them, and the snapshots then
//! leave them out (no news says they went, as in Redis).
//!
//! Not modelled: entries of a live node expiring (its link is never down that long), a
//! half-open link (a link here is up or down), and Redis's own budgets.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use roomcast_core::engine::{Engine, MemoryStats, OpId, Operation, Retention};

use super::link::{EngineFaults, Link};
use super::*;

mod presence;

/// How often every hub is sent the presence of each room it follows, as the Redis driver reads
/// it every 10 s: presence news lost with a link converges within it.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(4);

/// How long the presence and session entries of a node that died outlive it, as
/// `--redis-presence-ttl` (tested there with 2 s).
const PRESENCE_TTL: Duration = Duration::from_secs(6);

/// Most records a failover loses from a stream's tail.
const MAX_TAIL: u64 = 3;

/// A hub's operation, renumbered for the inner engine.
struct Asked {
    hub: usize,
    op: OpId,
    /// An append's stream, which its answer does not name.
    append: Option<StreamId>,
}

pub(crate) struct Store {
    inner: MemoryEngine,
    now: Instant,
    pub(crate) links: Vec<Link>,
    /// Each hub's node number.
    nodes: Vec<u64>,
    /// The streams each hub follows.
    follows: Vec<BTreeSet<StreamId>>,
    /// Operations at the inner engine, by the number the store gave them.
    asked: BTreeMap<OpId, Asked>,
    next_op: u64,
    /// Who is present where: (room, node, user).
    presence: BTreeSet<(RoomName, u64, UserId)>,
    /// Nodes that died, and when their entries expire: nobody refreshes them any more.
    dead: BTreeMap<u64, Instant>,
    next_snapshot: Instant,
    /// What the inner engine stored, and when: drained by the world for the oracle.
    stored: Vec<(StreamId, Position, Instant)>,
    /// The epochs the answers named (a stream made by a read has one before any message).
    epochs: Vec<(StreamId, u64)>,
    counts: EngineFaults,
    rng: Rng,
    planted: Option<Planted>,
    /// Whether a link that goes down fails the answers on their way (`Options::ambiguous`).
    ambiguous: bool,
    /// Answers sent so far, for a planted bug that crosses some.
    answers: u64,
}

/// A hub's engine: its end of the shared store.
pub(crate) struct Handle {
    store: Rc<RefCell<Store>>,
    hub: usize,
}

impl Handle {
    pub(crate) fn new(store: &Rc<RefCell<Store>>, hub: usize) -> Self {
        Self {
            store: Rc::clone(store),
            hub,
        }
    }
}

impl Engine for Handle {
    fn handle(&mut self, now: Instant, operation: Operation) {
        self.store.borrow_mut().handle(self.hub, now, operation);
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        let mut store = self.store.borrow_mut();
        let now = store.now;
        store.links[self.hub].poll(now)
    }
}

impl Store {
    pub(crate) fn new(seed: u64, nodes: Vec<u64>, now: Instant, options: &Options) -> Self {
        let hubs = nodes.len();
        Self {
            inner: MemoryEngine::new(MemoryLimits::default(), seed),
            now,
            links: (0..hubs).map(|hub| Link::new(seed, hub)).collect(),
            nodes,
            follows: vec![BTreeSet::new(); hubs],
            asked: BTreeMap::new(),
            next_op: 0,
            presence: BTreeSet::new(),
            dead: BTreeMap::new(),
            next_snapshot: now + SNAPSHOT_EVERY,
            stored: Vec::new(),
            epochs: Vec::new(),
            counts: EngineFaults::default(),
            rng: Rng::new(seed ^ 0x7A11_1057_0000_0001),
            planted: options.planted,
            ambiguous: options.ambiguous || seed % 2 == 1,
            answers: 0,
        }
    }

    pub(crate) fn stats(&self) -> MemoryStats {
        self.inner.stats()
    }

    /// Whether the store fails over now and then: when some link has outages.
    pub(crate) fn fails_over(&self) -> bool {
        self.links.iter().any(|link| link.faults.outages)
    }

    /// The figures of the store and of every link.
    pub(crate) fn counts(&self) -> EngineFaults {
        let mut counts = self.counts;
        for link in &self.links {
            counts.add(&link.counts);
        }
        counts
    }

    /// The clock moved to `now`: links that come back write what their hub said meanwhile, and
    /// snapshots go out when due.
    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.expire_dead();
        for hub in 0..self.links.len() {
            if self.links[hub].set_now(self.now) {
                self.back(hub);
            }
        }
        if self.next_snapshot <= self.now {
            self.next_snapshot = self.now + SNAPSHOT_EVERY;
            for hub in 0..self.links.len() {
                let rooms: Vec<RoomName> = self.follows[hub]
                    .iter()
                    .filter_map(|stream| match stream {
                        StreamId::Room(room) => Some(room.clone()),
                        _ => None,
                    })
                    .collect();
                for room in rooms {
                    self.snapshot(hub, &room);
                }
            }
        }
    }

    /// Hub `hub` died and a new one, node `node`, took its place: its subscriptions and its
    /// link went with it; its presence and session entries stay until they expire.
    pub(crate) fn restart(&mut self, hub: usize, node: u64) {
        let old = std::mem::replace(&mut self.nodes[hub], node);
        self.dead.insert(old, self.now + PRESENCE_TTL);
        for stream in std::mem::take(&mut self.follows[hub]) {
            if !self.followed(&stream) {
                self.inner.handle(self.now, Operation::Unfollow(stream));
            }
        }
        self.links[hub].restart();
    }

    /// When the store next has something for a hub.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let links = self.links.iter().filter_map(Link::next_due);
        let expiries = self.dead.values().copied();
        links.chain(expiries).chain([self.next_snapshot]).min()
    }

    /// Calm (a quiet point) on every link, or not.
    pub(crate) fn calm(&mut self, calm: bool) {
        for hub in 0..self.links.len() {
            if self.links[hub].calm(calm, self.now) {
                self.back(hub);
            }
        }
    }

    /// Hub `hub`'s link goes down for `outage`; returns whether it did.
    pub(crate) fn flap(&mut self, hub: usize, outage: Duration) -> bool {
        self.links[hub].flap(self.now, outage, self.ambiguous)
    }

    /// A failover loses the newest records of `stream` (one to a few, or the little it had):
    /// as the Redis driver's check after it does, the stream goes on in a new epoch, keeping
    /// its older records (numbered afresh in it here). Returns how many were lost.
    pub(crate) fn lose_tail(&mut self, stream: &StreamId, retention: Retention) -> u64 {
        let now = self.now;
        let view = self.private_read(stream, None).0;
        let after = Position {
            epoch: view.head.epoch,
            offset: view.first.saturating_sub(1),
        };
        let records = self.private_read(stream, Some(after)).1;
        let lost = self.rng.between(1, MAX_TAIL).min(records.len() as u64);
        let kept = records.len() - lost as usize;
        self.inner.lose(now, stream);
        // The kept records again, in the new epoch: stored (the oracle learns them) but not
        // news to anyone, as an epoch that changes under them publishes nothing.
        for record in &records[..kept] {
            let op = self.number();
            let append = Operation::Append {
                op,
                stream: stream.clone(),
                record: Record::clone(record),
                retention,
            };
            self.inner.handle(now, append);
            while let Some(event) = self.inner.poll_event() {
                if let EngineEvent::Appended { at, .. } = event {
                    self.stored.push((stream.clone(), at, now));
                }
            }
        }
        self.counts.tails_lost += 1;
        self.counts.records_lost += lost;
        lost
    }

    /// What the inner engine stored since last asked: (stream, position, when).
    pub(crate) fn take_stored(&mut self) -> Vec<(StreamId, Position, Instant)> {
        std::mem::take(&mut self.stored)
    }

    /// The epochs named since last asked, in order.
    pub(crate) fn take_epochs(&mut self) -> Vec<(StreamId, u64)> {
        std::mem::take(&mut self.epochs)
    }

    /// Hub `hub`'s operation.
    fn handle(&mut self, hub: usize, now: Instant, operation: Operation) {
        self.set_now(now);
        let now = self.now;
        if self.links[hub].is_down() {
            if let Some(op) = operation.op() {
                return self.links[hub].refuse(now, op);
            }
            match operation {
                Operation::Presence { .. } => {
                    return self.links[hub].deferred.push(operation);
                }
                // Relayed as it happens, or never.
                Operation::Typing { .. } => return,
                // Follows are the driver's to remember, for when the link is back.
                _ => {}
            }
        }
        match operation {
            Operation::Append {
                op,
                stream,
                record,
                retention,
            } => {
                let op = self.ask(hub, op, Some(stream.clone()));
                let append = Operation::Append {
                    op,
                    stream,
                    record,
                    retention,
                };
                self.inner.handle(now, append);
            }
            Operation::Read {
                op,
                stream,
                after,
                max,
            } => {
                let op = self.ask(hub, op, None);
                let read = Operation::Read {
                    op,
                    stream,
                    after,
                    max,
                };
                self.inner.handle(now, read);
            }
            Operation::MarkRead { op, user, upto } => {
                let op = self.ask(hub, op, None);
                self.inner
                    .handle(now, Operation::MarkRead { op, user, upto });
            }
            Operation::Tops { op, streams } => {
                let op = self.ask(hub, op, None);
                self.inner.handle(now, Operation::Tops { op, streams });
            }
            Operation::Follow { stream, retention } => {
                if !self.followed(&stream) {
                    let follow = Operation::Follow {
                        stream: stream.clone(),
                        retention,
                    };
                    self.inner.handle(now, follow);
                }
                self.follows[hub].insert(stream.clone());
                if let StreamId::Room(room) = &stream {
                    self.snapshot(hub, room);
                }
            }
            Operation::Unfollow(stream) => {
                self.follows[hub].remove(&stream);
                if !self.followed(&stream) {
                    self.inner.handle(now, Operation::Unfollow(stream));
                }
            }
            other @ (Operation::Presence { .. } | Operation::Typing { .. }) => {
                self.news_from(hub, other);
            }
            other => self.inner.handle(now, other),
        }
        self.drain();
    }

    /// Whether any hub follows `stream`.
    fn followed(&self, stream: &StreamId) -> bool {
        self.follows.iter().any(|follows| follows.contains(stream))
    }

    fn number(&mut self) -> OpId {
        self.next_op += 1;
        OpId(self.next_op)
    }

    /// The inner engine's number for hub `hub`'s operation `op`.
    fn ask(&mut self, hub: usize, op: OpId, append: Option<StreamId>) -> OpId {
        let number = self.number();
        self.asked.insert(number, Asked { hub, op, append });
        number
    }

    /// A read of the store's own (a failover's), answered at once: the view and the records.
    fn private_read(
        &mut self,
        stream: &StreamId,
        after: Option<Position>,
    ) -> (roomcast_core::engine::View, Vec<Arc<Record>>) {
        let op = self.number();
        let read = Operation::Read {
            op,
            stream: stream.clone(),
            after,
            max: usize::MAX,
        };
        self.inner.handle(self.now, read);
        let mut answer = None;
        while let Some(event) = self.inner.poll_event() {
            if let EngineEvent::Read { view, records, .. } = event {
                answer = Some((view, records));
            }
        }
        answer.expect("the memory engine answers a read at once")
    }

    /// The inner engine's events: answers to the hubs that asked, `Live`s to the hubs that
    /// follow.
    fn drain(&mut self) {
        let now = self.now;
        while let Some(event) = self.inner.poll_event() {
            match event {
                EngineEvent::Live { stream, at, record } => {
                    for hub in 0..self.links.len() {
                        if self.follows[hub].contains(&stream) {
                            let live = EngineEvent::Live {
                                stream: stream.clone(),
                                at,
                                record: Arc::clone(&record),
                            };
                            self.links[hub].live(now, &stream, live);
                        }
                    }
                }
                EngineEvent::Appended { op, at, .. } => {
                    let Some(asked) = self.asked.remove(&op) else {
                        continue;
                    };
                    let mut online = false;
                    if let Some(stream) = &asked.append {
                        self.stored.push((stream.clone(), at, now));
                        // A node following the outbox holds a session of its user: the
                        // `delivered` of a direct.
                        if let StreamId::Outbox(_) = stream {
                            online = self.followed_up(stream);
                        }
                    }
                    let answer = EngineEvent::Appended {
                        op: asked.op,
                        at,
                        online,
                    };
                    self.answer(asked.hub, answer);
                }
                EngineEvent::Failed { op, fault } => {
                    if let Some(asked) = self.asked.remove(&op) {
                        let answer = EngineEvent::Failed {
                            op: asked.op,
                            fault,
                        };
                        self.answer(asked.hub, answer);
                    }
                }
                EngineEvent::Read {
                    op,
                    stream,
                    view,
                    records,
                } => {
                    self.epochs.push((stream.clone(), view.head.epoch));
                    if let Some(asked) = self.asked.remove(&op) {
                        let answer = EngineEvent::Read {
                            op: asked.op,
                            stream,
                            view,
                            records,
                        };
                        self.answer(asked.hub, answer);
                    }
                }
                EngineEvent::Marked {
                    op,
                    user,
                    before,
                    read,
                } => {
                    if let Some(asked) = self.asked.remove(&op) {
                        let answer = EngineEvent::Marked {
                            op: asked.op,
                            user,
                            before,
                            read,
                        };
                        self.answer(asked.hub, answer);
                    }
                }
                EngineEvent::Tops { op, heads } => {
                    let named = heads
                        .iter()
                        .map(|(stream, head)| (stream.clone(), head.epoch));
                    self.epochs.extend(named);
                    if let Some(asked) = self.asked.remove(&op) {
                        let answer = EngineEvent::Tops {
                            op: asked.op,
                            heads,
                        };
                        self.answer(asked.hub, answer);
                    }
                }
                _ => {}
            }
        }
    }

    /// An answer, to the hub that asked (or, with a planted bug, now and then to the next).
    fn answer(&mut self, hub: usize, event: EngineEvent) {
        self.answers += 1;
        let crossed = self.planted == Some(Planted::CrossedAnswers)
            && self.answers.is_multiple_of(50)
            && self.links.len() > 1;
        let hub = if crossed {
            (hub + 1) % self.links.len()
        } else {
            hub
        };
        self.links[hub].answer(self.now, event);
    }
}
