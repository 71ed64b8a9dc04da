//! STOMP 1.2 frames (<https://stomp.github.io/stomp-specification-1.2.html>), and 1.0 and 1.1.
//!
//! [`Decoder`] turns bytes, split anywhere, into [`Frame`]s, bounded by [`DecoderLimits`].
//! [`Version::negotiate`] and [`HeartBeat::negotiate`] read a `CONNECT` frame's
//! `accept-version` and `heart-beat`. All of it is pure: no IO, no clock.

mod decoder;
mod escape;
mod frame;
mod heart_beat;
mod version;

pub use decoder::{DecodeError, Decoder, DecoderLimits};
pub use frame::{Command, Frame, Headers};
pub use heart_beat::{BadHeartBeat, HeartBeat, HeartBeats};
pub use version::Version;
