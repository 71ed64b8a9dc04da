//! The hub's output: deliveries for one session, and fan-outs of one shared delivery to many.

use std::sync::Arc;

use super::{Hub, Members, Refusal, Transmit};
use crate::cursor::{Position, Stream};
use crate::delivery::{Delivery, SessionId, Shared};
use crate::engine::{Message, Record, StreamId};
use crate::envelope::{ErrorCode, Ref, Reply, ServerMessage};

impl Hub {
    /// Queues a `reply` built for `reference`, if the request had one.
    pub(super) fn answer(
        &mut self,
        session: SessionId,
        reference: Option<&Ref>,
        reply: impl FnOnce(Ref) -> Reply,
    ) {
        if let Some(reference) = reference {
            let frame = ServerMessage::Reply(reply(reference.clone())).encode();
            self.send(session, Delivery::unstreamed(frame));
        }
    }

    pub(super) fn queue_error(
        &mut self,
        session: SessionId,
        reference: Option<Ref>,
        code: ErrorCode,
        message: String,
    ) {
        let frame = ServerMessage::Error {
            reference,
            code,
            message,
        }
        .encode();
        self.send(session, Delivery::unstreamed(frame));
    }

    /// Queues one delivery for one session, after what is queued for it already.
    pub(super) fn send(&mut self, session: SessionId, delivery: Shared) {
        self.replay(session, vec![delivery]);
    }

    /// Queues deliveries for one session, in order, as one batch with any queued just before.
    /// A session gone meanwhile (an answer the engine gave after it left) gets nothing.
    pub(super) fn replay(&mut self, session: SessionId, mut deliveries: Vec<Shared>) {
        if self.slots.get(session).is_none() {
            return;
        }
        if let Some(Transmit::To {
            session: last,
            deliveries: queued,
        }) = self.transmits.back_mut()
            && *last == session
        {
            queued.append(&mut deliveries);
            return;
        }
        if !deliveries.is_empty() {
            self.transmits.push_back(Transmit::To {
                session,
                deliveries,
            });
        }
    }

    /// Queues `delivery` for every session in `sessions` but `except`, which the caller knows to
    /// be one of them. The member list is shared, not copied. Returns how many sessions it is for.
    pub(super) fn fan_out(
        &mut self,
        sessions: &Members,
        except: Option<SessionId>,
        delivery: Shared,
    ) -> usize {
        let count = sessions.len() - usize::from(except.is_some());
        if count > 0 {
            self.transmits.push_back(Transmit::Fanout {
                sessions: Arc::clone(sessions),
                except,
                delivery,
            });
        }
        count
    }
}

impl Hub {
    /// A record's delivery at `at` of `stream`: encoded the first time it is asked for, then
    /// kept with the record for every fan-out and replay.
    pub(super) fn delivery_of(&self, stream: &StreamId, at: Position, record: &Record) -> Shared {
        record.delivery(|message| encode(stream, at, message))
    }
}

/// A record's frame: what it says, where it is.
fn encode(stream: &StreamId, id: Position, message: &Message) -> Shared {
    let (frame, stream) = match (stream, message.clone()) {
        (StreamId::Room(room), Message::Room { from, event, data }) => {
            let room = room.clone();
            let message = ServerMessage::Message {
                room: room.clone(),
                id,
                from,
                event,
                data,
            };
            (message, Stream::Room(room))
        }
        (_, Message::Direct { from, data }) => {
            (ServerMessage::Direct { id, from, data }, Stream::User)
        }
        (_, Message::Notify { event, data }) => {
            (ServerMessage::Notify { id, event, data }, Stream::User)
        }
        (_, Message::Broadcast { event, data }) => {
            (ServerMessage::Broadcast { id, event, data }, Stream::All)
        }
        (_, Message::Receipt { from, upto }) => {
            (ServerMessage::Receipt { id, from, upto }, Stream::User)
        }
        // A room message on another stream: never appended so, but said as the stream's.
        (StreamId::Outbox(_), Message::Room { data, .. }) => (
            ServerMessage::Notify {
                id,
                event: None,
                data,
            },
            Stream::User,
        ),
        (StreamId::Broadcast, Message::Room { data, .. }) => (
            ServerMessage::Broadcast {
                id,
                event: None,
                data,
            },
            Stream::All,
        ),
    };
    Delivery::streamed(frame.encode(), stream, id)
}

/// The refusal for a room the session is not in.
pub(super) fn not_member(room: &str) -> Refusal {
    (
        ErrorCode::NotMember,
        format!("not a member of room {room:?}: join it first"),
    )
}
