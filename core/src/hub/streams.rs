//! Streams beyond rooms: user outboxes (direct messages, notifications) and the broadcast feed;
//! where a new connection resumes each stream; and the ageing out of history.

use std::time::Instant;

use std::sync::Arc;

use super::log::{Log, Recovery};
use super::{Connect, Hub, HubError, Published, Refusal};
use crate::cursor::{Position, Stream};
use crate::delivery::{Delivery, SessionId, Shared};
use crate::envelope::{ErrorCode, Payload, Ref, Reply, ServerMessage, StreamStart};
use crate::names::{RoomName, UserId};

/// A stream, as the expiry timers name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum StreamKey {
    Room(RoomName),
    User(UserId),
    All,
}

impl Hub {
    /// `direct` from a session: stored in the recipient's outbox, queued for their sessions.
    pub(super) fn direct(
        &mut self,
        now: Instant,
        session: SessionId,
        reference: Option<&Ref>,
        to: UserId,
        data: Payload,
    ) -> Result<(), Refusal> {
        let from = self
            .slots
            .get(session)
            .expect("checked by the caller")
            .user
            .clone();
        let published = self
            .store_in_outbox(now, to, |id| ServerMessage::Direct { id, from, data })
            .map_err(|HubError::LimitReached(what)| (ErrorCode::LimitReached, what))?;
        self.answer(session, reference, |reference| Reply {
            id: Some(published.id),
            delivered: Some(published.sessions > 0),
            ..Reply::to(reference)
        });
        Ok(())
    }

    /// Stores a message in `user`'s outbox and queues it for each of their live sessions.
    pub(super) fn store_in_outbox(
        &mut self,
        now: Instant,
        user: UserId,
        message: impl FnOnce(Position) -> ServerMessage,
    ) -> Result<Published, HubError> {
        let unknown = !self.users.contains_key(&user);
        if unknown && self.offline_users >= self.config.max_offline_users {
            return Err(HubError::LimitReached(format!(
                "at most {} offline users",
                self.config.max_offline_users
            )));
        }
        if unknown {
            self.offline_users += 1;
        }
        let entry = self.user_entry(now, &user);
        let id = entry.outbox.next_position();
        let delivery = Delivery::streamed(message(id).encode(), Stream::User, id);
        let was_empty = entry.outbox.is_empty();
        entry.outbox.append(now, delivery.clone(), None);
        let online = !entry.sessions.is_empty();
        if online {
            entry.delivered = id.offset;
        }
        let sessions = Arc::clone(&entry.sessions);
        let kept = !entry.outbox.is_empty();
        if !online && !kept {
            // An outbox that keeps nothing (a history of 0 messages): the user is forgotten
            // like one that left with an empty outbox.
            self.forget_later(now, &user);
        } else if was_empty {
            self.schedule_expiry(now, StreamKey::User(user));
        }
        let queued = self.fan_out(&sessions, None, delivery);
        Ok(Published {
            id,
            sessions: queued,
        })
    }

    pub(super) fn broadcast_message(
        &mut self,
        now: Instant,
        event: Option<smol_str::SmolStr>,
        data: Payload,
    ) -> Published {
        let id = self.all.next_position();
        let frame = ServerMessage::Broadcast { id, event, data }.encode();
        let delivery = Delivery::streamed(frame, Stream::All, id);
        let was_empty = self.all.is_empty();
        self.all.append(now, delivery.clone(), None);
        if was_empty {
            self.schedule_expiry(now, StreamKey::All);
        }
        let followers = Arc::clone(&self.all_followers);
        let sessions = self.fan_out(&followers, None, delivery);
        Published { id, sessions }
    }

    /// A new connection's `streams` message, then each stream's messages after its start.
    pub(super) fn start_streams(&mut self, session: SessionId, connect: &Connect) {
        let cursor = connect.cursor.as_ref();
        let position = |stream: &Stream| cursor.and_then(|c| c.get(stream));
        let mut starts = Vec::new();
        let mut replay: Vec<Shared> = Vec::new();

        // The user's outbox: from the cursor if it still covers the gap, else from the first
        // message no session has received.
        let user = self
            .users
            .get_mut(&connect.user)
            .expect("connected users exist");
        let (id, recovered) = match position(&Stream::User).map(|p| (p, user.outbox.since(p))) {
            Some((since, Recovery::Recovered(_))) => (since, Some(true)),
            Some((_, Recovery::Lost)) => (undelivered(&user.outbox, user.delivered), Some(false)),
            None => (undelivered(&user.outbox, user.delivered), None),
        };
        let before = replay.len();
        replay.extend(deliveries(user.outbox.since(id)));
        user.delivered = user.outbox.head().offset;
        starts.push(StreamStart {
            stream: Stream::User,
            id,
            recovered,
            replayed: (replay.len() - before) as u64,
        });

        if connect.broadcast {
            let (start, entries) = resume(&self.all, position(&Stream::All));
            let before = replay.len();
            replay.extend(entries);
            starts.push(StreamStart {
                replayed: (replay.len() - before) as u64,
                ..start.into_start(Stream::All)
            });
        }
        for room in &connect.rooms {
            let stream = Stream::Room(room.clone());
            let since = position(&stream);
            let (start, entries) = resume(self.room_log(room), since);
            let before = replay.len();
            replay.extend(entries);
            starts.push(StreamStart {
                replayed: (replay.len() - before) as u64,
                ..start.into_start(stream)
            });
        }
        let frame = ServerMessage::Streams { streams: starts }.encode();
        self.send(session, Delivery::unstreamed(frame));
        self.replay(session, replay);
    }

    /// Schedules the ageing out of a stream that just got its first message.
    pub(super) fn schedule_expiry(&mut self, _now: Instant, key: StreamKey) {
        let log = match &key {
            StreamKey::Room(room) => self.room_logs.get(room),
            StreamKey::User(user) => self.users.get(user).map(|u| &u.outbox),
            StreamKey::All => Some(&self.all),
        };
        if let Some(at) = log.and_then(Log::expiry) {
            self.expiries.insert((at, key));
        }
    }

    /// Ages out history due by `now`; forgets streams nobody uses any more.
    pub(super) fn expire_history(&mut self, now: Instant) {
        while let Some((at, key)) = self.expiries.first().cloned() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            let next = match &key {
                StreamKey::Room(room) => {
                    let next = self.room_logs.get_mut(room).and_then(|log| log.prune(now));
                    if next.is_none() && !self.rooms.contains_key(room) {
                        self.room_logs.remove(room);
                    }
                    next
                }
                StreamKey::User(user) => {
                    let Some(entry) = self.users.get_mut(user) else {
                        continue;
                    };
                    let next = entry.outbox.prune(now);
                    let mut forget = false;
                    if entry.sessions.is_empty() && entry.outbox.is_empty() {
                        match entry.forget_at {
                            Some(at) if at <= now => forget = true,
                            Some(_) => {} // its own timer is pending
                            None => {
                                let at = now + self.config.outbox_history.max_age;
                                entry.forget_at = Some(at);
                                self.expiries.insert((at, key.clone()));
                            }
                        }
                    }
                    if forget {
                        self.users.remove(user);
                        self.offline_users -= 1;
                    }
                    next
                }
                StreamKey::All => self.all.prune(now),
            };
            if let Some(next) = next {
                self.expiries.insert((next, key));
            }
        }
    }
}

/// The position before the first outbox message no session has received (or the head).
fn undelivered(outbox: &Log, delivered: u64) -> Position {
    let first = outbox
        .entries()
        .next()
        .map_or(outbox.head().offset, |e| e.offset.saturating_sub(1));
    Position {
        epoch: outbox.epoch(),
        offset: delivered.max(first),
    }
}

struct Start {
    id: Position,
    recovered: Option<bool>,
}

impl Start {
    fn into_start(self, stream: Stream) -> StreamStart {
        StreamStart {
            stream,
            id: self.id,
            recovered: self.recovered,
            replayed: 0,
        }
    }
}

/// Where a followed stream starts: after `since` if history covers it, else at the head.
fn resume(log: &Log, since: Option<Position>) -> (Start, Vec<Shared>) {
    match since.map(|since| (since, log.since(since))) {
        Some((since, recovery @ Recovery::Recovered(_))) => (
            Start {
                id: since,
                recovered: Some(true),
            },
            deliveries(recovery),
        ),
        Some((_, Recovery::Lost)) => (
            Start {
                id: log.head(),
                recovered: Some(false),
            },
            Vec::new(),
        ),
        None => (
            Start {
                id: log.head(),
                recovered: None,
            },
            Vec::new(),
        ),
    }
}

/// The deliveries of a recovery; nothing for a lost one.
fn deliveries(recovery: Recovery<'_>) -> Vec<Shared> {
    match recovery {
        Recovery::Recovered(entries) => entries.into_iter().map(|e| e.delivery.clone()).collect(),
        Recovery::Lost => Vec::new(),
    }
}
