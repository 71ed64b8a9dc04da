//! The simulation's engine: the memory engine behind the faults of one across a network (Redis).
//! Its answers and `Live`s come late; a `Live` now and then twice, or never; `Live`s of
//! different streams out of order (one stream's stay in order, as a subscription keeps them);
//! its link goes down and comes back, losing the `Live`s in flight and failing what is asked
//! meanwhile; and a stream can be lost (a failover that lost what was not replicated), to
//! start again on a new epoch. Each run draws how badly it behaves from its seed; a quarter of
//! the runs get a perfect engine that answers at once.
//!
//! The oracle learns what was stored from here, when the inner engine stored it: the truth,
//! whatever the hub makes of the late news.

use roomcast_core::engine::{Engine, EngineEvent, Fault, MemoryStats, OpId, Operation};

use super::*;

/// How badly the engine behaves in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Faults {
    /// Events come up to this late, in milliseconds.
    pub(crate) max_delay_ms: u64,
    /// Percent of `Live`s lost.
    pub(crate) drop_percent: u64,
    /// Percent of `Live`s sent twice.
    pub(crate) duplicate_percent: u64,
    /// Whether the link goes down and streams are lost, now and then (the world's actions).
    pub(crate) outages: bool,
}

impl Faults {
    fn draw(rng: &mut Rng) -> Self {
        if rng.chance(25) {
            return Self::default();
        }
        Self {
            max_delay_ms: rng.between(0, 400),
            drop_percent: rng.between(0, 6),
            duplicate_percent: rng.between(0, 6),
            outages: rng.chance(75),
        }
    }
}

/// What the engine did to the hub, counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineFaults {
    pub lives_dropped: u64,
    pub lives_duplicated: u64,
    pub link_flaps: u64,
    pub streams_lost: u64,
}

pub(crate) struct FaultyEngine {
    inner: MemoryEngine,
    rng: Rng,
    pub(crate) faults: Faults,
    now: Instant,
    /// Events waiting for their time, by (time, sequence).
    queue: BTreeMap<(Instant, u64), EngineEvent>,
    seq: u64,
    /// When each stream's last `Live` goes out: the next one goes no earlier.
    last_live: BTreeMap<StreamId, Instant>,
    /// The link is down until then.
    down_until: Option<Instant>,
    /// At a quiet point: no new faults, every answer at once.
    calm: bool,
    /// Appends taken, by op, for the stream their answer does not name.
    appending: BTreeMap<OpId, StreamId>,
    /// What the inner engine stored, and when: drained by the world for the oracle.
    stored: Vec<(StreamId, Position, Instant)>,
    /// The epochs its answers named (a stream made by a read has one before any message).
    epochs: Vec<(StreamId, u64)>,
    pub(crate) counts: EngineFaults,
}

impl FaultyEngine {
    pub(crate) fn new(seed: u64, now: Instant) -> Self {
        let mut rng = Rng::new(seed ^ 0x5EED_FA17_E461_7E55);
        let faults = Faults::draw(&mut rng);
        Self {
            inner: MemoryEngine::new(MemoryLimits::default(), seed),
            rng,
            faults,
            now,
            queue: BTreeMap::new(),
            seq: 0,
            last_live: BTreeMap::new(),
            down_until: None,
            calm: false,
            appending: BTreeMap::new(),
            stored: Vec::new(),
            epochs: Vec::new(),
            counts: EngineFaults::default(),
        }
    }

    pub(crate) fn stats(&self) -> MemoryStats {
        self.inner.stats()
    }

    /// The clock moved to `now`: what is due there goes out at the next drive, and a link
    /// down long enough comes back.
    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.down_until.is_some_and(|until| until <= self.now) {
            self.down_until = None;
            self.push(self.now, EngineEvent::LinkUp);
        }
    }

    /// When the engine next has something to say.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let queued = self.queue.keys().next().map(|(at, _)| *at);
        queued.into_iter().chain(self.down_until).min()
    }

    /// Calm (a quiet point): the link comes back, and from now on nothing fails or waits.
    pub(crate) fn calm(&mut self, calm: bool) {
        self.calm = calm;
        if calm && self.down_until.is_some() {
            self.down_until = Some(self.now);
            self.set_now(self.now);
        }
    }

    /// The link goes down for `outage`: the `Live`s in flight are lost (a subscription is at
    /// most once), and what is asked until it is back fails.
    pub(crate) fn flap(&mut self, outage: Duration) {
        if self.down_until.is_some() || self.calm {
            return;
        }
        self.down_until = Some(self.now + outage);
        let before = self.queue.len();
        self.queue
            .retain(|_, event| !matches!(event, EngineEvent::Live { .. }));
        self.counts.lives_dropped += (before - self.queue.len()) as u64;
        self.counts.link_flaps += 1;
        self.push(self.now, EngineEvent::LinkDown);
    }

    /// The engine loses `stream`: it starts again on a new epoch.
    pub(crate) fn lose(&mut self, stream: &StreamId) {
        self.inner.lose(self.now, stream);
        self.counts.streams_lost += 1;
    }

    /// What was stored since last asked: (stream, position, when).
    pub(crate) fn take_stored(&mut self) -> Vec<(StreamId, Position, Instant)> {
        std::mem::take(&mut self.stored)
    }

    /// The epochs named since last asked, in order.
    pub(crate) fn take_epochs(&mut self) -> Vec<(StreamId, u64)> {
        std::mem::take(&mut self.epochs)
    }

    fn push(&mut self, at: Instant, event: EngineEvent) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn delay(&mut self) -> Duration {
        if self.calm {
            return Duration::ZERO;
        }
        Duration::from_millis(self.rng.below(self.faults.max_delay_ms + 1))
    }

    /// An event of the inner engine, on its way to the hub.
    fn send(&mut self, event: EngineEvent) {
        let mut at = self.now + self.delay();
        if let EngineEvent::Live { stream, .. } = &event {
            if !self.calm && self.rng.chance(self.faults.drop_percent) {
                self.counts.lives_dropped += 1;
                return;
            }
            let last = self.last_live.entry(stream.clone()).or_insert(at);
            at = at.max(*last);
            *last = at;
            if !self.calm && self.rng.chance(self.faults.duplicate_percent) {
                let again = at + self.delay();
                self.push(again, event.clone());
                self.counts.lives_duplicated += 1;
            }
        }
        self.push(at, event);
    }
}

impl Engine for FaultyEngine {
    fn handle(&mut self, now: Instant, operation: Operation) {
        self.set_now(now);
        if self.down_until.is_some() {
            let asked = match &operation {
                Operation::Append { op, .. }
                | Operation::Read { op, .. }
                | Operation::MarkRead { op, .. }
                | Operation::Tops { op, .. } => Some(*op),
                _ => None,
            };
            if let Some(op) = asked {
                let fault = Fault::Unavailable("the engine's link is down".into());
                let at = self.now + self.delay();
                self.push(at, EngineEvent::Failed { op, fault });
                return;
            }
        }
        if let Operation::Append { op, stream, .. } = &operation {
            self.appending.insert(*op, stream.clone());
        }
        self.inner.handle(self.now, operation);
        while let Some(event) = self.inner.poll_event() {
            match &event {
                EngineEvent::Appended { op, at, .. } => {
                    if let Some(stream) = self.appending.remove(op) {
                        self.stored.push((stream, *at, self.now));
                    }
                }
                EngineEvent::Failed { op, .. } => {
                    self.appending.remove(op);
                }
                EngineEvent::Read { stream, view, .. } => {
                    self.epochs.push((stream.clone(), view.head.epoch));
                }
                EngineEvent::Tops { heads, .. } => {
                    let named = heads
                        .iter()
                        .map(|(stream, head)| (stream.clone(), head.epoch));
                    self.epochs.extend(named);
                }
                _ => {}
            }
            self.send(event);
        }
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        let entry = self.queue.first_entry()?;
        if entry.key().0 > self.now {
            return None;
        }
        Some(entry.remove())
    }
}
