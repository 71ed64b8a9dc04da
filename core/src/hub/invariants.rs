//! `check_invariants`: the hub's consistency rules, checked by tests and fuzzing after every step.

use std::collections::BTreeMap;

use super::Hub;
use crate::names::UserId;

impl Hub {
    /// Checks every invariant of the hub's state; the first broken one is the error.
    ///
    /// - Membership is symmetric: a session lists a room exactly when the room lists the session,
    ///   at the position the session records.
    /// - Presence is exact: in each room, the users with a member session are the users present
    ///   with a session count equal to theirs; other present users are in a grace period.
    /// - Member lists (rooms, broadcast followers, users' sessions) name live sessions only, so
    ///   fan-outs go to live sessions only.
    /// - Offsets are strictly increasing, contiguous, and below each stream's next offset.
    /// - Users and sessions agree; offline outboxes are counted right.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_membership()?;
        self.check_streams()?;
        self.check_users()
    }

    fn check_membership(&self) -> Result<(), String> {
        let mut memberships = 0;
        for slot in self.slots.iter() {
            for (room, &position) in &slot.rooms {
                let entry = self
                    .rooms
                    .get(room)
                    .ok_or_else(|| format!("{} lists missing room {room}", slot.id))?;
                if entry.members.get(position as usize) != Some(&slot.id) {
                    return Err(format!(
                        "{} is not at position {position} of room {room}",
                        slot.id
                    ));
                }
                memberships += 1;
            }
            if let Some(position) = slot.all_position {
                if self.all_followers.get(position as usize) != Some(&slot.id) {
                    return Err(format!(
                        "{} is not at position {position} of the broadcast followers",
                        slot.id
                    ));
                }
            }
        }
        let listed: usize = self.rooms.values().map(|room| room.members.len()).sum();
        if listed != memberships {
            return Err(format!(
                "rooms list {listed} members, sessions {memberships} memberships"
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
            for session in room.members.iter() {
                let slot = self
                    .slots
                    .get(*session)
                    .ok_or_else(|| format!("{name} lists {session}, which is not live"))?;
                *counts.entry(&slot.user).or_default() += 1;
            }
            for (user, presence) in &room.presence {
                let sessions = counts.remove(user).unwrap_or(0);
                if presence.sessions != sessions {
                    return Err(format!(
                        "{user} in {name}: presence counts {} sessions, {sessions} are members",
                        presence.sessions
                    ));
                }
                let in_grace = presence.leaving_at.is_some();
                if in_grace != (sessions == 0) {
                    return Err(format!(
                        "{user} in {name}: in grace with {sessions} sessions"
                    ));
                }
                if let Some(at) = presence.leaving_at {
                    if !self.graces.contains(&(at, name.clone(), user.clone())) {
                        return Err(format!("{user} in {name}: grace period without a timer"));
                    }
                }
            }
            if let Some((user, _)) = counts.first_key_value() {
                return Err(format!("{user} has a session in {name} but is not present"));
            }
        }
        Ok(())
    }

    fn check_streams(&self) -> Result<(), String> {
        let logs = self
            .room_logs
            .iter()
            .map(|(room, log)| (format!("room:{room}"), log))
            .chain(
                self.users
                    .iter()
                    .map(|(user, u)| (format!("user {user}"), &u.outbox)),
            )
            .chain([("all".to_owned(), &self.all)]);
        for (name, log) in logs {
            let mut expected = None;
            for entry in log.entries() {
                if expected.is_some_and(|offset| entry.offset != offset) || entry.offset == 0 {
                    return Err(format!(
                        "{name}: offsets not contiguous at {}",
                        entry.offset
                    ));
                }
                let position = entry.delivery.stream.as_ref().map(|(_, p)| *p);
                if position
                    != Some(crate::cursor::Position {
                        epoch: log.epoch(),
                        offset: entry.offset,
                    })
                {
                    return Err(format!(
                        "{name}: entry {} carries position {position:?}",
                        entry.offset
                    ));
                }
                expected = Some(entry.offset + 1);
            }
            if let Some(next) = expected {
                if next != log.next_position().offset {
                    return Err(format!(
                        "{name}: history ends at {next}, next offset is {}",
                        log.next_position().offset
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_users(&self) -> Result<(), String> {
        let mut offline = 0;
        for (name, user) in &self.users {
            for session in user.sessions.iter() {
                match self.slots.get(*session) {
                    Some(slot) if slot.user == *name => {}
                    _ => return Err(format!("{name} lists {session}, which is not theirs")),
                }
            }
            if user.sessions.is_empty() {
                if user.outbox.is_empty() && user.forget_at.is_none() {
                    return Err(format!(
                        "{name} has neither sessions nor messages, and no end"
                    ));
                }
                offline += 1;
            }
        }
        if offline != self.offline_users {
            return Err(format!(
                "{offline} offline users, counted {}",
                self.offline_users
            ));
        }
        for slot in self.slots.iter() {
            if !self
                .users
                .get(&slot.user)
                .is_some_and(|u| u.sessions.contains(&slot.id))
            {
                return Err(format!(
                    "{} of {} is missing from its user",
                    slot.id, slot.user
                ));
            }
        }
        Ok(())
    }
}
