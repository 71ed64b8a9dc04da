//! What the server's own API asks of the hub besides publishing: a stream's records, read
//! through the engine; and, as this hub holds them, a room's presence, the rooms with members,
//! and a user's sessions.

use std::sync::Arc;

use super::ops::Pending;
use super::{Hub, HubError, HubEvent, Ticket};
use crate::cursor::Position;
use crate::delivery::SessionId;
use crate::engine::{Record, StreamId, View};
use crate::names::{RoomName, UserId};

/// A stream's records as a server-side read found them ([`Hub::read_stream`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPage {
    /// Where the stream stands.
    pub view: View,
    /// The records after the read's position, in order, when the view covers it; none for a
    /// read of the view alone or of a position the stream no longer covers.
    pub records: Vec<Arc<Record>>,
}

/// A session of a user on this hub's node ([`Hub::user_sessions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSession {
    /// The session (its `welcome`'s `session`).
    pub session: SessionId,
    /// The rooms it is in, in name order.
    pub rooms: Vec<RoomName>,
}

/// A room with members on this hub's node ([`Hub::rooms_page`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSummary {
    /// The room.
    pub room: RoomName,
    /// Users present (here or, on a shared engine, on other nodes).
    pub users: usize,
    /// This node's member sessions.
    pub sessions: usize,
    /// The last message delivered here: the room's head as this node last saw it (`None`
    /// before the engine's first answer, and for a room without messages).
    pub last: Option<Position>,
}

/// A user present in a room ([`Hub::room_presence`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberPresence {
    /// The user.
    pub user: UserId,
    /// Their member sessions on this hub's node (0 while their grace period runs, or when they
    /// are present on other nodes only).
    pub sessions: u32,
    /// The other nodes they are present on, as the engine last told.
    pub nodes: Vec<u64>,
}

impl Hub {
    /// Reads `stream` for the server: its view, and at most `max` records after `after` (none
    /// for `after: None`). Answered [`HubEvent::Read`] with the ticket, or at once
    /// `unavailable` when the engine is unreachable or [`max_pending`] operations wait for it
    /// already.
    ///
    /// [`max_pending`]: super::HubConfig::max_pending
    pub fn read_stream(&mut self, stream: StreamId, after: Option<Position>, max: usize) -> Ticket {
        let ticket = self.ticket();
        let refusal = if self.link_down {
            Some("the engine is unreachable".to_owned())
        } else if self.pending.len() >= self.config.max_pending {
            let pending = self.config.max_pending;
            Some(format!("{pending} operations wait for the engine already"))
        } else {
            None
        };
        match refusal {
            Some(why) => self.events.push_back(HubEvent::Read {
                ticket,
                result: Err(HubError::Unavailable(why)),
            }),
            None => {
                self.send_read(stream, after, max, Pending::Api(ticket));
            }
        }
        ticket
    }

    /// The users present in `room` as this hub holds them, in name order: those with a member
    /// session here or in their grace period, and those other nodes announced. Empty for a room
    /// nobody on this node is in: on a shared engine, only the nodes with members know.
    pub fn room_presence(&self, room: &RoomName) -> Vec<MemberPresence> {
        let Some(room) = self.rooms.get(room) else {
            return Vec::new();
        };
        room.present()
            .into_iter()
            .map(|user| MemberPresence {
                sessions: room.presence.get(&user).map_or(0, |p| p.sessions),
                nodes: room
                    .remote
                    .get(&user)
                    .map(|nodes| nodes.iter().copied().collect())
                    .unwrap_or_default(),
                user,
            })
            .collect()
    }

    /// The sessions of `user` on this hub's node, by id, each with its rooms: none when the
    /// user is not connected here.
    pub fn user_sessions(&self, user: &UserId) -> Vec<UserSession> {
        let Some(sessions) = self.users.get(user) else {
            return Vec::new();
        };
        let mut sessions: Vec<UserSession> = sessions
            .iter()
            .filter_map(|&session| {
                let slot = self.slots.get(session)?;
                Some(UserSession {
                    session,
                    rooms: slot.rooms.keys().cloned().collect(),
                })
            })
            .collect();
        sessions.sort_by_key(|s| s.session);
        sessions
    }

    /// Up to `limit` rooms with members or users in a grace period on this node, in name order,
    /// after `after`: a page of the room list, whose next page starts after its last room.
    pub fn rooms_page(&self, after: Option<&RoomName>, limit: usize) -> Vec<RoomSummary> {
        use std::ops::Bound;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.rooms
            .range::<RoomName, _>((from, Bound::Unbounded))
            .take(limit)
            .map(|(name, room)| RoomSummary {
                room: name.clone(),
                users: room.present_count(),
                sessions: room.members.len(),
                last: self
                    .feeds
                    .get(&StreamId::Room(name.clone()))
                    .and_then(|feed| feed.seen)
                    .filter(|seen| seen.offset > 0),
            })
            .collect()
    }

    /// How many users are present in `room` and how many sessions of this node are members:
    /// [`room_presence`](Self::room_presence) counted.
    pub fn room_counts(&self, room: &RoomName) -> (usize, usize) {
        self.rooms
            .get(room)
            .map_or((0, 0), |room| (room.present_count(), room.members.len()))
    }
}
