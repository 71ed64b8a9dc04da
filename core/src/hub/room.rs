//! A room's membership (sessions, in fan-out order) and presence (users, with a grace period).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use super::Members;
use super::presence::Herald;
use crate::delivery::SessionId;
use crate::names::UserId;

#[derive(Debug, Default)]
pub(crate) struct Room {
    /// Member sessions. Unordered: removal swaps the last one in. Shared with the fan-outs not
    /// yet taken, and copied on change only while one is.
    pub(crate) members: Members,
    /// Users present: those with a member session, and those in their grace period.
    pub(crate) presence: BTreeMap<UserId, Presence>,
    /// Users present on other nodes (an engine shared by many nodes says so), with those
    /// nodes. A user present here and there is one member.
    pub(crate) remote: BTreeMap<UserId, BTreeSet<u64>>,
    /// What its next `presence` frame says, and when it goes out.
    pub(crate) herald: Herald,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Presence {
    /// Member sessions of this user.
    pub(crate) sessions: u32,
    /// Set while the user has no session left here: when the grace period ends.
    pub(crate) leaving_at: Option<Instant>,
}

/// What a session leaving did to its user's presence.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Left {
    /// Another session of the user is still here.
    Stays,
    /// The user's last session left: they stay present until the grace period ends.
    Grace(Instant),
    /// The user's last session left and no grace applies: announce it now.
    Gone,
}

impl Room {
    /// Adds a member session; returns its position in `members`.
    pub(crate) fn add(&mut self, session: SessionId) -> u32 {
        push(&mut self.members, session)
    }

    /// Removes the member at `position`; returns the session moved into it, whose position
    /// changed.
    pub(crate) fn remove(&mut self, position: u32) -> Option<SessionId> {
        swap_remove(&mut self.members, position)
    }

    /// A session of `user` entered. True when the user is newly present: announce the join.
    /// A user back within the grace period was never announced gone, so is not announced again.
    pub(crate) fn enter(&mut self, user: &UserId) -> (bool, Option<Instant>) {
        let presence = self.presence.entry(user.clone()).or_default();
        let was_present = presence.sessions > 0 || presence.leaving_at.is_some();
        presence.sessions += 1;
        (!was_present, presence.leaving_at.take())
    }

    /// A session of `user` left; `grace` is when a user whose last session left is announced gone
    /// (`None` for an explicit leave, announced at once).
    pub(crate) fn exit(&mut self, user: &UserId, grace: Option<Instant>) -> Left {
        let Some(presence) = self.presence.get_mut(user) else {
            return Left::Stays;
        };
        presence.sessions = presence.sessions.saturating_sub(1);
        if presence.sessions > 0 {
            return Left::Stays;
        }
        match grace {
            Some(at) => {
                presence.leaving_at = Some(at);
                Left::Grace(at)
            }
            None => {
                self.presence.remove(user);
                Left::Gone
            }
        }
    }

    /// Ends the grace period of `user` if it is still running: true when they are now gone.
    pub(crate) fn expire(&mut self, user: &UserId, at: Instant) -> bool {
        match self.presence.get(user) {
            Some(presence) if presence.sessions == 0 && presence.leaving_at == Some(at) => {
                self.presence.remove(user);
                true
            }
            _ => false,
        }
    }

    /// The users present, here or on another node, in order.
    pub(crate) fn present(&self) -> Vec<UserId> {
        if self.remote.is_empty() {
            return self.presence.keys().cloned().collect();
        }
        let all: BTreeSet<&UserId> = self.presence.keys().chain(self.remote.keys()).collect();
        all.into_iter().cloned().collect()
    }

    /// How many users are present, here or on another node.
    pub(crate) fn present_count(&self) -> usize {
        let elsewhere = self.remote.keys();
        self.presence.len()
            + elsewhere
                .filter(|u| !self.presence.contains_key(*u))
                .count()
    }

    /// Whether `user` is present, here or on another node.
    pub(crate) fn is_present(&self, user: &UserId) -> bool {
        self.presence.contains_key(user) || self.is_remote(user)
    }

    /// Whether `user` is present on another node.
    pub(crate) fn is_remote(&self, user: &UserId) -> bool {
        self.remote.contains_key(user)
    }

    /// Nobody here, nobody in a grace period: the room can go.
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.presence.is_empty()
    }
}

/// Appends `session` to a member list; returns its position.
pub(super) fn push(members: &mut Members, session: SessionId) -> u32 {
    let members = Arc::make_mut(members);
    members.push(session);
    u32::try_from(members.len() - 1).unwrap_or(u32::MAX)
}

/// Removes the member at `position` by swapping the last one in; returns the one moved, if any.
pub(super) fn swap_remove(members: &mut Members, position: u32) -> Option<SessionId> {
    let members = Arc::make_mut(members);
    let position = position as usize;
    members.swap_remove(position);
    members.get(position).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn user(name: &str) -> UserId {
        UserId::new(name).expect("valid")
    }

    #[test]
    fn a_user_with_many_sessions_is_one_member() {
        let mut room = Room::default();
        assert_eq!(room.enter(&user("a")), (true, None));
        assert_eq!(room.enter(&user("a")), (false, None));
        assert_eq!(room.present(), [user("a")]);
        assert_eq!(room.exit(&user("a"), None), Left::Stays);
        assert_eq!(room.exit(&user("a"), None), Left::Gone);
        assert!(room.present().is_empty());
    }

    #[test]
    fn a_return_within_the_grace_period_is_not_announced() {
        let t = crate::testing::start();
        let at = t + Duration::from_secs(5);
        let mut room = Room::default();
        room.enter(&user("a"));
        assert_eq!(room.exit(&user("a"), Some(at)), Left::Grace(at));
        assert_eq!(
            room.present(),
            [user("a")],
            "still present during the grace period"
        );
        assert_eq!(
            room.enter(&user("a")),
            (false, Some(at)),
            "back: no join, grace cancelled"
        );
        assert!(
            !room.expire(&user("a"), at),
            "the cancelled grace ends nothing"
        );
        room.exit(&user("a"), Some(at));
        assert!(room.expire(&user("a"), at));
        assert!(room.is_empty());
    }

    #[test]
    fn removal_swaps_the_last_member_in() {
        let mut room = Room::default();
        for n in [10, 11, 12] {
            room.add(SessionId(n));
        }
        assert_eq!(room.remove(0), Some(SessionId(12)));
        assert_eq!(*room.members, [SessionId(12), SessionId(11)]);
        assert_eq!(room.remove(1), None);
        assert_eq!(*room.members, [SessionId(12)]);
    }

    #[test]
    fn a_change_does_not_touch_a_snapshot_taken_before() {
        let mut room = Room::default();
        room.add(SessionId(1));
        let snapshot = room.members.clone();
        room.add(SessionId(2));
        assert_eq!(*snapshot, [SessionId(1)]);
        assert_eq!(*room.members, [SessionId(1), SessionId(2)]);
    }
}
