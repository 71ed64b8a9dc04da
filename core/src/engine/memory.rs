//! [`MemoryEngine`]: the streams in memory, answering every operation in the same call.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::{
    Engine, EngineEvent, Fault, OpId, Operation, Record, Retention, StreamId, StreamKind, View,
};
use crate::cursor::Position;
use crate::names::UserId;

/// The memory engine's budgets: what it holds in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Bytes of records held in all streams ([`Record::size`]): 256 MiB. An append past it
    /// drops its stream's oldest records to make room; a stream that has none to drop (a new
    /// one) is refused.
    pub max_bytes: usize,
    /// Outboxes holding messages for users who are away (whose outbox nobody follows):
    /// 100,000. A message to another such user past it is refused; users here are not
    /// limited (their sessions are).
    pub max_outboxes: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            max_outboxes: 100_000,
        }
    }
}

/// The streams of one hub, in memory: today's logs behind the engine exchange. Every operation
/// is answered in the same call ([`Engine::handle`], then [`Engine::poll_event`]). Lost with
/// the process.
#[derive(Debug)]
pub struct MemoryEngine {
    limits: MemoryLimits,
    streams: BTreeMap<StreamId, Log>,
    followed: BTreeSet<StreamId>,
    events: VecDeque<EngineEvent>,
    /// Bytes of records held.
    bytes: usize,
    /// Outboxes holding messages for users who are away.
    outboxes: usize,
    /// Seeds the epochs: a new stream's epoch comes from this and a counter.
    seed: u32,
    epochs: u32,
}

#[derive(Debug)]
struct Log {
    epoch: u64,
    /// The offset the next record gets.
    next: u64,
    /// Contiguous: `entries[i].1.offset == first + i`. With the time each was appended.
    entries: VecDeque<(Instant, Arc<Record>)>,
    bytes: usize,
    read: u64,
    retention: Option<Retention>,
    /// Since when it has been still: made, appended to, emptied (its last record's age
    /// reached) or no longer followed. See [`Log::forgettable`].
    touched: Instant,
}

/// Figures of a memory engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Streams known (with records, followed, or remembered for their epoch).
    pub streams: usize,
    /// Rooms with records.
    pub rooms_with_history: usize,
    /// Outboxes holding messages for users who are away.
    pub outboxes: usize,
    /// Records held.
    pub records: usize,
    /// Their bytes.
    pub bytes: usize,
}

impl MemoryEngine {
    /// An engine with these budgets. `seed` makes its epochs unique to this instance (use a
    /// random one per process) while runs with the same seed stay reproducible.
    pub fn new(limits: MemoryLimits, seed: u64) -> Self {
        Self {
            limits,
            streams: BTreeMap::new(),
            followed: BTreeSet::new(),
            events: VecDeque::new(),
            bytes: 0,
            outboxes: 0,
            seed: (seed ^ (seed >> 32)) as u32,
            epochs: 0,
        }
    }

    /// The budgets.
    pub fn limits(&self) -> MemoryLimits {
        self.limits
    }

    /// What it holds.
    pub fn stats(&self) -> MemoryStats {
        let mut stats = MemoryStats {
            streams: self.streams.len(),
            outboxes: self.outboxes,
            bytes: self.bytes,
            ..MemoryStats::default()
        };
        for (stream, log) in &self.streams {
            stats.records += log.entries.len();
            if matches!(stream, StreamId::Room(_)) && !log.entries.is_empty() {
                stats.rooms_with_history += 1;
            }
        }
        stats
    }

    /// Loses a stream at `now`, as an engine that lost its data does (a failover that lost what
    /// was not replicated): its records go, and it starts again on a new epoch, keeping its
    /// bounds. For simulations and tests of what a hub does then; a `Live` of the new epoch
    /// reaches its followers as usual.
    pub fn lose(&mut self, now: Instant, stream: &StreamId) {
        let Some(old) = self.streams.remove(stream) else {
            return;
        };
        self.bytes -= old.bytes;
        let counted = stream.kind() == StreamKind::Outbox && !self.followed.contains(stream);
        if counted && !old.entries.is_empty() {
            self.outboxes -= 1;
        }
        let epoch = self.next_epoch();
        let mut log = Log::new(epoch, now);
        log.retention = old.retention;
        self.streams.insert(stream.clone(), log);
    }

    fn next_epoch(&mut self) -> u64 {
        self.epochs = self.epochs.wrapping_add(1);
        u64::from(mix32(self.seed.wrapping_add(self.epochs)))
    }

    /// The stream's log, made with a fresh epoch if it has none (or was forgettable, see
    /// [`Log::forgettable`]), its records past their age dropped.
    fn log(&mut self, now: Instant, stream: &StreamId) -> &mut Log {
        self.tidy(now, stream);
        if !self.streams.contains_key(stream) {
            let epoch = self.next_epoch();
            self.streams.insert(stream.clone(), Log::new(epoch, now));
        }
        self.streams.get_mut(stream).expect("made above")
    }

    /// Drops the stream's records past their age, and forgets it if it is forgettable.
    fn tidy(&mut self, now: Instant, stream: &StreamId) {
        let followed = self.followed.contains(stream);
        let Some(log) = self.streams.get_mut(stream) else {
            return;
        };
        let (records, bytes) = log.prune(now);
        self.bytes -= bytes;
        let counted = stream.kind() == StreamKind::Outbox && !followed;
        if records > 0 && log.entries.is_empty() && counted {
            self.outboxes -= 1;
        }
        if !followed && log.forgettable(now) {
            self.streams.remove(stream);
        }
    }

    fn append(
        &mut self,
        now: Instant,
        op: OpId,
        stream: StreamId,
        record: Record,
        retention: Retention,
    ) {
        let size = record.size();
        self.log(now, &stream);
        let log = self.streams.get_mut(&stream).expect("made by log()");
        log.retention = Some(retention);
        log.touched = now;
        // Outboxes nobody follows here hold their users' messages while they are away: those
        // are counted.
        let outbox = stream.kind() == StreamKind::Outbox && !self.followed.contains(&stream);
        let empty = log.entries.is_empty();
        let at_limit = (outbox && empty && self.outboxes >= self.limits.max_outboxes)
            || self.bytes + size > self.limits.max_bytes;
        if at_limit {
            // At a budget: what has aged out may not have been swept yet.
            self.expire(now);
            self.log(now, &stream);
        }
        let log = self.streams.get_mut(&stream).expect("made by log()");
        let new_outbox = outbox && log.entries.is_empty();
        if new_outbox && self.outboxes >= self.limits.max_outboxes {
            let why = format!(
                "at most {} users with stored messages",
                self.limits.max_outboxes
            );
            return self.fail(op, Fault::LimitReached(why));
        }
        // Past the total, this stream's oldest records make room; a stream without enough of
        // them is refused rather than take another stream's.
        let over = (self.bytes + size).saturating_sub(self.limits.max_bytes);
        if over > log.bytes || size > retention.max_bytes {
            let why = if size > retention.max_bytes {
                format!("a record of {size} bytes is larger than its stream keeps")
            } else {
                format!("the store holds at most {} bytes", self.limits.max_bytes)
            };
            return self.fail(op, Fault::LimitReached(why));
        }
        let mut freed = 0;
        while freed < over {
            freed += log.pop();
        }
        let offset = log.next;
        let record = Arc::new(record.at(offset));
        log.next += 1;
        log.bytes += size;
        log.entries.push_back((now, Arc::clone(&record)));
        // The count and size bounds, in the append's own step.
        while log.entries.len() > retention.max_messages || log.bytes > retention.max_bytes {
            freed += log.pop();
        }
        let at = log.position(offset);
        let emptied = log.entries.is_empty();
        self.bytes = self.bytes + size - freed;
        if outbox {
            match (new_outbox, emptied) {
                (true, false) => self.outboxes += 1,
                (false, true) => self.outboxes -= 1,
                _ => {}
            }
        }
        self.events.push_back(EngineEvent::Appended {
            op,
            at,
            online: false,
        });
        if self.followed.contains(&stream) {
            self.events
                .push_back(EngineEvent::Live { stream, at, record });
        }
    }

    fn read(
        &mut self,
        now: Instant,
        op: OpId,
        stream: StreamId,
        after: Option<Position>,
        max: usize,
    ) {
        let log = self.log(now, &stream);
        let view = log.view();
        let records = match after {
            Some(after) if view.covers(after) => log
                .entries
                .iter()
                .skip(usize::try_from(after.offset + 1 - view.first).unwrap_or(usize::MAX))
                .take(max)
                .map(|(_, record)| Arc::clone(record))
                .collect(),
            _ => Vec::new(),
        };
        self.events.push_back(EngineEvent::Read {
            op,
            stream,
            view,
            records,
        });
    }

    fn mark_read(&mut self, now: Instant, op: OpId, user: UserId, upto: Position) {
        let stream = StreamId::Outbox(user.clone());
        let log = self.log(now, &stream);
        let before = log.read;
        if upto.epoch == log.epoch {
            log.read = log.read.max(upto.offset.min(log.next - 1));
        }
        let read = log.position(log.read);
        self.events.push_back(EngineEvent::Marked {
            op,
            user,
            before,
            read,
        });
    }

    /// Drops records past their age, and forgets the streams that are forgettable.
    fn expire(&mut self, now: Instant) {
        let streams: Vec<StreamId> = self.streams.keys().cloned().collect();
        for stream in streams {
            self.tidy(now, &stream);
        }
    }

    fn fail(&mut self, op: OpId, fault: Fault) {
        self.events.push_back(EngineEvent::Failed { op, fault });
    }
}

impl Engine for MemoryEngine {
    fn handle(&mut self, now: Instant, operation: Operation) {
        match operation {
            Operation::Append {
                op,
                stream,
                record,
                retention,
            } => self.append(now, op, stream, record, retention),
            Operation::Read {
                op,
                stream,
                after,
                max,
            } => self.read(now, op, stream, after, max),
            Operation::Follow { stream, retention } => {
                let log = self.log(now, &stream);
                log.retention.get_or_insert(retention);
                log.touched = now;
                let held = !log.entries.is_empty();
                if self.followed.insert(stream.clone())
                    && held
                    && stream.kind() == StreamKind::Outbox
                {
                    self.outboxes -= 1;
                }
            }
            Operation::Unfollow(stream) => {
                let held = self.streams.get_mut(&stream).is_some_and(|log| {
                    log.touched = log.touched.max(now);
                    !log.entries.is_empty()
                });
                if self.followed.remove(&stream) && held && stream.kind() == StreamKind::Outbox {
                    self.outboxes += 1;
                }
            }
            Operation::MarkRead { op, user, upto } => self.mark_read(now, op, user, upto),
            Operation::Expire => self.expire(now),
            // One node: its presence and typing are its hub's own.
            Operation::Presence { .. } | Operation::Typing { .. } => {}
            Operation::Tops { op, streams } => {
                // As a read does, a stream unknown here starts (a new epoch): one the hub
                // follows was lost, and the hub learns so.
                let heads = streams
                    .into_iter()
                    .map(|stream| {
                        let head = self.log(now, &stream).view().head;
                        (stream, head)
                    })
                    .collect();
                self.events.push_back(EngineEvent::Tops { op, heads });
            }
        }
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events.pop_front()
    }
}

impl Log {
    fn new(epoch: u64, now: Instant) -> Self {
        Self {
            epoch,
            next: 1,
            entries: VecDeque::new(),
            bytes: 0,
            read: 0,
            retention: None,
            touched: now,
        }
    }

    fn position(&self, offset: u64) -> Position {
        Position {
            epoch: self.epoch,
            offset,
        }
    }

    fn view(&self) -> View {
        View {
            head: self.position(self.next - 1),
            first: self.entries.front().map_or(self.next, |(_, r)| r.offset),
            read: self.read,
        }
    }

    /// Holds nothing and has been still for its retention age: a stream nobody follows is then
    /// forgotten, and made anew, in a new epoch, when next used. Until then it is remembered,
    /// so a client's position in it still resumes.
    fn forgettable(&self, now: Instant) -> bool {
        self.entries.is_empty()
            && self
                .retention
                .is_none_or(|r| now.saturating_duration_since(self.touched) >= r.max_age)
    }

    /// Drops the oldest record; returns its size.
    fn pop(&mut self) -> usize {
        let Some((_, record)) = self.entries.pop_front() else {
            return 0;
        };
        let size = record.size();
        self.bytes -= size;
        size
    }

    /// Drops the records past the age bound as of `now`: how many, and their bytes.
    fn prune(&mut self, now: Instant) -> (usize, usize) {
        let Some(retention) = self.retention else {
            return (0, 0);
        };
        let (mut records, mut bytes) = (0, 0);
        while let Some((at, _)) = self.entries.front() {
            if now.saturating_duration_since(*at) < retention.max_age {
                break;
            }
            // Emptied when its last record's age is reached, whenever it is looked at.
            self.touched = self.touched.max(*at + retention.max_age);
            bytes += self.pop();
            records += 1;
        }
        (records, bytes)
    }
}

/// A bijection on u32 (a finalizer of MurmurHash3): distinct counters give distinct epochs.
pub(crate) fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

#[cfg(test)]
mod tests;
