//! What a server's own API asks of the shared hub besides one message at a time: reads of a
//! stream, a room's presence, a user's sessions and their disconnection, and batches of
//! messages.

use roomcast_core::close::Close;
use roomcast_core::cursor::Position;
use roomcast_core::delivery::SessionId;
use roomcast_core::engine::StreamId;
use roomcast_core::envelope::Payload;
use roomcast_core::hub::{
    HubError, MemberPresence, Published, RoomSummary, StreamPage, Ticket, UserSession,
};
use roomcast_core::names::{RoomName, UserId};
use smol_str::SmolStr;

use super::engine::Answer;
use super::{HubGone, HubHandle};

/// Where a message of a batch goes ([`HubHandle::publish_batch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// A room, as [`HubHandle::publish_event`].
    Room(RoomName),
    /// A user's outbox, as [`HubHandle::notify`].
    User(UserId),
    /// The broadcast feed, as [`HubHandle::broadcast`].
    Broadcast,
}

impl HubHandle {
    /// Reads `stream` through the engine: its view and at most `max` records after `after`
    /// ([`Hub::read_stream`](roomcast_core::hub::Hub::read_stream)).
    pub async fn read(
        &self,
        stream: StreamId,
        after: Option<Position>,
        max: usize,
    ) -> Result<Result<StreamPage, HubError>, HubGone> {
        match self
            .answer(|hub, _| hub.read_stream(stream, after, max))
            .await?
        {
            Answer::Read(result) => Ok(result),
            Answer::Stored(_) => unreachable!("a read is answered by a read"),
        }
    }

    /// The users present in `room` as this node's hub holds them
    /// ([`Hub::room_presence`](roomcast_core::hub::Hub::room_presence)).
    pub async fn room_presence(&self, room: &RoomName) -> Result<Vec<MemberPresence>, HubGone> {
        self.with(|state, _| state.hub.room_presence(room))
    }

    /// How many users are present in `room`, and how many of this node's sessions are in it
    /// ([`Hub::room_counts`](roomcast_core::hub::Hub::room_counts)).
    pub async fn room_counts(&self, room: &RoomName) -> Result<(usize, usize), HubGone> {
        self.with(|state, _| state.hub.room_counts(room))
    }

    /// A page of the rooms with members on this node, in name order, after `after`
    /// ([`Hub::rooms_page`](roomcast_core::hub::Hub::rooms_page)).
    pub async fn rooms_page(
        &self,
        after: Option<&RoomName>,
        limit: usize,
    ) -> Result<Vec<RoomSummary>, HubGone> {
        self.with(|state, _| state.hub.rooms_page(after, limit))
    }

    /// The sessions of `user` on this node, each with its rooms
    /// ([`Hub::user_sessions`](roomcast_core::hub::Hub::user_sessions)).
    pub async fn user_sessions(&self, user: &UserId) -> Result<Vec<UserSession>, HubGone> {
        self.with(|state, _| state.hub.user_sessions(user))
    }

    /// Disconnects the sessions of `user` on this node (only `session`, when given): each leaves
    /// the hub at once and its connection closes with `close` (a WebSocket's close frame; an
    /// SSE stream or a long-poll ends). Returns how many.
    pub async fn disconnect_user(
        &self,
        user: &UserId,
        session: Option<SessionId>,
        close: Close,
    ) -> Result<usize, HubGone> {
        self.with(|state, now| {
            let sessions: Vec<SessionId> = state
                .hub
                .user_sessions(user)
                .into_iter()
                .map(|s| s.session)
                .filter(|s| session.is_none_or(|only| only == *s))
                .collect();
            for &session in &sessions {
                state.mailboxes.remove_with(session, close.clone());
                state.hub.disconnect(now, session);
            }
            sessions.len()
        })
    }

    /// Publishes every message of `messages` (its target, `event` name and data), handed to the
    /// hub together and in order, so that messages to one stream are stored in that order and
    /// an engine that commits in groups commits them together; returns each one's result in
    /// its place once all are in.
    pub async fn publish_batch(
        &self,
        messages: Vec<(Outgoing, Option<SmolStr>, Payload)>,
    ) -> Result<Vec<Result<Published, HubError>>, HubGone> {
        let tickets = self.with(|state, now| {
            let tickets: Vec<Ticket> = messages
                .into_iter()
                .map(|(to, event, data)| match to {
                    Outgoing::Room(room) => state.hub.publish_event(now, room, event, data),
                    Outgoing::User(user) => state.hub.notify(now, user, event, data),
                    Outgoing::Broadcast => state.hub.broadcast(now, event, data),
                })
                .collect();
            for &ticket in &tickets {
                state.results.expect(ticket);
            }
            tickets
        })?;
        let mut waiting = WaitingAll {
            handle: self,
            tickets,
            results: Vec::new(),
        };
        waiting.results.resize_with(waiting.tickets.len(), || None);
        loop {
            // Listen before looking, so a result that comes in between is not missed.
            let listener = self.shared.done.listen();
            {
                let mut state = self.lock()?;
                for (ticket, slot) in waiting.tickets.iter().zip(&mut waiting.results) {
                    if slot.is_none()
                        && let Some(Answer::Stored(result)) = state.results.take(*ticket)
                    {
                        *slot = Some(result);
                    }
                }
            }
            if waiting.results.iter().all(Option::is_some) {
                let results = std::mem::take(&mut waiting.results);
                return Ok(results.into_iter().flatten().collect());
            }
            listener.await;
        }
    }
}

/// A caller waiting for a batch's results; dropped, the tickets still waited for leave the
/// results.
struct WaitingAll<'a> {
    handle: &'a HubHandle,
    tickets: Vec<Ticket>,
    results: Vec<Option<Result<Published, HubError>>>,
}

impl Drop for WaitingAll<'_> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.handle.lock() {
            for (ticket, result) in self.tickets.iter().zip(&self.results) {
                if result.is_none() {
                    state.results.abandon(*ticket);
                }
            }
        }
    }
}
