//! The namespaces' policies as the hub keeps them: admissions a driver proved (a subscription
//! token, the application's hook), renewed grants, and each room's presence and history.

use std::sync::Arc;

use super::slots::Admission;
use super::{HistoryLimit, Hub, HubError};
use crate::access::{Access, Grants};
use crate::delivery::SessionId;
use crate::names::RoomName;

impl Hub {
    /// Whether a connection with `access` may follow `rooms` from the start (an SSE stream's,
    /// a long-poll's).
    pub(super) fn may_enter(&self, access: &Access, rooms: &[RoomName]) -> Result<(), HubError> {
        for room in rooms {
            let admitted = access.admitted.contains(room);
            self.config
                .namespaces
                .may_join(&access.grants, room, admitted)
                .map_err(HubError::Unauthorized)?;
        }
        Ok(())
    }

    /// A subscription token or the application's hook admits `session` to `room`: its next
    /// `join` of it passes the namespace's `token` or `hook` rule. At most
    /// `max_rooms_per_session` admissions wait at once per session (the oldest goes). Unknown
    /// sessions are ignored.
    pub fn admit(&mut self, session: SessionId, room: RoomName) {
        self.add_admission(session, Admission::Join, room);
    }

    /// The application's hook allowed `session`'s next publish to `room` (a namespace whose
    /// publish rule is `hook`). Bounded as [`admit`](Self::admit).
    pub fn admit_publish(&mut self, session: SessionId, room: RoomName) {
        self.add_admission(session, Admission::Publish, room);
    }

    fn add_admission(&mut self, session: SessionId, kind: Admission, room: RoomName) {
        let limit = self.config.max_rooms_per_session.max(1);
        if let Some(slot) = self.slots.get_mut(session) {
            if slot.admitted.len() >= limit {
                slot.admitted.remove(0);
            }
            slot.admitted.push((kind, room));
        }
    }

    /// A session's credentials were renewed (an in-band `refresh`): its later joins and
    /// publishes are judged by `grants`. Rooms it is in already stay joined.
    pub fn set_grants(&mut self, session: SessionId, grants: Arc<Grants>) {
        if let Some(slot) = self.slots.get_mut(session) {
            slot.grants = grants;
        }
    }

    /// The history kept for `room`: its namespace's, else the hub's.
    pub(super) fn room_history(&self, room: &RoomName) -> HistoryLimit {
        let namespace = self.config.namespaces.get(room).ok();
        namespace
            .and_then(|namespace| namespace.history)
            .unwrap_or(self.config.room_history)
    }

    /// Whether members of `room` see each other.
    pub(super) fn presence_on(&self, room: &RoomName) -> bool {
        self.config
            .namespaces
            .get(room)
            .is_ok_and(|namespace| namespace.presence)
    }
}
