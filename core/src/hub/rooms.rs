//! Rooms: join (with exact replay), leave, typing, publish, and presence with its grace period.

use std::sync::Arc;
use std::time::Instant;

use smol_str::SmolStr;

use super::deliver::not_member;
use super::ops::Waiter;
use super::room::{Left, Room};
use super::slots::Admission;
use super::{Hub, Refusal};
use crate::cursor::Position;
use crate::delivery::{Delivery, SessionId, Shared};
use crate::engine::{Message, OpId, Operation, Origin, Record, StreamId};
use crate::envelope::{ErrorCode, Payload, Ref, Reply, ServerMessage};
use crate::names::{RoomName, UserId};

impl Hub {
    /// `join`: enter the room (if not in it already), answer with the members and where the
    /// room resumes, then the missed messages when `since` is still covered by history.
    pub(super) fn join(
        &mut self,
        now: Instant,
        session: SessionId,
        reference: Option<&Ref>,
        room: RoomName,
        since: Option<Position>,
    ) -> Result<(), Refusal> {
        let slot = self.slots.get_mut(session).expect("checked by the caller");
        let member = slot.rooms.contains_key(&room);
        if !member {
            let admitted = slot.take_admission(Admission::Join, &room);
            self.config
                .namespaces
                .may_join(&slot.grants, &room, admitted)
                .map_err(|why| (ErrorCode::Unauthorized, why))?;
        }
        if !member && slot.rooms.len() >= self.config.max_rooms_per_session {
            let limit = self.config.max_rooms_per_session;
            return Err((
                ErrorCode::LimitReached,
                format!("a session may be in at most {limit} rooms"),
            ));
        }
        self.enter_room(now, session, &room);
        self.start_join(session, reference.cloned(), room, since, member);
        Ok(())
    }

    /// `leave`: explicit, so the user's presence ends at once if this was their last session.
    pub(super) fn leave(
        &mut self,
        now: Instant,
        session: SessionId,
        reference: Option<&Ref>,
        room: RoomName,
    ) -> Result<(), Refusal> {
        let slot = self.slots.get_mut(session).expect("checked by the caller");
        let Some(position) = slot.rooms.remove(&room) else {
            return Err(not_member(&room));
        };
        let user = slot.user.clone();
        if position.is_none() {
            self.cancel_join(session, &room);
        }
        self.exit_room(now, &user, session, &room, position, None);
        self.answer(session, reference, |reference| Reply {
            room: Some(room),
            ..Reply::to(reference)
        });
        self.release_owed();
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
        if !self.config.namespaces.get(&room).is_ok_and(|n| n.typing) {
            let why = format!("room {:?}: typing is off in its namespace", room.as_str());
            return Err((ErrorCode::Unauthorized, why));
        }
        let user = slot.user.clone();
        let frame = ServerMessage::Typing {
            room: room.clone(),
            user: user.clone(),
            typing,
        }
        .encode();
        self.fan_out_room(&room, Delivery::unstreamed(frame), Some(session));
        // And to the room's members on other nodes, if the engine is shared.
        self.operations.push_back(Operation::Typing {
            node: self.config.node,
            room,
            user,
            typing,
        });
        self.answer(session, reference, Reply::to);
        Ok(())
    }

    /// `publish` from a session: stored, then delivered to the room's other sessions; the
    /// reply, with the message's id, once it is stored and every message before it delivered.
    pub(super) fn publish_from(
        &mut self,
        now: Instant,
        session: SessionId,
        reference: Option<&Ref>,
        room: RoomName,
        data: Payload,
    ) -> Result<(), Refusal> {
        let slot = self.slots.get_mut(session).expect("checked by the caller");
        if !slot.rooms.contains_key(&room) {
            return Err(not_member(&room));
        }
        let admitted = slot.take_admission(Admission::Publish, &room);
        self.config
            .namespaces
            .may_publish(&slot.grants, &room, admitted)
            .map_err(|why| (ErrorCode::Unauthorized, why))?;
        let from = Some(slot.user.clone());
        // The append's number is set as it is sent.
        let origin = Some(Origin {
            node: self.config.node,
            session,
            op: OpId(0),
        });
        let waiter = Waiter::Publish {
            session,
            reference: reference.cloned(),
            room: room.clone(),
        };
        let retention = self.room_history(&room);
        let record = Record::new(
            0,
            origin,
            Message::Room {
                from,
                event: None,
                data,
            },
        );
        self.append(now, StreamId::Room(room), record, retention, waiter);
        Ok(())
    }

    /// Stores a server's room message for `waiter`.
    pub(super) fn publish_to_room(
        &mut self,
        now: Instant,
        waiter: Waiter,
        origin: Option<Origin>,
        room: RoomName,
        (event, data): (Option<SmolStr>, Payload),
    ) {
        let message = Message::Room {
            from: None,
            event,
            data,
        };
        let record = Record::new(0, origin, message);
        let retention = self.room_history(&room);
        self.append(now, StreamId::Room(room), record, retention, waiter);
    }

    /// Hands `delivery` out to the room's receiving sessions but `except`.
    pub(super) fn fan_out_room(
        &mut self,
        room: &RoomName,
        delivery: Shared,
        except: Option<SessionId>,
    ) -> usize {
        match self.rooms.get(room).map(|room| Arc::clone(&room.members)) {
            Some(members) => {
                let except = except.filter(|session| members.contains(session));
                self.fan_out(&members, except, delivery)
            }
            None => 0,
        }
    }

    /// Makes the session a member (present at once; receiving once its start completes);
    /// announces its user if newly present.
    pub(super) fn enter_room(&mut self, now: Instant, session: SessionId, room: &RoomName) {
        let slot = self.slots.get(session).expect("live session");
        if slot.rooms.contains_key(room) {
            return;
        }
        let user = slot.user.clone();
        let entry = self.rooms.entry(room.clone()).or_default();
        let (joined, cancelled) = entry.enter(&user);
        let slot = self.slots.get_mut(session).expect("live session");
        slot.rooms.insert(room.clone(), None);
        if let Some(at) = cancelled {
            self.graces.remove(&(at, room.clone(), user.clone()));
        }
        self.gain_interest(&StreamId::Room(room.clone()));
        if joined && self.presence_on(room) {
            self.tell_presence(room, &user, true);
            // Present on another node already: one member, nothing new to announce.
            let remote = self.rooms.get(room).is_some_and(|r| r.is_remote(&user));
            if !remote {
                self.presence_changed(now, room, &user, false, Some(session));
            }
        }
    }

    /// Tells the engine that `user`'s presence in `room` on this node began or ended, for the
    /// other nodes of an engine they share.
    fn tell_presence(&mut self, room: &RoomName, user: &UserId, present: bool) {
        self.operations.push_back(Operation::Presence {
            node: self.config.node,
            room: room.clone(),
            user: user.clone(),
            present,
        });
    }

    /// Removes a member session (receiving at `position`, if it was); the user's presence
    /// ends now, after the grace period (`grace`), or not at all if another of their sessions
    /// is still here.
    pub(super) fn exit_room(
        &mut self,
        now: Instant,
        user: &UserId,
        session: SessionId,
        room: &RoomName,
        position: Option<u32>,
        grace: Option<Instant>,
    ) {
        self.lose_interest(&StreamId::Room(room.clone()));
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(position) = position {
            debug_assert_eq!(entry.members.get(position as usize), Some(&session));
            if let Some(moved) = entry.remove(position) {
                let slot = self.slots.get_mut(moved).expect("members are live");
                slot.rooms.insert(room.clone(), Some(position));
            }
        }
        match entry.exit(user, grace) {
            Left::Stays => {}
            Left::Grace(at) => {
                self.graces.insert((at, room.clone(), user.clone()));
            }
            Left::Gone if !self.config.namespaces.get(room).is_ok_and(|n| n.presence) => {}
            Left::Gone => {
                let remote = entry.is_remote(user);
                self.tell_presence(room, user, false);
                if !remote {
                    self.presence_changed(now, room, user, true, None);
                }
            }
        }
        self.drop_room_if_empty(room);
    }

    /// Ends the grace periods due by `now`; rooms announce the leaves together.
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
        let mut rooms: Vec<RoomName> = gone.iter().map(|(room, _)| room.clone()).collect();
        rooms.dedup();
        // Where presence is off, nobody hears of it.
        gone.retain(|(room, _)| self.presence_on(room));
        for (room, user) in &gone {
            self.tell_presence(room, user, false);
        }
        // Present on another node still: no leave to announce.
        gone.retain(|(room, user)| !self.rooms.get(room).is_some_and(|r| r.is_remote(user)));
        for (room, user) in &gone {
            self.note_presence(room, user, true);
        }
        for room in &rooms {
            self.settle_presence(now, room, None);
        }
        for room in rooms {
            self.drop_room_if_empty(&room);
        }
    }

    fn drop_room_if_empty(&mut self, room: &RoomName) {
        if self.rooms.get(room).is_some_and(Room::is_empty) {
            self.rooms.remove(room);
        }
    }
}
