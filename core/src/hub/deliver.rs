//! The hub's output: deliveries for one session, and fan-outs of one shared delivery to many.

use std::sync::Arc;

use super::{Hub, Members, Refusal, Transmit};
use crate::delivery::{Delivery, SessionId, Shared};
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
    pub(super) fn replay(&mut self, session: SessionId, mut deliveries: Vec<Shared>) {
        if let Some(Transmit::To {
            session: last,
            deliveries: queued,
        }) = self.transmits.back_mut()
        {
            if *last == session {
                queued.append(&mut deliveries);
                return;
            }
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

/// The refusal for a room the session is not in.
pub(super) fn not_member(room: &str) -> Refusal {
    (
        ErrorCode::NotMember,
        format!("not a member of room {room:?}: join it first"),
    )
}
