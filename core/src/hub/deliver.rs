//! Queueing deliveries: answers to one session, and fan-out of one shared delivery to many.

use std::time::Instant;

use super::slots::{Budget, Slots};
use super::{Hub, Refusal};
use crate::delivery::{Delivery, SessionId, Shared};
use crate::envelope::{ErrorCode, Ref, Reply, ServerMessage};

impl Hub {
    pub(super) fn budget(&self) -> Budget {
        Budget {
            bytes: self.config.queue_bytes,
            frames: self.config.queue_frames,
        }
    }

    /// Queues a `reply` built for `reference`, if the request had one.
    pub(super) fn answer(
        &mut self,
        now: Instant,
        session: SessionId,
        reference: Option<&Ref>,
        reply: impl FnOnce(Ref) -> Reply,
    ) {
        if let Some(reference) = reference {
            let frame = ServerMessage::Reply(reply(reference.clone())).encode();
            self.send(now, session, Delivery::unstreamed(frame));
        }
    }

    pub(super) fn queue_error(
        &mut self,
        now: Instant,
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
        self.send(now, session, Delivery::unstreamed(frame));
    }

    /// Queues one delivery for one session; over budget, the session is evicted.
    pub(super) fn send(&mut self, now: Instant, session: SessionId, delivery: Shared) {
        let Some(index) = self.slots.get(session).map(|slot| slot.index) else {
            return;
        };
        if !self.slots.push(index, &delivery, self.budget()) {
            self.evict(now, index);
        }
    }

    /// Queues the messages a resume found, in order, as one batch (see `Slots::push_batch`).
    pub(super) fn replay(&mut self, now: Instant, session: SessionId, deliveries: Vec<Shared>) {
        let Some(index) = self.slots.get(session).map(|slot| slot.index) else {
            return;
        };
        if !self.slots.push_batch(index, deliveries, self.budget()) {
            self.evict(now, index);
        }
    }

    /// Evicts the sessions a fan-out found over budget.
    pub(super) fn evict_all(&mut self, now: Instant, overflow: Vec<u32>) {
        for index in overflow {
            if self.slots.is_live(index) {
                self.evict(now, index);
            }
        }
    }
}

/// Queues `delivery` for every session in `members` but `exclude`; returns how many got it.
/// Sessions over budget are collected in `overflow`, for the caller to evict afterwards.
pub(super) fn fan_out(
    slots: &mut Slots,
    budget: Budget,
    members: &[u32],
    delivery: &Shared,
    exclude: Option<u32>,
    overflow: &mut Vec<u32>,
) -> usize {
    let mut queued = 0;
    for &index in members {
        if Some(index) == exclude {
            continue;
        }
        if slots.push(index, delivery, budget) {
            queued += 1;
        } else {
            overflow.push(index);
        }
    }
    queued
}

/// The refusal for a room the session is not in.
pub(super) fn not_member(room: &str) -> Refusal {
    (
        ErrorCode::NotMember,
        format!("not a member of room {room:?}: join it first"),
    )
}
