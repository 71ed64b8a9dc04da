//! Streams beyond rooms: user outboxes (direct messages, notifications) and the broadcast feed.

use std::time::Instant;

use smol_str::SmolStr;

use super::ops::Waiter;
use super::{Hub, Refusal, Ticket};
use crate::delivery::SessionId;
use crate::engine::{Message, OpId, Origin, Record, StreamId};
use crate::envelope::{Payload, Ref};
use crate::names::UserId;

impl Hub {
    /// `direct` from a session: stored in the recipient's outbox, then delivered to their
    /// sessions; the reply says whether one of them was here to get it.
    pub(super) fn direct(
        &mut self,
        now: Instant,
        session: SessionId,
        reference: Option<&Ref>,
        to: UserId,
        data: Payload,
    ) -> Result<(), Refusal> {
        let from = self
            .slots
            .get(session)
            .expect("checked by the caller")
            .user
            .clone();
        // The append's number is set as it is sent.
        let origin = Some(Origin {
            node: self.config.node,
            session,
            op: OpId(0),
        });
        let waiter = Waiter::Direct {
            session,
            reference: reference.cloned(),
            to: to.clone(),
            online: false,
        };
        self.store_in_outbox(now, waiter, origin, to, Message::Direct { from, data });
        Ok(())
    }

    /// Stores a message in `user`'s outbox for `waiter`; it reaches each of their sessions.
    pub(super) fn store_in_outbox(
        &mut self,
        now: Instant,
        waiter: Waiter,
        origin: Option<Origin>,
        user: UserId,
        message: Message,
    ) {
        let record = Record::new(0, origin, message);
        let retention = self.config.outbox_history;
        self.append(now, StreamId::Outbox(user), record, retention, waiter);
    }

    /// Stores a broadcast; it reaches every session following the feed.
    pub(super) fn broadcast_message(
        &mut self,
        now: Instant,
        ticket: Ticket,
        event: Option<SmolStr>,
        data: Payload,
    ) {
        let record = Record::new(0, None, Message::Broadcast { event, data });
        let retention = self.config.broadcast_history;
        let waiter = Waiter::Api(ticket, StreamId::Broadcast);
        self.append(now, StreamId::Broadcast, record, retention, waiter);
    }
}
