//! A request waiting for the application's hook: parked while the call is in flight (the
//! session reads no further frame meanwhile), then refused or handed to the hub, admitted.

use std::task::{Context, Poll};
use std::time::Instant;

use roomcast_core::envelope::{ClientEnvelope, ClientMessage, ErrorCode, Payload};

use super::SessionDriver;
use crate::hooks::{Pending, Verdict};
use crate::runtime::Runtime;
use crate::transport::Transport;

/// A request and the hook call it waits for.
pub(super) struct Waiting {
    request: ClientEnvelope,
    call: Call,
}

enum Call {
    Join(Pending<()>),
    Publish(Pending<Option<Payload>>),
}

impl<R: Runtime, T: Transport> SessionDriver<R, T> {
    /// Parks `request` if a hook decides it (`None`), else hands it back.
    pub(super) fn ask(&mut self, request: ClientEnvelope) -> Option<ClientEnvelope> {
        let Some(hooks) = self.hooks.clone() else {
            return Some(request);
        };
        let user = self.session.user()?.clone();
        let call = match &request.message {
            // A join with a subscription token is admitted by it (or refused), not asked.
            ClientMessage::Join {
                room, token: None, ..
            } => hooks.0.join(&user, &self.grants, room).map(Call::Join),
            ClientMessage::Publish { room, data } => {
                hooks.0.publish(&user, room, data).map(Call::Publish)
            }
            _ => None,
        };
        match call {
            Some(call) => {
                self.waiting = Some(Box::new(Waiting { request, call }));
                None
            }
            None => Some(request),
        }
    }

    /// The parked request's verdict, once the call answered: true if anything moved.
    pub(super) fn drive_hook(&mut self, cx: &mut Context<'_>, now: &mut Option<Instant>) -> bool {
        let Some(waiting) = self.waiting.as_mut() else {
            return false;
        };
        let verdict = match &mut waiting.call {
            Call::Join(call) => match call.as_mut().poll(cx) {
                Poll::Pending => return false,
                Poll::Ready(verdict) => verdict.map(|()| None),
            },
            Call::Publish(call) => match call.as_mut().poll(cx) {
                Poll::Pending => return false,
                Poll::Ready(verdict) => verdict,
            },
        };
        let Waiting { mut request, .. } = *self.waiting.take().expect("checked");
        match verdict {
            Verdict::Allow(instead) => {
                match &mut request.message {
                    ClientMessage::Join { room, .. } => {
                        let _ = self.hub.admit(self.id, room.clone());
                    }
                    ClientMessage::Publish { room, data } => {
                        if let Some(instead) = instead {
                            *data = instead;
                        }
                        let _ = self.hub.admit_publish(self.id, room.clone());
                    }
                    _ => {}
                }
                self.forward(request, now);
            }
            Verdict::Deny(why) => {
                let code = ErrorCode::Unauthorized;
                self.answer_error(now, request.reference, code, why);
            }
            Verdict::Unavailable(why) => {
                self.answer_error(now, request.reference, ErrorCode::Unavailable, why);
            }
        }
        true
    }
}

impl<T> Verdict<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Verdict<U> {
        match self {
            Self::Allow(value) => Verdict::Allow(f(value)),
            Self::Deny(why) => Verdict::Deny(why),
            Self::Unavailable(why) => Verdict::Unavailable(why),
        }
    }
}
