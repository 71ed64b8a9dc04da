//! One group commit: every queued operation in one write transaction, one fsync, then the
//! events, in the operations' order; reads are answered after the commit, so they see the
//! batch's appends (and come after their `Live`s).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, Table};
use roomcast_core::cursor::Position;
use roomcast_core::engine::{
    EngineEvent, Fault, OpId, Operation, Record, Retention, StreamId, StreamKind, View,
};
use roomcast_core::names::UserId;

use crate::meta::{self, Meta, RECORD_HEAD, RECORDS, STREAMS};
use crate::{StoreError, StoreLimits};

/// The store's state, owned by its commit thread.
pub(crate) struct State {
    pub(crate) db: Database,
    pub(crate) metas: BTreeMap<StreamId, Meta>,
    pub(crate) followed: BTreeSet<StreamId>,
    pub(crate) limits: StoreLimits,
    pub(crate) next_id: u64,
    /// Seeds new epochs, with a counter: distinct per stream and per process.
    pub(crate) seed: u64,
    pub(crate) epochs: u64,
    /// Bytes of records kept, in all.
    pub(crate) bytes: u64,
    /// Outboxes nobody follows that hold messages (users who are away).
    pub(crate) outboxes: usize,
    /// Records kept, in all.
    pub(crate) messages: u64,
    /// Rooms holding records.
    pub(crate) rooms_with_history: usize,
}

/// What a batch's operations changed, to undo if its commit fails: each stream's meta as it
/// was before the batch (`None`: it did not exist).
type Undo = BTreeMap<StreamId, Option<Meta>>;

impl State {
    /// Runs a batch; returns its events, in order.
    pub(crate) fn run(&mut self, operations: Vec<Operation>, now_ms: u64) -> Vec<EngineEvent> {
        let mut undo = Undo::new();
        let (bytes, outboxes, followed) = (self.bytes, self.outboxes, self.followed.clone());
        let mut events = Vec::new();
        let mut reads = Vec::new();
        let written = self.write(&operations, now_ms, &mut events, &mut reads, &mut undo);
        match written.and_then(|()| self.answer_reads(&reads, now_ms, &mut events)) {
            Ok(()) => {
                self.count(&undo);
                events
            }
            Err(error) => {
                // Nothing of the batch is stored: its state goes back, and each operation is
                // answered so (the hub sends reads again).
                for (stream, meta) in undo {
                    match meta {
                        Some(meta) => self.metas.insert(stream, meta),
                        None => self.metas.remove(&stream),
                    };
                }
                self.bytes = bytes;
                self.outboxes = outboxes;
                self.followed = followed;
                failed(&operations, &error)
            }
        }
    }

    /// Moves the figures by what a committed batch changed: exact, and costing the streams the
    /// batch touched, not every stream.
    fn count(&mut self, undo: &Undo) {
        for (stream, before) in undo {
            let after = self.metas.get(stream);
            let len = |meta: Option<&Meta>| meta.map_or(0, Meta::len);
            self.messages = (self.messages + len(after)).saturating_sub(len(before.as_ref()));
            if stream.kind() == StreamKind::Room {
                let held = |meta: Option<&Meta>| meta.is_some_and(|meta| !meta.is_empty());
                match (held(before.as_ref()), held(after)) {
                    (false, true) => self.rooms_with_history += 1,
                    (true, false) => self.rooms_with_history -= 1,
                    _ => {}
                }
            }
        }
    }

    fn write(
        &mut self,
        operations: &[Operation],
        now_ms: u64,
        events: &mut Vec<EngineEvent>,
        reads: &mut Vec<Operation>,
        undo: &mut Undo,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut records = txn.open_table(RECORDS)?;
            let mut streams = txn.open_table(STREAMS)?;
            for operation in operations {
                match operation {
                    Operation::Append {
                        op,
                        stream,
                        record,
                        retention,
                    } => self.append(
                        &mut records,
                        now_ms,
                        *op,
                        stream,
                        record,
                        *retention,
                        events,
                        undo,
                    )?,
                    Operation::Read { .. } | Operation::Tops { .. } => {
                        reads.push(operation.clone());
                    }
                    Operation::Follow { stream, retention } => {
                        let meta = self.meta(&mut records, stream, now_ms, undo)?;
                        meta.retention.get_or_insert(*retention);
                        let held = !meta.is_empty();
                        if self.followed.insert(stream.clone()) && held && is_outbox(stream) {
                            self.outboxes -= 1;
                        }
                    }
                    Operation::Unfollow(stream) => {
                        if self.metas.contains_key(stream) {
                            let meta = self.meta(&mut records, stream, now_ms, undo)?;
                            meta.touched_ms = meta.touched_ms.max(now_ms);
                            let held = !meta.is_empty();
                            if self.followed.remove(stream) && held && is_outbox(stream) {
                                self.outboxes += 1;
                            }
                        } else {
                            self.followed.remove(stream);
                        }
                    }
                    Operation::MarkRead { op, user, upto } => {
                        self.mark(&mut records, now_ms, *op, user, *upto, events, undo)?;
                    }
                    Operation::Expire => self.expire(&mut records, now_ms, undo)?,
                    _ => {}
                }
            }
            for (stream, before) in undo.iter() {
                match self.metas.get(stream) {
                    Some(meta) if Some(meta) != before.as_ref() => {
                        streams.insert(stream.key().as_str(), meta.encode().as_slice())?;
                    }
                    Some(_) => {}
                    None => {
                        streams.remove(stream.key().as_str())?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The stream's meta, its records past their age dropped, forgotten and made anew if it
    /// was forgettable.
    fn meta(
        &mut self,
        records: &mut Table<(u64, u64), &[u8]>,
        stream: &StreamId,
        now_ms: u64,
        undo: &mut Undo,
    ) -> Result<&mut Meta, StoreError> {
        self.tidy(records, stream, now_ms, undo)?;
        if !self.metas.contains_key(stream) {
            undo.entry(stream.clone()).or_insert(None);
            self.next_id += 1;
            self.epochs += 1;
            let epoch = mix64(self.seed ^ self.epochs.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let meta = Meta::new(self.next_id, epoch, now_ms);
            self.metas.insert(stream.clone(), meta);
        }
        Ok(self.metas.get_mut(stream).expect("made above"))
    }

    /// Drops the stream's records past their age; forgets it if it is forgettable.
    fn tidy(
        &mut self,
        records: &mut Table<(u64, u64), &[u8]>,
        stream: &StreamId,
        now_ms: u64,
        undo: &mut Undo,
    ) -> Result<(), StoreError> {
        let Some(meta) = self.metas.get(stream).copied() else {
            return Ok(());
        };
        undo.entry(stream.clone()).or_insert(Some(meta));
        let held = !meta.is_empty();
        let mut meta = meta;
        if let Some(cutoff) = meta.cutoff_ms(now_ms) {
            let age = meta.retention.map(|r| meta::millis(r.max_age)).unwrap_or(0);
            while !meta.is_empty() {
                let value = records.get((meta.id, meta.first))?;
                let (at, size) = value
                    .as_ref()
                    .and_then(|v| meta::record_head(v.value()))
                    .ok_or(StoreError::Corrupt("a record without its head"))?;
                drop(value);
                if at > cutoff {
                    break;
                }
                records.remove((meta.id, meta.first))?;
                meta.first += 1;
                meta.bytes -= size as u64;
                self.bytes -= size as u64;
                meta.touched_ms = meta.touched_ms.max(at + age);
            }
        }
        let followed = self.followed.contains(stream);
        if held && meta.is_empty() && is_outbox(stream) && !followed {
            self.outboxes -= 1;
        }
        if !followed && meta.forgettable(now_ms) {
            self.metas.remove(stream);
        } else {
            self.metas.insert(stream.clone(), meta);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        records: &mut Table<(u64, u64), &[u8]>,
        now_ms: u64,
        op: OpId,
        stream: &StreamId,
        record: &Record,
        retention: Retention,
        events: &mut Vec<EngineEvent>,
        undo: &mut Undo,
    ) -> Result<(), StoreError> {
        let size = record.size() as u64;
        let counted = stream.kind() == StreamKind::Outbox && !self.followed.contains(stream);
        let meta = *self.meta(records, stream, now_ms, undo)?;
        let new_outbox = counted && meta.is_empty();
        if new_outbox && self.outboxes >= self.limits.max_outboxes {
            let why = format!(
                "at most {} users with stored messages",
                self.limits.max_outboxes
            );
            events.push(EngineEvent::Failed {
                op,
                fault: Fault::LimitReached(why),
            });
            return Ok(());
        }
        // Past the total, this stream's oldest records make room; a stream without enough of
        // them is refused rather than take another stream's.
        let over = (self.bytes + size).saturating_sub(self.limits.max_bytes);
        if over > meta.bytes || size > retention.max_bytes as u64 {
            let why = if size > retention.max_bytes as u64 {
                format!("a record of {size} bytes is larger than its stream keeps")
            } else {
                format!("the store holds at most {} bytes", self.limits.max_bytes)
            };
            events.push(EngineEvent::Failed {
                op,
                fault: Fault::LimitReached(why),
            });
            return Ok(());
        }
        let mut meta = meta;
        meta.retention = Some(retention);
        meta.touched_ms = now_ms;
        let mut freed = 0;
        while freed < over {
            freed += pop(records, &mut meta)?;
        }
        let offset = meta.next;
        let bytes = record.encode();
        records.insert(
            (meta.id, offset),
            meta::record_value(now_ms, size as usize, &bytes).as_slice(),
        )?;
        meta.next += 1;
        meta.bytes += size;
        while meta.len() > retention.max_messages as u64 || meta.bytes > retention.max_bytes as u64
        {
            freed += pop(records, &mut meta)?;
        }
        self.bytes = self.bytes + size - freed;
        match (new_outbox, meta.is_empty()) {
            (true, false) => self.outboxes += 1,
            (false, true) if counted => self.outboxes -= 1,
            _ => {}
        }
        self.metas.insert(stream.clone(), meta);
        let at = meta.position(offset);
        events.push(EngineEvent::Appended {
            op,
            at,
            online: false,
        });
        if self.followed.contains(stream) {
            let record = Arc::new(record.clone().at(offset));
            events.push(EngineEvent::Live {
                stream: stream.clone(),
                at,
                record,
            });
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn mark(
        &mut self,
        records: &mut Table<(u64, u64), &[u8]>,
        now_ms: u64,
        op: OpId,
        user: &UserId,
        upto: Position,
        events: &mut Vec<EngineEvent>,
        undo: &mut Undo,
    ) -> Result<(), StoreError> {
        let stream = StreamId::Outbox(user.clone());
        let meta = self.meta(records, &stream, now_ms, undo)?;
        let before = meta.read;
        if upto.epoch == meta.epoch {
            meta.read = meta.read.max(upto.offset.min(meta.next - 1));
        }
        let read = meta.position(meta.read);
        events.push(EngineEvent::Marked {
            op,
            user: user.clone(),
            before,
            read,
        });
        Ok(())
    }

    fn expire(
        &mut self,
        records: &mut Table<(u64, u64), &[u8]>,
        now_ms: u64,
        undo: &mut Undo,
    ) -> Result<(), StoreError> {
        let streams: Vec<StreamId> = self.metas.keys().cloned().collect();
        for stream in streams {
            self.tidy(records, &stream, now_ms, undo)?;
        }
        Ok(())
    }

    /// The reads of the batch, from a snapshot taken after its commit.
    fn answer_reads(
        &mut self,
        reads: &[Operation],
        now_ms: u64,
        events: &mut Vec<EngineEvent>,
    ) -> Result<(), StoreError> {
        if reads.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        for read in reads {
            if let Operation::Tops { op, streams } = read {
                let heads = streams
                    .iter()
                    .filter_map(|stream| {
                        let meta = self.metas.get(stream)?;
                        let head = Position {
                            epoch: meta.epoch,
                            offset: meta.next - 1,
                        };
                        Some((stream.clone(), head))
                    })
                    .collect();
                events.push(EngineEvent::Tops { op: *op, heads });
                continue;
            }
            let Operation::Read {
                op,
                stream,
                after,
                max,
            } = read
            else {
                continue;
            };
            let Some(meta) = self.metas.get(stream).copied() else {
                // A stream never seen: its view is a fresh epoch's, made by the next write.
                // Answer it as empty; the hub follows (and so makes) a stream before it reads.
                let view = View {
                    head: Position {
                        epoch: 0,
                        offset: 0,
                    },
                    first: 1,
                    read: 0,
                };
                events.push(EngineEvent::Read {
                    op: *op,
                    stream: stream.clone(),
                    view,
                    records: Vec::new(),
                });
                continue;
            };
            // Records past their age are gone to a reader, swept or not.
            let cutoff = meta.cutoff_ms(now_ms);
            let mut first = meta.first;
            let mut found = Vec::new();
            let start = after
                .filter(|after| after.epoch == meta.epoch)
                .map(|after| after.offset + 1);
            for entry in records.range((meta.id, meta.first)..(meta.id, meta.next))? {
                let (key, value) = entry?;
                let offset = key.value().1;
                let value = value.value();
                let (at, _) = meta::record_head(value)
                    .ok_or(StoreError::Corrupt("a record without its head"))?;
                if cutoff.is_some_and(|cutoff| at <= cutoff) {
                    first = offset + 1;
                    continue;
                }
                if start.is_some_and(|start| offset >= start) && found.len() < *max {
                    let record = Record::decode(offset, &value[RECORD_HEAD..])
                        .map_err(|_| StoreError::Corrupt("a record that does not decode"))?;
                    found.push(Arc::new(record));
                }
            }
            let view = meta.view(first);
            let records = match after {
                Some(after) if view.covers(*after) => {
                    found.retain(|record| record.offset > after.offset);
                    found
                }
                _ => Vec::new(),
            };
            events.push(EngineEvent::Read {
                op: *op,
                stream: stream.clone(),
                view,
                records,
            });
        }
        Ok(())
    }
}

fn is_outbox(stream: &StreamId) -> bool {
    stream.kind() == StreamKind::Outbox
}

/// Drops the stream's oldest record; returns its size.
fn pop(records: &mut Table<(u64, u64), &[u8]>, meta: &mut Meta) -> Result<u64, StoreError> {
    if meta.is_empty() {
        return Ok(0);
    }
    let removed = records.remove((meta.id, meta.first))?;
    let size = removed
        .as_ref()
        .and_then(|v| meta::record_head(v.value()))
        .map_or(0, |(_, size)| size as u64);
    drop(removed);
    meta.first += 1;
    meta.bytes -= size;
    Ok(size)
}

/// Every operation of a batch whose commit failed, answered so.
fn failed(operations: &[Operation], error: &StoreError) -> Vec<EngineEvent> {
    let fault = || Fault::Unavailable(format!("the store could not commit: {error}"));
    operations
        .iter()
        .filter_map(|operation| match operation {
            Operation::Append { op, .. }
            | Operation::Read { op, .. }
            | Operation::Tops { op, .. }
            | Operation::MarkRead { op, .. } => Some(EngineEvent::Failed {
                op: *op,
                fault: fault(),
            }),
            _ => None,
        })
        .collect()
}

/// A bijection on u64 (splitmix64's finalizer): distinct counters give distinct epochs.
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
