//! One hub's link to the shared engine (`shared.rs`), and the faults of a link across a network
//! (to Redis), drawn per link from the seed: its answers and news come late; a `Live` now and
//! then twice, or never; news of different streams out of order, but one stream's in order, as a
//! subscription keeps them (a room's presence and typing travel on its channel, with its
//! `Live`s); the link goes down and comes back, losing what was in flight on the subscription
//! and failing what the hub asks meanwhile. A quarter of the links are perfect and answer at
//! once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use roomcast_core::engine::{EngineEvent, Fault, OpId, Operation, StreamId};

use super::rng::Rng;

/// How badly one link behaves in one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Faults {
    /// Events come up to this late, in milliseconds.
    pub(crate) max_delay_ms: u64,
    /// Percent of `Live`s lost.
    pub(crate) drop_percent: u64,
    /// Percent of `Live`s sent twice.
    pub(crate) duplicate_percent: u64,
    /// Whether the link goes down now and then (the world's actions), and, for the engine as a
    /// whole, whether it fails over now and then (a lost tail).
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

/// What the engine did to the hubs, counted: the figures that show the faults happened.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineFaults {
    pub lives_dropped: u64,
    pub lives_duplicated: u64,
    pub link_flaps: u64,
    /// Failovers that lost a stream's newest records: the stream went on in a new epoch.
    pub tails_lost: u64,
    /// The records those lost.
    pub records_lost: u64,
    /// Presence news one hub gave the engine, relayed to another.
    pub relays: u64,
    /// Presence snapshots sent to hubs (at a follow, and now and then).
    pub snapshots: u64,
    /// Answers turned into `unavailable` by a link that broke while they were on their way,
    /// though the engine had carried the operation out.
    pub ambiguous: u64,
}

impl EngineFaults {
    pub(crate) fn add(&mut self, other: &EngineFaults) {
        self.lives_dropped += other.lives_dropped;
        self.lives_duplicated += other.lives_duplicated;
        self.link_flaps += other.link_flaps;
        self.tails_lost += other.tails_lost;
        self.records_lost += other.records_lost;
        self.relays += other.relays;
        self.snapshots += other.snapshots;
        self.ambiguous += other.ambiguous;
    }
}

/// One hub's link: what is on its way to the hub, and whether the link is up.
pub(crate) struct Link {
    rng: Rng,
    pub(crate) faults: Faults,
    /// Events waiting for their time, by (time, sequence).
    queue: BTreeMap<(Instant, u64), EngineEvent>,
    seq: u64,
    /// When each stream's last news goes out: the next goes no earlier.
    last: BTreeMap<StreamId, Instant>,
    /// The link is down until then.
    down_until: Option<Instant>,
    /// At a quiet point: no new faults, everything at once.
    calm: bool,
    /// What the hub said of its presence and sessions while the link was down: written once
    /// it is back, as the Redis driver's refresh does.
    pub(crate) deferred: Vec<Operation>,
    pub(crate) counts: EngineFaults,
}

impl Link {
    pub(crate) fn new(seed: u64, hub: usize) -> Self {
        let mut rng = Rng::new(seed ^ 0x5EED_FA17_E461_7E55 ^ ((hub as u64) << 48));
        let faults = Faults::draw(&mut rng);
        Self {
            rng,
            faults,
            queue: BTreeMap::new(),
            seq: 0,
            last: BTreeMap::new(),
            down_until: None,
            calm: false,
            deferred: Vec::new(),
            counts: EngineFaults::default(),
        }
    }

    /// Its hub died: what was on its way to it is gone, and a new hub's link starts up, with
    /// the same faults.
    pub(crate) fn restart(&mut self) {
        self.queue.clear();
        self.last.clear();
        self.down_until = None;
        self.deferred.clear();
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down_until.is_some()
    }

    /// The clock moved to `now`: a link down long enough comes back (`LinkUp`, after what was
    /// already on its way). Returns whether it did.
    pub(crate) fn set_now(&mut self, now: Instant) -> bool {
        if self.down_until.is_some_and(|until| until <= now) {
            self.down_until = None;
            self.push(now, EngineEvent::LinkUp);
            return true;
        }
        false
    }

    /// When the link next has something for its hub.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let queued = self.queue.keys().next().map(|(at, _)| *at);
        queued.into_iter().chain(self.down_until).min()
    }

    /// Calm (a quiet point): the link comes back, and from now on nothing fails or waits.
    /// Returns whether it came back.
    pub(crate) fn calm(&mut self, calm: bool, now: Instant) -> bool {
        self.calm = calm;
        if calm && self.down_until.is_some() {
            self.down_until = Some(now);
            return self.set_now(now);
        }
        false
    }

    /// The link goes down for `outage`: what was in flight on the subscription (`Live`s,
    /// presence, typing) is lost, as pub/sub is at most once; with `ambiguous`, the answers in
    /// flight fail too, as the driver fails a whole pipeline whose connection broke, though
    /// the engine carried it out; what the hub asks until the link is back fails. Returns
    /// whether it went down (not if down already, or calm).
    pub(crate) fn flap(&mut self, now: Instant, outage: Duration, ambiguous: bool) -> bool {
        if self.down_until.is_some() || self.calm {
            return false;
        }
        self.down_until = Some(now + outage);
        let mut lives = 0;
        self.queue.retain(|_, event| match event {
            EngineEvent::Live { .. } => {
                lives += 1;
                false
            }
            EngineEvent::Presence { .. }
            | EngineEvent::Typing { .. }
            | EngineEvent::PresenceSnapshot { .. } => false,
            _ => true,
        });
        if ambiguous {
            for event in self.queue.values_mut() {
                let op = match event {
                    EngineEvent::Appended { op, .. }
                    | EngineEvent::Read { op, .. }
                    | EngineEvent::Marked { op, .. }
                    | EngineEvent::Tops { op, .. } => *op,
                    _ => continue,
                };
                let fault = Fault::Unavailable("the link broke with the answer on its way".into());
                *event = EngineEvent::Failed { op, fault };
                self.counts.ambiguous += 1;
            }
        }
        self.counts.lives_dropped += lives;
        self.counts.link_flaps += 1;
        self.push(now, EngineEvent::LinkDown);
        true
    }

    /// An answer to the hub's operation, late.
    pub(crate) fn answer(&mut self, now: Instant, event: EngineEvent) {
        let at = now + self.delay();
        self.push(at, event);
    }

    /// An operation asked while the link is down fails.
    pub(crate) fn refuse(&mut self, now: Instant, op: OpId) {
        let fault = Fault::Unavailable("the engine's link is down".into());
        self.answer(now, EngineEvent::Failed { op, fault });
    }

    /// A `Live` of `stream`: lost with the link down, now and then lost or sent twice, after
    /// the stream's news before it.
    pub(crate) fn live(&mut self, now: Instant, stream: &StreamId, event: EngineEvent) {
        if self.is_down() || (!self.calm && self.rng.chance(self.faults.drop_percent)) {
            self.counts.lives_dropped += 1;
            return;
        }
        let at = self.in_order(now, stream);
        if !self.calm && self.rng.chance(self.faults.duplicate_percent) {
            // The copy may come after the stream's next `Live`: a late duplicate.
            let again = at + self.delay();
            self.push(again, event.clone());
            self.counts.lives_duplicated += 1;
        }
        self.push(at, event);
    }

    /// News on `stream`'s channel (presence, typing, a snapshot), in order with its `Live`s;
    /// lost with the link down. Returns whether it went.
    pub(crate) fn news(&mut self, now: Instant, stream: &StreamId, event: EngineEvent) -> bool {
        if self.is_down() {
            return false;
        }
        let at = self.in_order(now, stream);
        self.push(at, event);
        true
    }

    /// The next event due by `now`.
    pub(crate) fn poll(&mut self, now: Instant) -> Option<EngineEvent> {
        let entry = self.queue.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        Some(entry.remove())
    }

    /// When news of `stream` sent now arrives: late, but not before the stream's last.
    fn in_order(&mut self, now: Instant, stream: &StreamId) -> Instant {
        let at = now + self.delay();
        let last = self.last.entry(stream.clone()).or_insert(at);
        let at = at.max(*last);
        *last = at;
        at
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
}
