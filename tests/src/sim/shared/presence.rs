//! The shared engine's presence: who is present in each room on each node, relayed as it
//! changes to the other hubs following the room and sent whole now and then; the nodes each
//! user has a session on; the entries of dead nodes expiring.

use super::*;

impl Store {
    /// Presence, typing and sessions, from hub `hub`.
    pub(super) fn news_from(&mut self, hub: usize, operation: Operation) {
        let deaf = self.planted == Some(Planted::DeafToPresence);
        match operation {
            Operation::Presence {
                node,
                room,
                user,
                present,
            } if !deaf => {
                let entry = (room.clone(), node, user.clone());
                if present {
                    self.presence.insert(entry);
                } else {
                    self.presence.remove(&entry);
                }
                let event = EngineEvent::Presence {
                    room: room.clone(),
                    node,
                    user,
                    present,
                };
                self.counts.relays += self.relay(hub, &room, &event);
            }
            Operation::Typing {
                node,
                room,
                user,
                typing,
            } => {
                let event = EngineEvent::Typing {
                    room: room.clone(),
                    node,
                    user,
                    typing,
                };
                self.relay(hub, &room, &event);
            }
            _ => {}
        }
    }

    /// `event` on `room`'s channel, to every hub but `from` that follows the room; returns to
    /// how many it went.
    pub(super) fn relay(&mut self, from: usize, room: &RoomName, event: &EngineEvent) -> u64 {
        let stream = StreamId::Room(room.clone());
        let mut sent = 0;
        for hub in 0..self.links.len() {
            if hub != from && self.follows[hub].contains(&stream) {
                sent += u64::from(self.links[hub].news(self.now, &stream, event.clone()));
            }
        }
        sent
    }

    /// Everyone present in `room`, to hub `hub`.
    pub(super) fn snapshot(&mut self, hub: usize, room: &RoomName) {
        let members = self
            .presence
            .iter()
            .filter(|(r, _, _)| r == room)
            .map(|(_, node, user)| (user.clone(), *node))
            .collect();
        let event = EngineEvent::PresenceSnapshot {
            room: room.clone(),
            members,
        };
        let stream = StreamId::Room(room.clone());
        if self.links[hub].news(self.now, &stream, event) {
            self.counts.snapshots += 1;
        }
    }

    /// Hub `hub`'s link is back: what its hub said of presence and sessions meanwhile is
    /// written now, and relayed.
    pub(super) fn back(&mut self, hub: usize) {
        for operation in std::mem::take(&mut self.links[hub].deferred) {
            self.news_from(hub, operation);
        }
    }

    /// Whether a hub whose link is up follows `stream` (a publish on its channel reaches it).
    pub(super) fn followed_up(&self, stream: &StreamId) -> bool {
        (0..self.links.len())
            .any(|hub| self.follows[hub].contains(stream) && !self.links[hub].is_down())
    }

    /// The entries of dead nodes whose time is up go: snapshots leave them out from now on.
    pub(super) fn expire_dead(&mut self) {
        let now = self.now;
        let expired: Vec<u64> = self
            .dead
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(node, _)| *node)
            .collect();
        for node in expired {
            self.dead.remove(&node);
            self.presence.retain(|(_, n, _)| *n != node);
        }
    }
}
