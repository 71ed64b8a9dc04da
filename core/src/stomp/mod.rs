//! STOMP 1.2 frames (<https://stomp.github.io/stomp-specification-1.2.html>), and 1.0 and 1.1.
//!
//! [`Frame`]s with their [`Command`] and ordered [`Headers`]; [`Version::negotiate`] and
//! [`HeartBeat::negotiate`] read a `CONNECT` frame's `accept-version` and `heart-beat`. All of
//! it is pure: no IO, no clock.

mod frame;
mod heart_beat;
mod version;

pub use frame::{Command, Frame, Headers};
pub use heart_beat::{BadHeartBeat, HeartBeat, HeartBeats};
pub use version::Version;
