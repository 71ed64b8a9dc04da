//! A session's credentials that end: the `expiring` notice, then the close with 4003, unless a
//! `refresh` moved the deadline.

use std::time::Instant;

use super::{Session, SessionState, millis};
use crate::close::{Close, CloseCode};
use crate::envelope::ServerMessage;

/// When a session's credentials expire, and when it is told first (`None` once told).
#[derive(Clone, Copy, Debug)]
pub(super) struct Expiry {
    warn_at: Option<Instant>,
    at: Instant,
}

impl Session {
    /// The session's credentials expire at `at` (`None`: never). An `expiring` message goes
    /// out `config.expiry_warning` before (halfway there, if that is sooner), and at `at` the
    /// session closes with 4003 unless a later call (a `refresh`) moved the deadline. Ignored
    /// unless open; a deadline already past closes at once.
    pub fn set_expiry(&mut self, now: Instant, at: Option<Instant>) {
        if self.state != SessionState::Open {
            return;
        }
        self.expiry = at.map(|at| {
            let left = at.saturating_duration_since(now);
            let ahead = self.config.expiry_warning.min(left / 2);
            Expiry {
                warn_at: (!ahead.is_zero()).then(|| at - ahead),
                at,
            }
        });
        self.handle_timeout(now);
    }

    /// What of the expiry is due at `now`: the notice, or the close (then true).
    pub(super) fn expiry_due(&mut self, now: Instant) -> bool {
        let Some(expiry) = &mut self.expiry else {
            return false;
        };
        if expiry.at <= now {
            let close = Close::new(CloseCode::Unauthorized, "the token has expired");
            self.close_with(now, close);
            return true;
        }
        if expiry.warn_at.is_some_and(|warn| warn <= now) {
            expiry.warn_at = None;
            let in_ms = millis(expiry.at - now);
            self.send(now, ServerMessage::Expiring { in_ms }.encode());
        }
        false
    }

    /// The expiry's next deadline.
    pub(super) fn expiry_timeout(&self) -> Option<Instant> {
        self.expiry
            .as_ref()
            .map(|expiry| expiry.warn_at.unwrap_or(expiry.at))
    }
}
