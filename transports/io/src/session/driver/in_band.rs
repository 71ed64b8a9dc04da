//! Tokens presented in band, checked before a request reaches the hub: a `join`'s
//! subscription token admits the session to that room once, and a `refresh` renews the
//! session's credentials (its grants and its expiry) or is refused, leaving them as they were.

use std::time::Instant;

use roomcast_core::delivery::Delivery;
use roomcast_core::envelope::{
    ClientEnvelope, ClientMessage, ErrorCode, Ref, Reply, ServerMessage,
};

use super::SessionDriver;
use crate::credentials::instant_of;
use crate::runtime::Runtime;
use crate::transport::Transport;

impl<R: Runtime, T: Transport> SessionDriver<R, T> {
    /// The request for the hub, or `None` once answered here.
    pub(super) fn vet(
        &mut self,
        request: ClientEnvelope,
        now: &mut Option<Instant>,
    ) -> Option<ClientEnvelope> {
        let Some(credentials) = self.credentials.clone() else {
            return Some(request);
        };
        let Some(user) = self.session.user().cloned() else {
            return Some(request);
        };
        match &request.message {
            ClientMessage::Join {
                room,
                token: Some(token),
                ..
            } => match credentials.0.subscription(&user, room, token) {
                Ok(()) => {
                    let _ = self.hub.admit(self.id, room.clone());
                    Some(request)
                }
                Err(why) => {
                    let why = format!("room {:?}: the subscription token {why}", room.as_str());
                    self.refuse(now, request.reference, why);
                    None
                }
            },
            ClientMessage::Refresh { token } => {
                match credentials.0.refresh(token) {
                    Ok(identity) if identity.user == user => {
                        let now = self.now(now);
                        let at = identity.expires.and_then(|at| instant_of(now, at));
                        self.session.set_expiry(now, at);
                        self.grants = identity.grants.clone();
                        let _ = self.hub.set_grants(self.id, identity.grants);
                        if let Some(reference) = request.reference {
                            let reply = ServerMessage::Reply(Reply::to(reference)).encode();
                            self.session.deliver(now, Delivery::unstreamed(reply));
                        }
                    }
                    Ok(identity) => {
                        let why = format!(
                            "the token is for {:?}, not {:?}",
                            identity.user.as_str(),
                            user.as_str()
                        );
                        self.refuse(now, request.reference, why);
                    }
                    Err(why) => self.refuse(now, request.reference, why),
                }
                None
            }
            _ => Some(request),
        }
    }

    /// Answers `unauthorized`.
    fn refuse(&mut self, now: &mut Option<Instant>, reference: Option<Ref>, why: String) {
        self.answer_error(now, reference, ErrorCode::Unauthorized, why);
    }

    /// Answers an error of the driver's own (a token, a hook) to the request of `reference`.
    pub(super) fn answer_error(
        &mut self,
        now: &mut Option<Instant>,
        reference: Option<Ref>,
        code: ErrorCode,
        message: String,
    ) {
        let now = self.now(now);
        let error = ServerMessage::Error {
            reference,
            code,
            message,
        };
        self.session
            .deliver(now, Delivery::unstreamed(error.encode()));
    }
}
