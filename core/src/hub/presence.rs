//! Presence announcements, coalesced per room.
//!
//! A room's joins and leaves wait for its next `presence` frame: a change in a room whose last
//! frame is older than [`HubConfig::presence_window`](super::HubConfig::presence_window) goes
//! out at once, every other one with the next frame, when the window ends. A join storm of N
//! users then costs each member one frame per window, not N, and the hub O(changes) work, not
//! O(members x changes). Each frame says what changed since the room's last frame, computed
//! when it goes out: a user who came and went within one window is in neither list.
//!
//! Above [`HubConfig::presence_counts_above`](super::HubConfig::presence_counts_above) users
//! present, names stop: frames carry the count, at most one per
//! [`HubConfig::presence_count_every`](super::HubConfig::presence_count_every), and only when
//! it moved; a join reply carries `count` instead of `members`. A room that comes back to
//! that size gets the whole list once (`members`), then diffs again.
//!
//! A join reply says what the room's last frame left its members holding (plus the joining
//! user), not the presence of the moment: the frames after it are diffs against that, so the
//! joining client applies them exactly as the others do. A join may then come again in the
//! next frame for a user the reply listed; clients apply `joins` and `leaves` as set
//! operations.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::Hub;
use crate::delivery::{Delivery, SessionId};
use crate::envelope::{PresenceChange, ServerMessage};
use crate::names::{RoomName, UserId};

/// A room's announcement state.
#[derive(Debug, Default)]
pub(crate) struct Herald {
    /// Users whose presence changed since the room's last frame, each with whether they were
    /// present in it.
    changed: BTreeMap<UserId, bool>,
    /// When the last frame went out.
    last: Option<Instant>,
    /// When the next goes out: set exactly while `changed` is not empty.
    due: Option<Instant>,
    /// The last frame was a count: the clients hold a count, not a member list.
    counting: bool,
    /// The count the last frame carried.
    count: u64,
}

impl Herald {
    /// When its next frame goes out, if one is due.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Changes wait exactly while a frame is due, and a frame is due only after one went out.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.changed.is_empty() == self.due.is_some() {
            return Err("presence changes wait without a frame due, or the reverse".into());
        }
        if self.due.is_some() && self.last.is_none() {
            return Err("a presence frame is due in a quiet room".into());
        }
        Ok(())
    }
}

impl Hub {
    /// `user`'s presence in `room` began (`was` false) or ended (`was` true), here or on
    /// another node. `joiner`: the session whose join this is; its reply says who is present,
    /// so a frame that goes out at once skips it.
    pub(super) fn presence_changed(
        &mut self,
        now: Instant,
        room: &RoomName,
        user: &UserId,
        was: bool,
        joiner: Option<SessionId>,
    ) {
        self.note_presence(room, user, was);
        self.settle_presence(now, room, joiner);
    }

    /// Records a change for `room`'s next frame; [`settle_presence`](Self::settle_presence)
    /// then sends or schedules it. Changes noted together go out together.
    pub(super) fn note_presence(&mut self, room: &RoomName, user: &UserId, was: bool) {
        if let Some(entry) = self.rooms.get_mut(room) {
            entry.herald.changed.entry(user.clone()).or_insert(was);
        }
    }

    /// Sends `room`'s noted changes now if the room is quiet, else makes sure a frame is due.
    pub(super) fn settle_presence(
        &mut self,
        now: Instant,
        room: &RoomName,
        joiner: Option<SessionId>,
    ) {
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        let herald = &mut entry.herald;
        if herald.changed.is_empty() || herald.due.is_some() {
            return; // goes with the frame already due
        }
        let every = if herald.counting {
            self.config.presence_count_every
        } else {
            self.config.presence_window
        };
        match herald.last.map(|last| last + every).filter(|at| *at > now) {
            Some(at) => {
                herald.due = Some(at);
                self.presence_due.insert((at, room.clone()));
            }
            // Quiet: what was noted is only what this input changed.
            None => self.announce(now, room, joiner),
        }
    }

    /// Sends the frames due by `now`.
    pub(super) fn announce_due(&mut self, now: Instant) {
        while let Some((at, room)) = self.presence_due.first().cloned() {
            if at > now {
                break;
            }
            self.presence_due.pop_first();
            // A room dropped and made again since has its own due time.
            if self
                .rooms
                .get(&room)
                .is_some_and(|r| r.herald.due == Some(at))
            {
                self.announce(now, &room, None);
            }
        }
    }

    /// When the next frame is due, in any room.
    pub(super) fn next_announcement(&self) -> Option<Instant> {
        self.presence_due.first().map(|(at, _)| *at)
    }

    /// The presence in `user`'s join reply: what the room's last frame left its members
    /// holding (the list, the joining user included, or the count), so that the frames after
    /// the reply apply to it exactly as to theirs.
    pub(super) fn reply_presence(
        &self,
        room: &RoomName,
        user: &UserId,
    ) -> (Option<Vec<UserId>>, Option<u64>) {
        let Some(entry) = self.rooms.get(room).filter(|_| self.presence_on(room)) else {
            return (Some(Vec::new()), None);
        };
        let herald = &entry.herald;
        if herald.counting {
            return (None, Some(herald.count));
        }
        let mut members: BTreeSet<UserId> = entry.present().into_iter().collect();
        for (changed, was) in &herald.changed {
            if *was {
                members.insert(changed.clone());
            } else {
                members.remove(changed);
            }
        }
        members.insert(user.clone());
        (Some(members.into_iter().collect()), None)
    }

    /// Sends `room`'s changes since its last frame to its receiving sessions (but `except`),
    /// if they change what those sessions hold.
    fn announce(&mut self, now: Instant, room: &RoomName, except: Option<SessionId>) {
        let counts_above = self.config.presence_counts_above;
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        let changed = std::mem::take(&mut entry.herald.changed);
        entry.herald.due = None;
        let count = entry.present_count();
        let change = if count > counts_above {
            if entry.herald.counting && entry.herald.count == count as u64 {
                return; // the clients hold this count
            }
            PresenceChange::Count(count as u64)
        } else if entry.herald.counting {
            PresenceChange::Members(entry.present())
        } else {
            let (mut joins, mut leaves) = (Vec::new(), Vec::new());
            for (user, was) in changed {
                match (was, entry.is_present(&user)) {
                    (false, true) => joins.push(user),
                    (true, false) => leaves.push(user),
                    _ => {} // came and went within the window
                }
            }
            if joins.is_empty() && leaves.is_empty() {
                return;
            }
            PresenceChange::Diff { joins, leaves }
        };
        let herald = &mut entry.herald;
        herald.counting = matches!(change, PresenceChange::Count(_));
        herald.count = count as u64;
        let frame = ServerMessage::Presence {
            room: room.clone(),
            change,
        }
        .encode();
        let sent = self.fan_out_room(room, Delivery::unstreamed(frame), except);
        self.presence_sent += sent as u64;
        // A frame nobody got (the first user in a room) costs nothing: it opens no window.
        if sent > 0
            && let Some(entry) = self.rooms.get_mut(room)
        {
            entry.herald.last = Some(now);
        }
    }
}
