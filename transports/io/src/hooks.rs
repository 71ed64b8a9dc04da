//! The application's say on a `join` or a `publish`, asked by the server over the network (its
//! hooks): the session waits for the answer, reading no further frame from its client (so
//! requests are answered in order and a client cannot pile them up), then goes on with it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use roomcast_core::access::Grants;
use roomcast_core::envelope::Payload;
use roomcast_core::names::{RoomName, UserId};

/// What the application answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<T> {
    /// Go on, with this (for a publish: the data to publish instead, if any).
    Allow(T),
    /// Refused: `unauthorized`, with the application's reason.
    Deny(String),
    /// No answer (a timeout, an error, too many calls in flight): `unavailable`, to retry.
    Unavailable(String),
}

/// A hook call in flight.
pub type Pending<T> = Pin<Box<dyn Future<Output = Verdict<T>> + Send>>;

/// The hooks a server asks its application; `None`: no hook applies, the request goes on.
pub trait Hooks: Send + Sync {
    /// The call that asks whether `user` (with `grants`) may join `room`, where the
    /// application decides joins that nothing else admits.
    fn join(&self, user: &UserId, grants: &Grants, room: &RoomName) -> Option<Pending<()>>;

    /// The call that asks whether `user` may publish `data` to `room`, where the application
    /// sees every publish (and may publish other data instead).
    fn publish(
        &self,
        user: &UserId,
        room: &RoomName,
        data: &Payload,
    ) -> Option<Pending<Option<Payload>>>;
}

/// Shared [`Hooks`], for [`SessionOptions::hooks`](crate::SessionOptions::hooks).
#[derive(Clone)]
pub struct HooksRef(pub Arc<dyn Hooks>);

impl fmt::Debug for HooksRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HooksRef(..)")
    }
}
