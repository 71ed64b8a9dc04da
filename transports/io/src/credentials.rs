//! The tokens a session presents after it opened: a subscription token with a `join`, and a
//! fresh connection token with `refresh`. The server checks them (it holds the keys); the
//! session driver asks it and tells the hub and the session what it found.

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use roomcast_core::access::Identity;
use roomcast_core::names::{RoomName, UserId};

/// Checks tokens presented in band. Called on the session's task, inline: it must not block
/// (a signature check is fine; a network call is not).
pub trait Credentials: Send + Sync {
    /// Whether `token` admits `user` to `room` (a subscription token): `Err` says why not.
    fn subscription(&self, user: &UserId, room: &RoomName, token: &str) -> Result<(), String>;

    /// Who a fresh connection token names, what it grants and until when; `Err` says why it
    /// is refused. The driver refuses one that names another user.
    fn refresh(&self, token: &str) -> Result<Identity, String>;
}

/// A shared [`Credentials`], for [`SessionOptions::credentials`](crate::SessionOptions::credentials).
#[derive(Clone)]
pub struct CredentialsRef(pub Arc<dyn Credentials>);

impl fmt::Debug for CredentialsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialsRef(..)")
    }
}

/// The moment of the runtime's clock that `at` is, `now` standing for the wall clock's now;
/// `None` for a moment too far for an `Instant` (as good as never).
pub(crate) fn instant_of(now: Instant, at: SystemTime) -> Option<Instant> {
    match at.duration_since(SystemTime::now()) {
        Ok(ahead) => now.checked_add(ahead),
        Err(_) => Some(now),
    }
}
