//! The sessions' mailboxes: where the hub's transmits go, never waiting.

use std::sync::Arc;
use std::time::Instant;

use roomcast_core::close::Close;
use roomcast_core::delivery::SessionId;
use roomcast_core::hub::{Hub, Transmit, recipients};

use crate::mailbox::{Mailbox, Pushed};

/// The sessions' mailboxes, indexed by `SessionId::index`.
#[derive(Default)]
pub(super) struct Mailboxes {
    slots: Vec<Option<(SessionId, Arc<Mailbox>)>>,
    /// Sessions whose mailbox was full during the last drain: slow consumers.
    full: Vec<SessionId>,
    /// Sessions whose task ended, seen during the last drain.
    gone: Vec<SessionId>,
    pub(super) slow_consumers: u64,
}

impl Mailboxes {
    pub(super) fn insert(&mut self, session: SessionId, mailbox: Arc<Mailbox>) {
        let index = session.index();
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some((session, mailbox));
    }

    pub(super) fn remove(&mut self, session: SessionId) {
        if let Some(slot) = self.slots.get_mut(session.index())
            && slot.as_ref().is_some_and(|(id, _)| *id == session)
            && let Some((_, mailbox)) = slot.take()
        {
            mailbox.drop_session(); // its task stops waiting for deliveries
        }
    }

    /// As [`remove`](Self::remove), the session to end with `close`.
    pub(super) fn remove_with(&mut self, session: SessionId, close: Close) {
        if let Some(slot) = self.slots.get_mut(session.index())
            && slot.as_ref().is_some_and(|(id, _)| *id == session)
            && let Some((_, mailbox)) = slot.take()
        {
            mailbox.drop_session_with(close);
        }
    }

    /// Never waits: a full mailbox marks the session as a slow consumer.
    fn deliver(&mut self, session: SessionId, push: impl FnOnce(&Mailbox) -> Pushed) {
        let Some(Some((id, mailbox))) = self.slots.get(session.index()) else {
            return; // gone since the fan-out was made
        };
        if *id != session {
            return;
        }
        match push(mailbox) {
            Pushed::Ok => {}
            Pushed::Full => self.full.push(session),
            // The session's task ended; its disconnect is on its way, or this makes it.
            Pushed::Gone => self.gone.push(session),
        }
    }

    /// Hands every output of the hub to the mailboxes, then drops the sessions that could not
    /// keep up; dropping one may produce more outputs, so until nothing is left.
    pub(super) fn route(&mut self, hub: &mut Hub, now: Instant) {
        loop {
            while let Some(transmit) = hub.poll_transmit() {
                match transmit {
                    Transmit::To {
                        session,
                        deliveries,
                    } => self.deliver(session, |mailbox| mailbox.push_batch(deliveries)),
                    Transmit::Fanout {
                        sessions,
                        except,
                        delivery,
                    } => {
                        for session in recipients(&sessions, except) {
                            let delivery = delivery.clone();
                            self.deliver(session, |mailbox| mailbox.push_one(delivery));
                        }
                    }
                    _ => {}
                }
            }
            if self.full.is_empty() && self.gone.is_empty() {
                return;
            }
            self.slow_consumers += self.full.len() as u64;
            for session in std::mem::take(&mut self.full)
                .into_iter()
                .chain(std::mem::take(&mut self.gone))
            {
                self.remove(session);
                hub.disconnect(now, session);
            }
        }
    }
}
