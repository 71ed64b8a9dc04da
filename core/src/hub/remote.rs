//! Presence and typing on other nodes: an engine shared by many nodes tells each hub who is
//! present elsewhere, and a user present on two nodes is one member. A hub merges what it hears into
//! the rooms it has (a room nobody here is in is not tracked), and announces only what changes
//! the room's presence as a whole.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::Hub;
use crate::delivery::Delivery;
use crate::envelope::ServerMessage;
use crate::names::{RoomName, UserId};

impl Hub {
    /// Another node's user became present in `room`, or stopped being.
    pub(super) fn remote_presence(
        &mut self,
        now: Instant,
        room: RoomName,
        node: u64,
        user: UserId,
        present: bool,
    ) {
        if node == self.config.node {
            return;
        }
        let Some(entry) = self.rooms.get_mut(&room) else {
            return;
        };
        let before = entry.presence.contains_key(&user) || entry.is_remote(&user);
        if present {
            entry.remote.entry(user.clone()).or_default().insert(node);
        } else if let Some(nodes) = entry.remote.get_mut(&user) {
            nodes.remove(&node);
            if nodes.is_empty() {
                entry.remote.remove(&user);
            }
        }
        let after = entry.presence.contains_key(&user) || entry.is_remote(&user);
        if before != after {
            self.presence_changed(now, &room, &user, before, None);
        }
    }

    /// Another node's user started or stopped typing in `room`: relayed to the room's sessions
    /// here.
    pub(super) fn remote_typing(&mut self, room: RoomName, node: u64, user: UserId, typing: bool) {
        if node == self.config.node || !self.rooms.contains_key(&room) {
            return;
        }
        let frame = ServerMessage::Typing {
            room: room.clone(),
            user,
            typing,
        }
        .encode();
        self.fan_out_room(&room, Delivery::unstreamed(frame), None);
    }

    /// Everyone present in `room` on every node: the other nodes' part replaces what this hub
    /// knew, and what that changes is announced.
    pub(super) fn presence_snapshot(
        &mut self,
        now: Instant,
        room: RoomName,
        members: Vec<(UserId, u64)>,
    ) {
        let node = self.config.node;
        let Some(entry) = self.rooms.get_mut(&room) else {
            return;
        };
        let mut remote: BTreeMap<UserId, BTreeSet<u64>> = BTreeMap::new();
        for (user, other) in members {
            if other != node {
                remote.entry(user).or_default().insert(other);
            }
        }
        let before: BTreeSet<UserId> = entry.present().into_iter().collect();
        entry.remote = remote;
        let after: BTreeSet<UserId> = entry.present().into_iter().collect();
        for user in after.symmetric_difference(&before) {
            self.note_presence(&room, user, before.contains(user));
        }
        self.settle_presence(now, &room, None);
    }
}
