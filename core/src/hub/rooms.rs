//! Rooms: join (with exact replay), leave, typing, publish, and presence with its grace period.

use std::time::Instant;

use std::sync::Arc;

use super::deliver::not_member;
use super::log::{Log, Recovery};
use super::room::{Left, Room};
use super::streams::StreamKey;
use super::{Hub, Published, Refusal};
use crate::cursor::{Position, Stream};
use crate::delivery::{Delivery, SessionId, Shared};
use crate::envelope::{ErrorCode, Payload, Ref, Reply, ServerMessage};
use crate::names::{RoomName, UserId};

impl Hub {
    /// `join`: enter the room (if not in it already), answer with the members and where the room
    /// resumes, then queue the missed messages when `since` is still covered by history.
    pub(super) fn join(
        &mut self,
        session: SessionId,
        reference: Option<&Ref>,
        room: RoomName,
        since: Option<Position>,
    ) -> Result<(), Refusal> {
        let slot = self.slots.get(session).expect("checked by the caller");
        if !slot.rooms.contains_key(&room) && slot.rooms.len() >= self.config.max_rooms_per_session
        {
            let limit = self.config.max_rooms_per_session;
            return Err((
                ErrorCode::LimitReached,
                format!("a session may be in at most {limit} rooms"),
            ));
        }
        let member = slot.rooms.contains_key(&room);
        self.enter_room(session, &room);
        let log = self.room_log(&room);
        let head = log.head();
        let since = since.map(|since| (since, log.since(since)));
        let (id, recovered, replay) = match since {
            // A member already has every message since it joined queued ahead of this reply:
            // replaying would repeat them. Its position is the head once it reads the reply.
            Some(_) if member => (head, Some(true), Vec::new()),
            None => (head, None, Vec::new()),
            Some((since, Recovery::Recovered(entries))) => (
                since,
                Some(true),
                entries.into_iter().map(|e| e.delivery.clone()).collect(),
            ),
            Some((_, Recovery::Lost)) => (head, Some(false), Vec::new()),
        };
        let members = self.members(&room);
        let replayed = replay.len() as u64;
        self.answer(session, reference, |reference| Reply {
            room: Some(room),
            members: Some(members),
            id: Some(id),
            recovered,
            replayed: recovered.map(|_| replayed),
            ..Reply::to(reference)
        });
        self.replay(session, replay);
        Ok(())
    }

    /// `leave`: explicit, so the user's presence ends at once if this was their last session.
    pub(super) fn leave(
        &mut self,
        session: SessionId,
        reference: Option<&Ref>,
        room: RoomName,
    ) -> Result<(), Refusal> {
        let slot = self.slots.get_mut(session).expect("checked by the caller");
        let Some(position) = slot.rooms.remove(&room) else {
            return Err(not_member(&room));
        };
        let user = slot.user.clone();
        self.exit_room(&user, session, &room, position, None);
        self.answer(session, reference, |reference| Reply {
            room: Some(room),
            ..Reply::to(reference)
        });
        Ok(())
    }

    /// `typing`: relayed to the room's other sessions, not stored.
    pub(super) fn typing(
        &mut self,
        session: SessionId,
        reference: Option<&Ref>,
        room: RoomName,
        typing: bool,
    ) -> Result<(), Refusal> {
        let slot = self.slots.get(session).expect("checked by the caller");
        if !slot.rooms.contains_key(&room) {
            return Err(not_member(&room));
        }
        let user = slot.user.clone();
        let frame = ServerMessage::Typing {
            room: room.clone(),
            user,
            typing,
        }
        .encode();
        self.fan_out_room(&room, Delivery::unstreamed(frame), Some(session));
        self.answer(session, reference, Reply::to);
        Ok(())
    }

    /// `publish` from a session: stored, and queued for the room's other sessions.
    pub(super) fn publish_from(
        &mut self,
        now: Instant,
        session: SessionId,
        reference: Option<&Ref>,
        room: RoomName,
        data: Payload,
    ) -> Result<(), Refusal> {
        let slot = self.slots.get(session).expect("checked by the caller");
        if !slot.rooms.contains_key(&room) {
            return Err(not_member(&room));
        }
        let sender = (session, slot.user.clone());
        let published = self.publish_to_room(now, Some(sender), room.clone(), data);
        self.answer(session, reference, |reference| Reply {
            room: Some(room),
            id: Some(published.id),
            ..Reply::to(reference)
        });
        Ok(())
    }

    /// Stores a room message and queues it for every member session but the sender's.
    pub(super) fn publish_to_room(
        &mut self,
        now: Instant,
        sender: Option<(SessionId, UserId)>,
        room: RoomName,
        data: Payload,
    ) -> Published {
        let log = self.room_log(&room);
        let id = log.next_position();
        let (sender_id, exclude, from) = match sender {
            Some((id, user)) => (Some(id), Some(id), Some(user)),
            None => (None, None, None),
        };
        let frame = ServerMessage::Message {
            room: room.clone(),
            id,
            from,
            data,
        }
        .encode();
        let delivery = Delivery::streamed(frame, Stream::Room(room.clone()), id);
        let was_empty = log.is_empty();
        log.append(now, delivery.clone(), sender_id);
        if was_empty {
            self.schedule_expiry(now, StreamKey::Room(room.clone()));
        }
        let sessions = self.fan_out_room(&room, delivery, exclude);
        Published { id, sessions }
    }

    /// Hands `delivery` out to the room's member sessions but `except`.
    fn fan_out_room(
        &mut self,
        room: &RoomName,
        delivery: Shared,
        except: Option<SessionId>,
    ) -> usize {
        match self.rooms.get(room).map(|room| Arc::clone(&room.members)) {
            Some(members) => self.fan_out(&members, except, delivery),
            None => 0,
        }
    }

    /// The room's log, made on first use with a fresh epoch.
    pub(super) fn room_log(&mut self, room: &RoomName) -> &mut Log {
        if !self.room_logs.contains_key(room) {
            let log = Log::new(self.next_epoch(), self.config.room_history);
            self.room_logs.insert(room.clone(), log);
        }
        self.room_logs.get_mut(room).expect("just made")
    }

    /// Makes the session a member; announces its user if newly present.
    pub(super) fn enter_room(&mut self, session: SessionId, room: &RoomName) {
        let slot = self.slots.get(session).expect("live session");
        if slot.rooms.contains_key(room) {
            return;
        }
        let user = slot.user.clone();
        let entry = self.rooms.entry(room.clone()).or_default();
        let position = entry.add(session);
        let (joined, cancelled) = entry.enter(&user);
        let slot = self.slots.get_mut(session).expect("live session");
        slot.rooms.insert(room.clone(), position);
        if let Some(at) = cancelled {
            self.graces.remove(&(at, room.clone(), user.clone()));
        }
        if joined {
            self.announce(room, vec![user], Vec::new(), Some(session));
        }
    }

    /// Removes a member session at `position`; the user's presence ends now, after the grace
    /// period (`grace`), or not at all if another of their sessions is still here.
    pub(super) fn exit_room(
        &mut self,
        user: &UserId,
        session: SessionId,
        room: &RoomName,
        position: u32,
        grace: Option<Instant>,
    ) {
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        debug_assert_eq!(entry.members.get(position as usize), Some(&session));
        if let Some(moved) = entry.remove(position) {
            let slot = self.slots.get_mut(moved).expect("members are live");
            slot.rooms.insert(room.clone(), position);
        }
        match entry.exit(user, grace) {
            Left::Stays => {}
            Left::Grace(at) => {
                self.graces.insert((at, room.clone(), user.clone()));
            }
            Left::Gone => self.announce(room, Vec::new(), vec![user.clone()], None),
        }
        self.drop_room_if_empty(room);
    }

    /// Ends the grace periods due by `now`, one `presence` message per room.
    pub(super) fn expire_graces(&mut self, now: Instant) {
        let mut gone: Vec<(RoomName, UserId)> = Vec::new();
        while let Some((at, room, user)) = self.graces.first().cloned() {
            if at > now {
                break;
            }
            self.graces.pop_first();
            if self
                .rooms
                .get_mut(&room)
                .is_some_and(|entry| entry.expire(&user, at))
            {
                gone.push((room, user));
            }
        }
        gone.sort();
        let mut start = 0;
        while start < gone.len() {
            let room = gone[start].0.clone();
            let end = start + gone[start..].iter().take_while(|(r, _)| *r == room).count();
            let leaves = gone[start..end]
                .iter()
                .map(|(_, user)| user.clone())
                .collect();
            self.announce(&room, Vec::new(), leaves, None);
            self.drop_room_if_empty(&room);
            start = end;
        }
    }

    /// Sends a `presence` diff to the room's sessions (but `exclude`).
    fn announce(
        &mut self,
        room: &RoomName,
        joins: Vec<UserId>,
        leaves: Vec<UserId>,
        except: Option<SessionId>,
    ) {
        let frame = ServerMessage::Presence {
            room: room.clone(),
            joins,
            leaves,
        }
        .encode();
        self.fan_out_room(room, Delivery::unstreamed(frame), except);
    }

    fn drop_room_if_empty(&mut self, room: &RoomName) {
        if self.rooms.get(room).is_some_and(Room::is_empty) {
            self.rooms.remove(room);
            if self.room_logs.get(room).is_some_and(Log::is_empty) {
                self.room_logs.remove(room);
            }
        }
    }
}
