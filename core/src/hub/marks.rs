//! Read marks and read receipts.
//!
//! `read {upto}` moves the user's mark in the engine (never back). Once the engine has moved
//! it, one read of the user's outbox, from the mark before, answers two questions: how many
//! messages are left unread after the mark (receipts are not counted: nobody reads them), and
//! who sent the direct messages the move has just marked read. Each of those senders gets one
//! `receipt` in their own outbox, with the reader's mark: every direct message the sender got
//! an id at or before it for is read. A receipt is stored like any outbox message, so it
//! reaches every device of the sender, and a sender who is offline gets it on their return.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use super::Hub;
use super::ops::{Pending, RETRY, Retry, Waiter};
use crate::cursor::Position;
use crate::delivery::{Delivery, SessionId};
use crate::engine::{Message, Operation, Record, StreamId, View};
use crate::envelope::{Ref, Reply, ServerMessage};
use crate::names::UserId;

/// A mark the engine moved, waiting for the read of the outbox after it.
#[derive(Debug)]
pub(super) struct Moved {
    /// The reader's session and request, to answer; `None` once answered.
    pub(super) answer: Option<(SessionId, Option<Ref>)>,
    pub(super) user: UserId,
    /// Where the read starts: the mark before the move (an offset of `read`'s epoch, or of
    /// an older one), or the oldest message kept if the outbox dropped those after it.
    pub(super) before: u64,
    /// The mark now.
    pub(super) read: Position,
}

impl Hub {
    /// `read` from a session: its user's outbox is read up to `upto`, on every device.
    pub(super) fn mark_read(
        &mut self,
        session: SessionId,
        reference: Option<&Ref>,
        upto: Position,
    ) {
        let Some(user) = self.slots.get(session).map(|slot| slot.user.clone()) else {
            return;
        };
        let op = self.op();
        let operation = Operation::MarkRead { op, user, upto };
        let reference = reference.cloned();
        self.send_operation(None, operation, op, Pending::Mark { session, reference });
    }

    /// The engine moved the mark (or kept it): the outbox is read after the mark before.
    pub(super) fn marked(&mut self, moved: Moved) {
        let after = Position {
            epoch: moved.read.epoch,
            offset: moved.before,
        };
        let stream = StreamId::Outbox(moved.user.clone());
        // The whole outbox fits in one read.
        let max = self.config.outbox_history.max_messages.max(1);
        self.send_read(stream, Some(after), max, Pending::Moved(moved));
    }

    /// The outbox after the mark before: the reader is answered, the user's other sessions
    /// told, and the senders of what was just read get their receipts.
    pub(super) fn marked_read(
        &mut self,
        now: Instant,
        mut moved: Moved,
        view: View,
        records: &[Arc<Record>],
    ) {
        let read = moved.read;
        let after = Position {
            epoch: read.epoch,
            offset: moved.before,
        };
        let same_epoch = view.head.epoch == read.epoch;
        let oldest = view.first.saturating_sub(1);
        if same_epoch && !view.covers(after) && oldest > after.offset {
            // The messages after the mark before are gone (dropped by the outbox's bounds
            // before anyone read them): read from the oldest kept. It only moves forward.
            moved.before = oldest;
            return self.marked(moved);
        }
        let unread = if !same_epoch {
            // The outbox started afresh since: every message it keeps is unread.
            view.head.offset - view.first.saturating_sub(1).min(view.head.offset)
        } else if view.covers(after) {
            // Anything past what one read returns (never more than the outbox keeps) counts.
            let reached = records.last().map_or(after.offset, |r| r.offset);
            let beyond = view.head.offset.saturating_sub(reached.max(read.offset));
            let readable = records
                .iter()
                .filter(|r| r.offset > read.offset && r.message.is_readable())
                .count() as u64;
            readable + beyond
        } else {
            view.head.offset.saturating_sub(read.offset)
        };
        if let Some((session, reference)) = moved.answer.take() {
            self.tell_mark(session, reference, &moved.user, read, unread);
        }
        if !same_epoch || !view.covers(after) {
            return; // what the mark covered is gone: nobody to tell
        }
        let senders: BTreeSet<UserId> = records
            .iter()
            .filter(|r| r.offset > after.offset && r.offset <= read.offset)
            .filter_map(|r| match &r.message {
                Message::Direct { from, .. } if *from != moved.user => Some(from.clone()),
                _ => None,
            })
            .collect();
        for sender in senders {
            let receipt = Message::Receipt {
                from: moved.user.clone(),
                upto: read,
            };
            self.store_in_outbox(now, Waiter::Receipt, None, sender, receipt);
        }
    }

    /// The reader's answer, and a `read` to the user's other sessions.
    fn tell_mark(
        &mut self,
        session: SessionId,
        reference: Option<Ref>,
        user: &UserId,
        read: Position,
        unread: u64,
    ) {
        self.answer(session, reference.as_ref(), |reference| Reply {
            id: Some(read),
            unread: Some(unread),
            ..Reply::to(reference)
        });
        if let Some(sessions) = self.receivers(&StreamId::Outbox(user.clone())) {
            let frame = ServerMessage::Read { upto: read, unread }.encode();
            let except = Some(session).filter(|s| sessions.contains(s));
            self.fan_out(&sessions, except, Delivery::unstreamed(frame));
        }
    }

    /// The read after a moved mark failed: the reader is answered now, counting every message
    /// after the mark, and the receipts are read for again a little later.
    pub(super) fn marked_unread(&mut self, now: Instant, mut moved: Moved) {
        if let Some((session, reference)) = moved.answer.take() {
            let stream = StreamId::Outbox(moved.user.clone());
            let head = self.feeds.get(&stream).and_then(|feed| feed.seen);
            let unread = head
                .filter(|head| head.epoch == moved.read.epoch)
                .map_or(0, |head| head.offset.saturating_sub(moved.read.offset));
            self.tell_mark(session, reference, &moved.user, moved.read, unread);
        }
        let retry = Retry::Receipts {
            user: moved.user,
            before: moved.before,
            read: moved.read,
        };
        self.retries.insert((now + RETRY, retry));
    }
}
