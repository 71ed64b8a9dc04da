//! The streams the hub follows: each offset delivered once, in order, to the sessions receiving
//! the stream. A `Live` that repeats an offset is dropped; one that jumps ahead is held while a
//! read fills the gap; a read that reaches past what was delivered delivers the rest; an epoch
//! that changed, or a gap the history no longer covers, tells the receivers `recovered: false`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::ops::{Pending, Waiter};
use super::{Hub, Members};
use crate::cursor::{Position, Stream};
use crate::delivery::Delivery;
use crate::engine::{OpId, Operation, Record, StreamId, View};
use crate::envelope::{ServerMessage, StreamStart};

/// Lives held while a gap is filled, at most: past it the newest are dropped, and the fill's
/// next read brings them.
const MAX_HELD: usize = 1024;

/// Records asked for in one read.
pub(super) const READ_MAX: usize = 1000;

/// A stream the hub follows.
#[derive(Debug, Default)]
pub(super) struct Feed {
    /// Sessions here that start on the stream or receive it.
    pub(super) interest: u32,
    /// The last position delivered; `None` until the engine's first view.
    pub(super) seen: Option<Position>,
    /// A read in flight that fills a gap.
    pub(super) fill: Option<OpId>,
    /// Lives past a gap, by offset, held until the gap is filled.
    pub(super) held: BTreeMap<u64, (Position, Arc<Record>)>,
    /// Answers that wait until the feed has delivered up to their message (a publish's reply
    /// goes out after every message before it), with their append's number.
    pub(super) replies: Vec<(Position, OpId, Waiter)>,
    /// The epochs the feed was reset from, newest last (a few): an answer in one of them is
    /// late news of a message the reset already told about, and goes at once.
    pub(super) past_epochs: Vec<u64>,
    /// The newest read whose view the feed went by (at first, the last operation sent before
    /// the feed was made). The engine takes operations in order, so an answer to an older one
    /// can only be staler: its view is not gone by.
    pub(super) view_op: OpId,
}

/// Past epochs a feed remembers.
const PAST_EPOCHS: usize = 4;

impl Feed {
    /// Whether an answer for the message appended by `append` at `at` may go now: the feed
    /// has delivered up to it, or it is of an epoch the feed was reset from, or of one the
    /// feed went past without ever being in it (the stream started afresh twice): the engine
    /// took the append before the read whose view of another epoch the feed went by, and an
    /// epoch never comes back. One of an epoch the feed has not reached yet waits for the
    /// reset that brings it there.
    pub(super) fn answers(&self, at: Position, append: OpId) -> bool {
        match self.seen {
            None => false,
            Some(seen) if seen.epoch == at.epoch => at.offset <= seen.offset,
            Some(_) => self.past_epochs.contains(&at.epoch) || append < self.view_op,
        }
    }
}

impl Hub {
    /// A session starts following `stream`: the hub follows it too, if it did not.
    pub(super) fn gain_interest(&mut self, stream: &StreamId) {
        if !self.feeds.contains_key(stream) {
            let retention = self.retention(stream);
            self.operations.push_back(Operation::Follow {
                stream: stream.clone(),
                retention,
            });
            let feed = Feed {
                view_op: OpId(self.next_op),
                ..Feed::default()
            };
            self.feeds.insert(stream.clone(), feed);
        }
        self.feeds.get_mut(stream).expect("made above").interest += 1;
    }

    /// A session stops following `stream`: the last one to stop ends the hub's following.
    pub(super) fn lose_interest(&mut self, stream: &StreamId) {
        let Some(feed) = self.feeds.get_mut(stream) else {
            return;
        };
        feed.interest = feed.interest.saturating_sub(1);
        if feed.interest > 0 {
            return;
        }
        let feed = self.feeds.remove(stream).expect("just seen");
        self.operations
            .push_back(Operation::Unfollow(stream.clone()));
        // Answers that waited for the feed go once the input that let it go has had its own
        // answer (a `leave`'s reply before its publishes' ones: their ids are not positions
        // the leaver reached).
        self.owed
            .extend(feed.replies.into_iter().map(|(at, _, waiter)| (at, waiter)));
    }

    /// Sends the answers a feed let go of owed.
    pub(super) fn release_owed(&mut self) {
        for (at, waiter) in std::mem::take(&mut self.owed) {
            self.release(waiter, Ok(at));
        }
    }

    /// The sessions receiving `stream` now.
    pub(super) fn receivers(&self, stream: &StreamId) -> Option<Members> {
        match stream {
            StreamId::Room(room) => self.rooms.get(room).map(|room| Arc::clone(&room.members)),
            StreamId::Outbox(user) => self.users.get(user).cloned(),
            StreamId::Broadcast => Some(Arc::clone(&self.all_followers)),
        }
    }

    /// A record appended to a followed stream.
    pub(super) fn live(&mut self, stream: StreamId, at: Position, record: Arc<Record>) {
        let Some(feed) = self.feeds.get_mut(&stream) else {
            return; // no longer followed
        };
        match feed.seen {
            Some(seen) if seen.epoch == at.epoch && at.offset <= seen.offset => {}
            Some(seen)
                if seen.epoch == at.epoch
                    && at.offset == seen.offset + 1
                    && feed.fill.is_none() =>
            {
                self.deliver_record(&stream, at, &record);
                self.feed_advanced(&stream);
            }
            _ => {
                // A jump, another epoch, or no view yet: held for the read that explains it.
                if feed.held.len() < MAX_HELD {
                    feed.held.insert(at.offset, (at, record));
                }
                if feed.seen.is_some() {
                    self.fill(&stream);
                }
            }
        }
    }

    /// Asks for the records after what the feed has delivered, unless a read does already.
    pub(super) fn fill(&mut self, stream: &StreamId) {
        let Some(feed) = self.feeds.get(stream) else {
            return;
        };
        if feed.fill.is_some() {
            return;
        }
        let after = feed.seen;
        let op = self.send_read(
            stream.clone(),
            after,
            READ_MAX,
            Pending::Fill {
                stream: stream.clone(),
            },
        );
        self.feeds.get_mut(stream).expect("checked").fill = Some(op);
    }

    /// A fill's answer.
    pub(super) fn filled(
        &mut self,
        op: OpId,
        stream: StreamId,
        view: View,
        records: Vec<Arc<Record>>,
    ) {
        let Some(feed) = self.feeds.get_mut(&stream) else {
            return;
        };
        if feed.fill != Some(op) {
            return; // a fill of a feed that was let go and made again
        }
        feed.fill = None;
        let after = feed.seen;
        self.feed_from_read(&stream, op, view, after, &records);
    }

    /// What a read says of the feed: its first view; an epoch that changed or a gap history no
    /// longer covers (the receivers are told); records past what the feed has delivered
    /// (delivered now). Then the held Lives, and what waited on the feed.
    pub(super) fn feed_from_read(
        &mut self,
        stream: &StreamId,
        op: OpId,
        view: View,
        after: Option<Position>,
        records: &[Arc<Record>],
    ) {
        let Some(feed) = self.feeds.get_mut(stream) else {
            return;
        };
        let fresh = op > feed.view_op;
        if fresh {
            feed.view_op = op;
        }
        match feed.seen {
            None if fresh => feed.seen = Some(view.head),
            // A stale first view: a fresh one is asked for.
            None => return self.fill(stream),
            // A view older than what the feed delivered (answered before Lives the feed has
            // had since, or of an epoch it was reset from): nothing to learn from it.
            Some(seen)
                if !fresh
                    || (view.head.epoch == seen.epoch && view.head.offset < seen.offset)
                    || feed.past_epochs.contains(&view.head.epoch) => {}
            // History moved on past what was delivered, or the stream started afresh (or lost
            // what it had): what the receivers missed cannot be given them.
            Some(seen) if !view.covers(seen) => self.reset(stream, view.head),
            Some(seen) => {
                // Records that follow on from what was delivered are delivered now.
                let contiguous = after
                    .is_some_and(|after| after.epoch == seen.epoch && after.offset <= seen.offset);
                if contiguous {
                    for record in records.iter().filter(|r| r.offset > seen.offset) {
                        let at = Position {
                            epoch: seen.epoch,
                            offset: record.offset,
                        };
                        self.deliver_record(stream, at, record);
                    }
                }
                // Still behind what the engine holds: its Lives may be on their way, or lost.
                let seen = self.feeds[stream].seen.expect("set");
                if seen.offset < view.head.offset {
                    self.fill(stream);
                }
            }
        }
        self.feed_advanced(stream);
    }

    /// The feed moved (or may have): held Lives that now follow on are delivered, answers
    /// waiting for it go, starts waiting for it go on, and a gap still open is filled.
    pub(super) fn feed_advanced(&mut self, stream: &StreamId) {
        loop {
            let Some(feed) = self.feeds.get_mut(stream) else {
                return;
            };
            let Some(seen) = feed.seen else { return };
            // Held Lives at or before what was delivered, or of an old epoch, are done with.
            feed.held
                .retain(|offset, (at, _)| at.epoch == seen.epoch && *offset > seen.offset);
            let next = feed.held.first_key_value().map(|(_, (at, _))| *at);
            match next {
                Some(at)
                    if at.epoch == seen.epoch
                        && at.offset == seen.offset + 1
                        && feed.fill.is_none() =>
                {
                    let (_, record) = feed.held.remove(&at.offset).expect("just seen");
                    self.deliver_record(stream, at, &record);
                }
                _ => break,
            }
        }
        self.release_replies(stream);
        let gap = self
            .feeds
            .get(stream)
            .is_some_and(|feed| !feed.held.is_empty());
        self.starts_on(stream);
        if gap {
            self.fill(stream);
        }
    }

    /// Delivers one record to the stream's receivers (but, in a room, the session that
    /// published it here, while its reply is to come: exclude-sender), and moves the feed past
    /// it.
    pub(super) fn deliver_record(&mut self, stream: &StreamId, at: Position, record: &Record) {
        let delivery = self.delivery_of(stream, at, record);
        // A publisher answered already learns of its message no other way: one told
        // `unavailable` (a link failed with the append in flight, and it was stored after all)
        // gets it like everyone else, or it would have a gap where its own message is.
        let except = record
            .origin
            .filter(|origin| origin.node == self.config.node)
            .filter(|_| matches!(stream, StreamId::Room(_)))
            .filter(|origin| self.answer_to_come(stream, origin.op))
            .map(|origin| origin.session);
        if let Some(members) = self.receivers(stream) {
            let except = except.filter(|session| members.contains(session));
            self.fan_out(&members, except, delivery);
        }
        if let Some(feed) = self.feeds.get_mut(stream) {
            feed.seen = Some(at);
        }
        // A publisher's reply goes right after its message has gone to the others, before the
        // next one: its id is where the publisher then is.
        if let Some(origin) = record.origin.filter(|o| o.node == self.config.node) {
            self.appended_live(origin.op, at);
        }
        self.release_replies(stream);
    }

    /// Whether the append `op` of this hub is still to be answered (by `Appended`, its `Live`,
    /// or its turn in the feed).
    fn answer_to_come(&self, stream: &StreamId, op: OpId) -> bool {
        matches!(self.pending.get(&op), Some(Pending::Append { .. }))
            || self
                .feeds
                .get(stream)
                .is_some_and(|feed| feed.replies.iter().any(|(_, waiting, _)| *waiting == op))
    }

    /// The answers the feed has now reached go.
    fn release_replies(&mut self, stream: &StreamId) {
        let Some(feed) = self.feeds.get_mut(stream) else {
            return;
        };
        if feed.replies.is_empty() {
            return;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut feed.replies)
            .into_iter()
            .partition(|(at, append, _)| feed.answers(*at, *append));
        feed.replies = waiting;
        for (at, _, waiter) in ready {
            self.release(waiter, Ok(at));
        }
    }

    /// What the feed delivered can no longer be followed on from: the receivers are told the
    /// stream resumes at `head`, `recovered: false`, and the feed goes on from there.
    pub(super) fn reset(&mut self, stream: &StreamId, head: Position) {
        let Some(feed) = self.feeds.get_mut(stream) else {
            return;
        };
        if let Some(old) = feed.seen.map(|seen| seen.epoch)
            && old != head.epoch
        {
            feed.past_epochs.retain(|epoch| *epoch != old);
            if feed.past_epochs.len() == PAST_EPOCHS {
                feed.past_epochs.remove(0);
            }
            feed.past_epochs.push(old);
        }
        feed.seen = Some(head);
        let start = StreamStart {
            stream: match stream {
                StreamId::Room(room) => Stream::Room(room.clone()),
                StreamId::Outbox(_) => Stream::User,
                StreamId::Broadcast => Stream::All,
            },
            id: head,
            recovered: Some(false),
            replayed: 0,
            unread: None,
        };
        let frame = ServerMessage::Streams {
            streams: vec![start],
        }
        .encode();
        if let Some(members) = self.receivers(stream) {
            self.fan_out(&members, None, Delivery::unstreamed(frame));
        }
        // The caller then advances the feed: answers the reset covers go, with their ids (a
        // client does not move back to them); one past the new head waits for the messages
        // before it.
    }

    /// The engine's link is back: every feed reads what it may have missed.
    pub(super) fn link_up(&mut self) {
        let streams: Vec<StreamId> = self.feeds.keys().cloned().collect();
        for stream in streams {
            if self.feeds[&stream].seen.is_some() {
                self.fill(&stream);
            }
        }
    }
}
