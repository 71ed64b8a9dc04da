//! `check_invariants`: the hub's consistency rules, checked by tests and fuzzing after every step.

use std::collections::BTreeMap;

use super::Hub;
use crate::engine::StreamId;
use crate::names::UserId;

impl Hub {
    /// Checks every invariant of the hub's state; the first broken one is the error.
    ///
    /// - Membership is symmetric: a session receiving a room lists it at the position the room
    ///   lists it; sessions still starting on a room are listed by no room.
    /// - Presence is exact: in each room, the users with a member session (receiving or
    ///   starting) are the users present with a session count equal to theirs; other present
    ///   users are in a grace period.
    /// - Member lists (rooms, broadcast followers, users' sessions) name live sessions only, so
    ///   fan-outs go to live sessions only.
    /// - The hub follows exactly the streams its sessions follow, each counted once per
    ///   session.
    /// - Every operation that waits has been sent and not answered; every start belongs to a
    ///   live session.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_membership()?;
        self.check_users()?;
        self.check_feeds()?;
        self.check_waits()
    }

    fn check_membership(&self) -> Result<(), String> {
        let mut receiving = 0;
        for slot in self.slots.iter() {
            for (room, position) in &slot.rooms {
                let entry = self
                    .rooms
                    .get(room)
                    .ok_or_else(|| format!("{} lists missing room {room}", slot.id))?;
                let Some(position) = position else { continue };
                if entry.members.get(*position as usize) != Some(&slot.id) {
                    return Err(format!(
                        "{} is not at position {position} of room {room}",
                        slot.id
                    ));
                }
                receiving += 1;
            }
            if let Some(position) = slot.all_position
                && (!slot.broadcast || self.all_followers.get(position as usize) != Some(&slot.id))
            {
                return Err(format!(
                    "{} is not at position {position} of the broadcast followers",
                    slot.id
                ));
            }
        }
        let listed: usize = self.rooms.values().map(|room| room.members.len()).sum();
        if listed != receiving {
            return Err(format!(
                "rooms list {listed} members, sessions {receiving} memberships"
            ));
        }
        let following = self
            .slots
            .iter()
            .filter(|slot| slot.all_position.is_some())
            .count();
        if following != self.all_followers.len() {
            return Err("broadcast followers and sessions disagree".into());
        }
        for (name, room) in &self.rooms {
            if room.is_empty() {
                return Err(format!("empty room {name} was kept"));
            }
            let mut counts: BTreeMap<&UserId, u32> = BTreeMap::new();
            for slot in self
                .slots
                .iter()
                .filter(|slot| slot.rooms.contains_key(name))
            {
                *counts.entry(&slot.user).or_default() += 1;
            }
            for session in room.members.iter() {
                if self.slots.get(*session).is_none() {
                    return Err(format!("{name} lists {session}, which is not live"));
                }
            }
            for (user, presence) in &room.presence {
                let sessions = counts.remove(user).unwrap_or(0);
                if presence.sessions != sessions {
                    return Err(format!(
                        "{name}: {user} counted {} sessions, has {sessions}",
                        presence.sessions
                    ));
                }
                if (sessions == 0) != presence.leaving_at.is_some() {
                    return Err(format!("{name}: {user}'s grace period is wrong"));
                }
            }
            if let Some((user, _)) = counts.into_iter().next() {
                return Err(format!(
                    "{name}: {user} has a member session but is not present"
                ));
            }
            if let Err(broken) = room.herald.check() {
                return Err(format!("{name}: {broken}"));
            }
            if let Some(due) = room.herald.due()
                && !self.presence_due.contains(&(due, name.clone()))
            {
                return Err(format!("{name}: a presence frame due at no timer"));
            }
        }
        Ok(())
    }

    fn check_users(&self) -> Result<(), String> {
        for (name, sessions) in &self.users {
            for session in sessions.iter() {
                match self.slots.get(*session) {
                    Some(slot) if slot.user == *name => {}
                    _ => return Err(format!("{name} lists {session}, which is not theirs")),
                }
            }
            if !self.slots.iter().any(|slot| slot.user == *name) {
                return Err(format!("{name} has no session but is kept"));
            }
        }
        for slot in self.slots.iter() {
            if !self.users.contains_key(&slot.user) {
                return Err(format!(
                    "{} of {} is missing from its user",
                    slot.id, slot.user
                ));
            }
        }
        Ok(())
    }

    fn check_feeds(&self) -> Result<(), String> {
        let mut interest: BTreeMap<StreamId, u32> = BTreeMap::new();
        for slot in self.slots.iter() {
            *interest
                .entry(StreamId::Outbox(slot.user.clone()))
                .or_default() += 1;
            if slot.broadcast {
                *interest.entry(StreamId::Broadcast).or_default() += 1;
            }
            for room in slot.rooms.keys() {
                *interest.entry(StreamId::Room(room.clone())).or_default() += 1;
            }
        }
        for (stream, feed) in &self.feeds {
            let expected = interest.remove(stream).unwrap_or(0);
            if feed.interest != expected {
                return Err(format!(
                    "{stream:?} counts {} sessions following it, has {expected}",
                    feed.interest
                ));
            }
        }
        if let Some((stream, _)) = interest.into_iter().next() {
            return Err(format!(
                "{stream:?} is followed by a session but not by the hub"
            ));
        }
        Ok(())
    }

    fn check_waits(&self) -> Result<(), String> {
        for (id, start) in &self.starts {
            if self.slots.get(start.session).is_none() {
                return Err(format!(
                    "start {id} is of {}, which is not live",
                    start.session
                ));
            }
            for entry in &start.entries {
                if let Some((op, _)) = entry.reading
                    && !self.pending.contains_key(&op)
                {
                    return Err(format!("start {id} waits for {op:?}, never sent"));
                }
            }
        }
        if !self.owed.is_empty() {
            return Err(format!("{} answers owed after an input", self.owed.len()));
        }
        let mut listed = 0;
        for (session, ids) in &self.session_starts {
            listed += ids.len();
            for id in ids {
                if self
                    .starts
                    .get(id)
                    .is_none_or(|start| start.session != *session)
                {
                    return Err(format!("{session} lists start {id}, not its own"));
                }
            }
        }
        if listed != self.starts.len() {
            return Err(format!(
                "{} starts, {listed} listed by their sessions",
                self.starts.len()
            ));
        }
        for (stream, parked) in &self.parked {
            for (id, index) in parked {
                let entry = self.starts.get(id).and_then(|s| s.entries.get(*index));
                if entry.is_none_or(|entry| entry.stream != *stream || entry.reading.is_some()) {
                    return Err(format!("entry {id}.{index} parked on {stream:?} wrongly"));
                }
            }
        }
        for (stream, feed) in &self.feeds {
            if let Some(op) = feed.fill
                && !self.pending.contains_key(&op)
            {
                return Err(format!("{stream:?} waits for its fill {op:?}, never sent"));
            }
        }
        Ok(())
    }
}
