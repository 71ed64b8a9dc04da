//! The hub's side of the engine exchange: operations sent, what waits on each, and the
//! engine's events dispatched to it.

use std::time::{Duration, Instant};

use super::marks::Moved;
use super::{Hub, HubError, HubEvent, Published, Ticket};
use crate::cursor::Position;
use crate::delivery::SessionId;
use crate::engine::{EngineEvent, Fault, OpId, Operation, Record, Retention, StreamId};
use crate::envelope::{ErrorCode, Ref, Reply};
use crate::names::{RoomName, UserId};

/// How long an operation the engine could not take waits before it is sent again.
pub(super) const RETRY: Duration = Duration::from_millis(100);

/// What waits on an operation.
#[derive(Debug)]
pub(super) enum Pending {
    /// An append, answered to its waiter once stored (and, when the hub follows its stream,
    /// once delivered here).
    Append { stream: StreamId, waiter: Waiter },
    /// A read for a session starting on a stream: entry `index` of start `start`.
    Entry { start: u64, index: usize },
    /// A read that fills a gap of a feed.
    Fill { stream: StreamId },
    /// The heads of the feeds, checked against what they delivered.
    Tops,
    /// A session's `read`.
    Mark {
        session: SessionId,
        reference: Option<Ref>,
    },
    /// The outbox after a mark the engine moved: the unread count and the receipts.
    Moved(Moved),
    /// A server-side read ([`Hub::read_stream`](super::Hub::read_stream)).
    Api(Ticket),
}

/// Who waits for an append.
#[derive(Debug)]
pub(super) enum Waiter {
    /// A server-side command, on this stream.
    Api(Ticket, StreamId),
    /// A session's `publish`.
    Publish {
        session: SessionId,
        reference: Option<Ref>,
        room: RoomName,
    },
    /// A session's `direct`.
    Direct {
        session: SessionId,
        reference: Option<Ref>,
        to: UserId,
        /// The engine found a session of `to` on another node.
        online: bool,
    },
    /// A read receipt: nobody to answer; one the engine refuses is counted as lost.
    Receipt,
}

/// What is sent again once its time comes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Retry {
    /// A start's read.
    Entry { start: u64, index: usize },
    /// A feed's fill.
    Fill(StreamId),
    /// The read for the receipts of a mark the engine moved.
    Receipts {
        user: UserId,
        before: u64,
        read: Position,
    },
}

impl Hub {
    pub(super) fn op(&mut self) -> OpId {
        self.next_op += 1;
        OpId(self.next_op)
    }

    /// Queues an operation for the engine, with what waits on it.
    pub(super) fn send_operation(
        &mut self,
        now: Option<Instant>,
        operation: Operation,
        op: OpId,
        pending: Pending,
    ) {
        self.pending.insert(op, pending);
        self.operations.push_back(operation);
        if let (None, Some(now)) = (self.next_expire, now) {
            self.next_expire = Some(now + self.config.expire_every);
        }
    }

    /// Appends a record for `waiter`, or answers it at once that the engine cannot take it.
    pub(super) fn append(
        &mut self,
        now: Instant,
        stream: StreamId,
        record: Record,
        retention: Retention,
        waiter: Waiter,
    ) {
        if self.link_down {
            let why = "the engine is unreachable".to_owned();
            return self.release(waiter, Err(HubError::Unavailable(why)));
        }
        if self.pending.len() >= self.config.max_pending {
            let why = format!(
                "{} operations wait for the engine already",
                self.config.max_pending
            );
            return self.release(waiter, Err(HubError::Unavailable(why)));
        }
        let op = self.op();
        let mut record = record;
        if let Some(origin) = &mut record.origin {
            origin.op = op;
        }
        let operation = Operation::Append {
            op,
            stream: stream.clone(),
            record,
            retention,
        };
        self.send_operation(Some(now), operation, op, Pending::Append { stream, waiter });
    }

    /// Asks for a stream's view and its records after `after`.
    pub(super) fn send_read(
        &mut self,
        stream: StreamId,
        after: Option<Position>,
        max: usize,
        pending: Pending,
    ) -> OpId {
        let op = self.op();
        let operation = Operation::Read {
            op,
            stream,
            after,
            max,
        };
        self.send_operation(None, operation, op, pending);
        op
    }

    /// An engine's event, to what waits on it.
    pub(super) fn engine_event(&mut self, now: Instant, event: EngineEvent) {
        match event {
            EngineEvent::Live { stream, at, record } => self.live(stream, at, record),
            EngineEvent::Appended { op, at, online } => {
                if let Some(Pending::Append { stream, mut waiter }) = self.pending.remove(&op) {
                    if let Waiter::Direct {
                        online: elsewhere, ..
                    } = &mut waiter
                    {
                        *elsewhere = online;
                    }
                    self.appended(op, stream, at, waiter);
                }
            }
            EngineEvent::Read {
                op,
                stream,
                view,
                records,
            } => match self.pending.remove(&op) {
                Some(Pending::Fill { .. }) => self.filled(op, stream, view, records),
                Some(Pending::Entry { start, index }) => {
                    self.entry_read(op, start, index, stream, view, records);
                }
                Some(Pending::Moved(moved)) => self.marked_read(now, moved, view, &records),
                Some(Pending::Api(ticket)) => {
                    let result = Ok(super::StreamPage { view, records });
                    self.events.push_back(HubEvent::Read { ticket, result });
                }
                _ => {}
            },
            EngineEvent::Failed { op, fault } => match self.pending.remove(&op) {
                Some(Pending::Append { waiter, .. }) => {
                    let error = match fault {
                        Fault::LimitReached(what) => HubError::LimitReached(what),
                        Fault::Unavailable(why) => HubError::Unavailable(why),
                    };
                    self.release(waiter, Err(error));
                }
                // A read the engine could not take: again, a little later.
                Some(Pending::Fill { stream }) => {
                    if let Some(feed) = self.feeds.get_mut(&stream) {
                        feed.fill = None;
                        self.retries.insert((now + RETRY, Retry::Fill(stream)));
                    }
                }
                Some(Pending::Entry { start, index }) => {
                    if let Some(entry) = self.entry_mut(start, index) {
                        entry.reading = None;
                        self.retries
                            .insert((now + RETRY, Retry::Entry { start, index }));
                    }
                }
                // The next check asks again.
                Some(Pending::Tops) => {}
                Some(Pending::Mark { session, reference }) => {
                    let error = match fault {
                        Fault::LimitReached(what) => HubError::LimitReached(what),
                        Fault::Unavailable(why) => HubError::Unavailable(why),
                    };
                    self.refuse(session, reference, error);
                }
                Some(Pending::Moved(moved)) => self.marked_unread(now, moved),
                Some(Pending::Api(ticket)) => {
                    let result = Err(match fault {
                        Fault::LimitReached(what) => HubError::LimitReached(what),
                        Fault::Unavailable(why) => HubError::Unavailable(why),
                    });
                    self.events.push_back(HubEvent::Read { ticket, result });
                }
                None => {}
            },
            EngineEvent::Marked {
                op,
                user,
                before,
                read,
            } => {
                if let Some(Pending::Mark { session, reference }) = self.pending.remove(&op) {
                    self.marked(Moved {
                        answer: Some((session, reference)),
                        user,
                        before,
                        read,
                    });
                }
            }
            EngineEvent::Tops { op, heads } => {
                if let Some(Pending::Tops) = self.pending.remove(&op) {
                    self.tops(heads);
                }
            }
            EngineEvent::Presence {
                room,
                node,
                user,
                present,
            } => self.remote_presence(now, room, node, user, present),
            EngineEvent::Typing {
                room,
                node,
                user,
                typing,
            } => self.remote_typing(room, node, user, typing),
            EngineEvent::PresenceSnapshot { room, members } => {
                self.presence_snapshot(now, room, members);
            }
            EngineEvent::LinkDown => self.link_down = true,
            EngineEvent::LinkUp => {
                self.link_down = false;
                self.link_up();
            }
        }
    }

    /// Asks the engine the heads of the streams followed here and delivered from (a feed
    /// filling a gap reads already). Returns whether anything is followed: while nothing is,
    /// the checks stop until the next connection.
    pub(super) fn check_heads(&mut self) -> bool {
        if self.feeds.is_empty() {
            return false;
        }
        let asked = self
            .pending
            .values()
            .any(|pending| matches!(pending, Pending::Tops));
        let streams: Vec<StreamId> = self
            .feeds
            .iter()
            .filter(|(_, feed)| feed.seen.is_some() && feed.fill.is_none())
            .map(|(stream, _)| stream.clone())
            .collect();
        if !asked && !streams.is_empty() {
            let op = self.op();
            let operation = Operation::Tops { op, streams };
            self.send_operation(None, operation, op, Pending::Tops);
        }
        true
    }

    /// The heads the engine holds: a feed behind its stream's head, or on another epoch, has
    /// missed a `Live` (lost, or still on its way): a read fills it, or tells its receivers.
    fn tops(&mut self, heads: Vec<(StreamId, Position)>) {
        for (stream, head) in heads {
            let behind = self.feeds.get(&stream).is_some_and(|feed| {
                let stale = feed.past_epochs.contains(&head.epoch);
                feed.seen.is_some_and(|seen| {
                    !stale && (seen.epoch != head.epoch || seen.offset < head.offset)
                })
            });
            if behind {
                self.fill(&stream);
            }
        }
    }

    /// Sends again what is due.
    pub(super) fn retry_due(&mut self, now: Instant) {
        while let Some((at, retry)) = self.retries.first().cloned() {
            if at > now {
                break;
            }
            self.retries.pop_first();
            match retry {
                Retry::Fill(stream) => self.fill(&stream),
                Retry::Entry { start, index } => self.advance_entry(start, index),
                Retry::Receipts { user, before, read } => self.marked(Moved {
                    answer: None,
                    user,
                    before,
                    read,
                }),
            }
        }
    }

    /// An append of this hub came back live at `at`: stored, and delivered here up to it. Its
    /// waiter is answered now, before the stream's next message, whether `Appended` came yet
    /// or not (a publisher learns its own message's position from the answer alone).
    pub(super) fn appended_live(&mut self, op: OpId, at: Position) {
        match self.pending.remove(&op) {
            // A direct to a user with no session here waits for `Appended`, which says
            // whether one was on another node.
            Some(Pending::Append {
                stream,
                waiter: waiter @ Waiter::Direct { .. },
            }) if !self.has_sessions(&stream) => {
                self.pending.insert(op, Pending::Append { stream, waiter });
            }
            Some(Pending::Append { waiter, .. }) => self.release(waiter, Ok(at)),
            Some(other) => {
                self.pending.insert(op, other);
            }
            None => {}
        }
    }

    /// Whether the user of an outbox has a session here.
    fn has_sessions(&self, stream: &StreamId) -> bool {
        match stream {
            StreamId::Outbox(user) => self.users.get(user).is_some_and(|s| !s.is_empty()),
            _ => false,
        }
    }

    /// An append is stored at `at`: its waiter is answered once this hub has delivered up to
    /// it, if it follows the stream (so the appending session reads every message before its
    /// own message's id), else at once.
    fn appended(&mut self, op: OpId, stream: StreamId, at: Position, waiter: Waiter) {
        if let Some(feed) = self.feeds.get_mut(&stream)
            && !feed.answers(at, op)
        {
            feed.replies.push((at, op, waiter));
            return;
        }
        self.release(waiter, Ok(at));
    }

    /// Answers an append's waiter.
    pub(super) fn release(&mut self, waiter: Waiter, result: Result<Position, HubError>) {
        match waiter {
            Waiter::Api(ticket, stream) => {
                let sessions = self.receivers(&stream).map_or(0, |members| members.len());
                let result = result.map(|id| Published { id, sessions });
                self.events.push_back(HubEvent::Done { ticket, result });
            }
            Waiter::Publish {
                session,
                reference,
                room,
            } => match result {
                Ok(id) => self.answer(session, reference.as_ref(), |reference| Reply {
                    room: Some(room),
                    id: Some(id),
                    ..Reply::to(reference)
                }),
                Err(error) => self.refuse(session, reference, error),
            },
            Waiter::Direct {
                session,
                reference,
                to,
                online,
            } => match result {
                Ok(id) => {
                    let delivered = online || self.has_sessions(&StreamId::Outbox(to));
                    self.answer(session, reference.as_ref(), |reference| Reply {
                        id: Some(id),
                        delivered: Some(delivered),
                        ..Reply::to(reference)
                    });
                }
                Err(error) => self.refuse(session, reference, error),
            },
            Waiter::Receipt => {
                if result.is_err() {
                    self.receipts_lost += 1;
                }
            }
        }
    }

    fn refuse(&mut self, session: SessionId, reference: Option<Ref>, error: HubError) {
        let (code, message) = match error {
            HubError::LimitReached(what) => (ErrorCode::LimitReached, what),
            HubError::Unauthorized(why) => (ErrorCode::Unauthorized, why),
            HubError::Unavailable(why) => (ErrorCode::Unavailable, why),
        };
        self.queue_error(session, reference, code, message);
    }
}
