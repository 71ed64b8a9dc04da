//! Sessions starting on streams: a connection's `streams` message and its replays, a join's
//! reply and its replay.
//!
//! A session starts on a stream at a position: where its cursor or `since` says, the user's
//! read mark for an outbox without one, else the head. It is told where it starts, gets the
//! stored messages after that position up to what the hub has delivered to the stream's
//! receivers, and from then on receives the stream with them: nothing twice, nothing missed.
//! Each of a session's starts is answered in the order it was asked.

use std::sync::Arc;

use super::feeds::READ_MAX;
use super::ops::Pending;
use super::room::push;
use super::{Connect, Hub};
use crate::cursor::{Position, Stream};
use crate::delivery::{Delivery, SessionId, Shared};
use crate::engine::{OpId, Record, StreamId, View};
use crate::envelope::{ErrorCode, Ref, Reply, ServerMessage, StreamStart};
use crate::names::RoomName;

/// A session starting on one stream or more.
#[derive(Debug)]
pub(super) struct Start {
    pub(super) session: SessionId,
    kind: StartKind,
    pub(super) entries: Vec<Entry>,
}

#[derive(Debug)]
enum StartKind {
    /// A connection: one `streams` message for every stream, then the replays.
    Connect,
    /// A `join`: its reply, then the replay.
    Join {
        reference: Option<Ref>,
        room: RoomName,
        /// Joined already: the reply says so, with nothing to replay.
        member: bool,
        since: Option<Position>,
    },
}

/// A session starting on one stream.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) stream: StreamId,
    /// Where the client asked to resume after (its cursor, `since`), or the read mark.
    asked: Option<Position>,
    /// The client named the position: whether it is recovered is said.
    said: bool,
    /// An outbox without a position: it starts after the user's read mark, which the first
    /// view tells.
    by_mark: bool,
    /// The position the replay follows, once known.
    from: Option<Position>,
    recovered: Option<bool>,
    /// For an outbox started by the mark: the messages of its replay a person reads (all
    /// but receipts).
    unread: Option<u64>,
    replay: Vec<Shared>,
    /// How far the replay reaches.
    reached: Option<Position>,
    /// A read in flight, and the position it reads after.
    pub(super) reading: Option<(OpId, Option<Position>)>,
}

impl Entry {
    fn new(stream: StreamId, asked: Option<Position>) -> Self {
        Self {
            by_mark: asked.is_none() && matches!(stream, StreamId::Outbox(_)),
            stream,
            asked,
            said: asked.is_some(),
            from: None,
            recovered: None,
            unread: None,
            replay: Vec::new(),
            reached: None,
            reading: None,
        }
    }
}

impl Hub {
    /// A connection's start: its outbox, the broadcast feed if it follows it, and its rooms
    /// (entered already), each from its cursor's position.
    pub(super) fn start_connection(&mut self, session: SessionId, connect: &Connect) {
        let position = |stream: &Stream| connect.cursor.as_ref().and_then(|c| c.get(stream));
        let mut entries = vec![Entry::new(
            StreamId::Outbox(connect.user.clone()),
            position(&Stream::User),
        )];
        self.gain_interest(&StreamId::Outbox(connect.user.clone()));
        if connect.broadcast {
            self.gain_interest(&StreamId::Broadcast);
            self.slots.get_mut(session).expect("just made").broadcast = true;
            entries.push(Entry::new(StreamId::Broadcast, position(&Stream::All)));
        }
        for room in &connect.rooms {
            let since = position(&Stream::Room(room.clone()));
            entries.push(Entry::new(StreamId::Room(room.clone()), since));
        }
        self.begin(session, StartKind::Connect, entries);
    }

    /// A join's start (the room entered already), or a member's join again.
    pub(super) fn start_join(
        &mut self,
        session: SessionId,
        reference: Option<Ref>,
        room: RoomName,
        since: Option<Position>,
        member: bool,
    ) {
        let entries = if member {
            Vec::new()
        } else {
            vec![Entry::new(StreamId::Room(room.clone()), since)]
        };
        let kind = StartKind::Join {
            reference,
            room,
            member,
            since,
        };
        self.begin(session, kind, entries);
    }

    fn begin(&mut self, session: SessionId, kind: StartKind, entries: Vec<Entry>) {
        self.next_start += 1;
        let id = self.next_start;
        let count = entries.len();
        self.session_starts
            .entry(session)
            .or_default()
            .push_back(id);
        self.starts.insert(
            id,
            Start {
                session,
                kind,
                entries,
            },
        );
        for index in 0..count {
            self.advance_entry(id, index);
        }
        self.try_complete(id);
    }

    pub(super) fn entry_mut(&mut self, start: u64, index: usize) -> Option<&mut Entry> {
        self.starts.get_mut(&start)?.entries.get_mut(index)
    }

    /// Takes an entry on as far as it can go without the engine, or asks the engine.
    pub(super) fn advance_entry(&mut self, start: u64, index: usize) {
        let Some(entry) = self.starts.get(&start).and_then(|s| s.entries.get(index)) else {
            return;
        };
        if entry.reading.is_some() {
            return;
        }
        let stream = entry.stream.clone();
        let seen = self.feeds.get(&stream).and_then(|feed| feed.seen);
        // Until the entry reads, the feed's next move takes it on.
        self.parked
            .entry(stream.clone())
            .or_default()
            .insert((start, index));
        let after = match entry.reached {
            // The first step: the read mark, the asked position, or the head.
            None if entry.by_mark => None,
            // The head, once the feed knows it: one read for the feed, however many wait.
            None if entry.asked.is_none() && seen.is_none() => {
                let reading = self.feeds.get(&stream).is_some_and(|f| f.fill.is_some());
                if !reading {
                    self.fill(&stream);
                }
                return;
            }
            None if entry.asked.is_none() => {
                let entry = self.entry_mut(start, index).expect("seen above");
                entry.from = seen;
                entry.reached = seen;
                return self.try_complete(start);
            }
            None if entry.asked.is_some() && entry.asked == seen => {
                let entry = self.entry_mut(start, index).expect("seen above");
                entry.from = seen;
                entry.reached = seen;
                entry.recovered = entry.said.then_some(true);
                return self.try_complete(start);
            }
            None => entry.asked,
            Some(reached) if Some(reached) == seen => return self.try_complete(start),
            // Behind what the feed has delivered: read on.
            Some(reached)
                if seen.is_some_and(|s| s.epoch != reached.epoch || s.offset > reached.offset) =>
            {
                Some(reached)
            }
            // Ahead of the feed: it reads the gap (see `feed_from_read`), and this goes on once
            // it has caught up.
            Some(_) => return,
        };
        self.unpark(&stream, start, index);
        let op = self.send_read(stream, after, READ_MAX, Pending::Entry { start, index });
        self.entry_mut(start, index).expect("seen above").reading = Some((op, after));
    }

    fn unpark(&mut self, stream: &StreamId, start: u64, index: usize) {
        if let Some(parked) = self.parked.get_mut(stream) {
            parked.remove(&(start, index));
            if parked.is_empty() {
                self.parked.remove(stream);
            }
        }
    }

    /// A start leaves (answered, or its session gone): its entries are no longer parked, and
    /// its session's next start is the oldest.
    fn forget_start(&mut self, id: u64, start: &Start) {
        for (index, entry) in start.entries.iter().enumerate() {
            self.unpark(&entry.stream, id, index);
        }
        if let Some(ids) = self.session_starts.get_mut(&start.session) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.session_starts.remove(&start.session);
            }
        }
    }

    /// The session's oldest start, if it has one.
    fn oldest_start(&self, session: SessionId) -> Option<u64> {
        self.session_starts.get(&session)?.front().copied()
    }

    /// A read for an entry: its replay grows, then the feed learns from the read too.
    pub(super) fn entry_read(
        &mut self,
        op: OpId,
        start: u64,
        index: usize,
        stream: StreamId,
        view: View,
        records: Vec<Arc<Record>>,
    ) {
        let after = match self.entry_mut(start, index) {
            Some(entry) => entry.reading.take().and_then(|(_, after)| after),
            // The session went meanwhile: the read still tells the feed what it knows.
            None => None,
        };
        let replay: Vec<Shared> = records
            .iter()
            .map(|record| {
                let at = Position {
                    epoch: view.head.epoch,
                    offset: record.offset,
                };
                self.delivery_of(&stream, at, record)
            })
            .collect();
        let readable = records.iter().filter(|r| r.message.is_readable()).count() as u64;
        if let Some(entry) = self.entry_mut(start, index) {
            match entry.reached {
                None if entry.by_mark => {
                    // After the read mark, or after the oldest message kept if the marked
                    // ones are gone.
                    let offset = view.read.max(view.first.saturating_sub(1));
                    let mark = Position {
                        epoch: view.head.epoch,
                        offset: offset.min(view.head.offset),
                    };
                    entry.by_mark = false;
                    entry.asked = Some(mark);
                    // Counted as the replay is read.
                    entry.unread = Some(0);
                }
                None => {
                    let asked = entry.asked;
                    match asked.filter(|asked| view.covers(*asked)) {
                        Some(asked) => {
                            entry.from = Some(asked);
                            entry.recovered = entry.said.then_some(true);
                            entry.reached = Some(last(asked, &replay));
                            entry.replay = replay;
                            if let Some(unread) = &mut entry.unread {
                                *unread = readable;
                            }
                        }
                        None => {
                            entry.from = Some(view.head);
                            entry.recovered = entry.said.then_some(false);
                            entry.reached = Some(view.head);
                        }
                    }
                }
                Some(reached) if view.covers(reached) => {
                    entry.reached = Some(last(reached, &replay));
                    entry.replay.extend(replay);
                    if let Some(unread) = &mut entry.unread {
                        *unread += readable;
                    }
                }
                Some(_) => {
                    // History moved on under a replay in pieces: never a partial replay
                    // presented as whole.
                    entry.replay.clear();
                    if let Some(unread) = &mut entry.unread {
                        *unread = 0;
                    }
                    entry.from = Some(view.head);
                    entry.recovered = entry.said.then_some(false);
                    entry.reached = Some(view.head);
                }
            }
        }
        self.feed_from_read(&stream, op, view, after, &records);
        self.advance_entry(start, index);
    }

    /// Every entry parked on `stream` goes on: the feed moved. (Each parks again, or reads.)
    pub(super) fn starts_on(&mut self, stream: &StreamId) {
        let Some(waiting) = self.parked.remove(stream) else {
            return;
        };
        for (start, index) in waiting {
            self.advance_entry(start, index);
        }
    }

    /// Completes a start whose every entry has caught up with its feed, if it is its
    /// session's oldest; then the session's next.
    fn try_complete(&mut self, id: u64) {
        let Some(start) = self.starts.get(&id) else {
            return;
        };
        let session = start.session;
        if self.oldest_start(session) != Some(id) {
            return;
        }
        let caught_up = start.entries.iter().all(|entry| {
            entry.reading.is_none()
                && entry.reached.is_some()
                && entry.reached == self.feeds.get(&entry.stream).and_then(|feed| feed.seen)
        });
        if !caught_up {
            return;
        }
        let start = self.starts.remove(&id).expect("seen above");
        self.forget_start(id, &start);
        self.complete(start);
        if let Some(next) = self.oldest_start(session) {
            self.try_complete(next);
        }
    }

    /// Tells the session where it starts, gives it the replays, and makes it a receiver.
    fn complete(&mut self, start: Start) {
        let session = start.session;
        match start.kind {
            StartKind::Connect => {
                let streams = start
                    .entries
                    .iter()
                    .map(|entry| StreamStart {
                        stream: match &entry.stream {
                            StreamId::Room(room) => Stream::Room(room.clone()),
                            StreamId::Outbox(_) => Stream::User,
                            StreamId::Broadcast => Stream::All,
                        },
                        id: entry.from.expect("caught up"),
                        recovered: entry.recovered,
                        replayed: entry.replay.len() as u64,
                        unread: entry.unread,
                    })
                    .collect();
                let frame = ServerMessage::Streams { streams }.encode();
                self.send(session, Delivery::unstreamed(frame));
                for entry in start.entries {
                    self.replay(session, entry.replay);
                    self.receive(session, &entry.stream);
                }
            }
            StartKind::Join {
                reference,
                room,
                member,
                since,
            } => {
                let user = self.slots.get(session).map(|slot| slot.user.clone());
                let (members, count) = match user {
                    Some(user) => self.reply_presence(&room, &user),
                    None => (Some(Vec::new()), None),
                };
                let stream = StreamId::Room(room.clone());
                let (id, recovered, replay) = match start.entries.into_iter().next() {
                    Some(entry) => (entry.from, entry.recovered, entry.replay),
                    // Joined already: every message since is queued ahead of this reply.
                    None => {
                        let seen = self.feeds.get(&stream).and_then(|feed| feed.seen);
                        (seen, since.map(|_| true), Vec::new())
                    }
                };
                let replayed = replay.len() as u64;
                self.answer(session, reference.as_ref(), |reference| Reply {
                    room: Some(room),
                    members,
                    count,
                    id,
                    recovered,
                    replayed: recovered.map(|_| replayed),
                    ..Reply::to(reference)
                });
                self.replay(session, replay);
                if !member {
                    self.receive(session, &stream);
                }
            }
        }
    }

    /// The session receives `stream` from now on.
    fn receive(&mut self, session: SessionId, stream: &StreamId) {
        let Some(slot) = self.slots.get(session) else {
            return;
        };
        match stream {
            StreamId::Room(room) => {
                if !slot.rooms.contains_key(room) {
                    return; // it left meanwhile
                }
                let entry = self.rooms.get_mut(room).expect("entered rooms exist");
                let position = entry.add(session);
                let slot = self.slots.get_mut(session).expect("seen above");
                slot.rooms.insert(room.clone(), Some(position));
            }
            StreamId::Outbox(user) => {
                let sessions = self.users.entry(user.clone()).or_default();
                push(sessions, session);
            }
            StreamId::Broadcast => {
                let position = push(&mut self.all_followers, session);
                self.slots
                    .get_mut(session)
                    .expect("seen above")
                    .all_position = Some(position);
            }
        }
    }

    /// The session went: what it was starting on is forgotten.
    pub(super) fn cancel_starts(&mut self, session: SessionId) {
        let ids = self
            .session_starts
            .get(&session)
            .cloned()
            .unwrap_or_default();
        for id in ids {
            if let Some(start) = self.starts.remove(&id) {
                self.forget_start(id, &start);
            }
        }
    }

    /// The session left `room` before its join completed: the join is answered so.
    pub(super) fn cancel_join(&mut self, session: SessionId, room: &RoomName) {
        let ids = self
            .session_starts
            .get(&session)
            .cloned()
            .unwrap_or_default();
        let cancelled: Vec<u64> = ids
            .into_iter()
            .filter(|id| {
                self.starts.get(id).is_some_and(
                    |start| matches!(&start.kind, StartKind::Join { room: r, .. } if r == room),
                )
            })
            .collect();
        for id in cancelled {
            let start = self.starts.remove(&id).expect("listed");
            self.forget_start(id, &start);
            if let StartKind::Join { reference, .. } = start.kind {
                let message = format!("left room {room:?} before the join completed");
                self.queue_error(session, reference, ErrorCode::NotMember, message);
            }
        }
        if let Some(next) = self.oldest_start(session) {
            self.try_complete(next);
        }
    }
}

/// The position a replay reaches: its last message's, or `from` if it has none.
fn last(from: Position, replay: &[Shared]) -> Position {
    replay
        .last()
        .and_then(|delivery| delivery.stream.as_ref().map(|(_, at)| *at))
        .unwrap_or(from)
}
