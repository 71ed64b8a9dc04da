//! STOMP 1.2 frames (<https://stomp.github.io/stomp-specification-1.2.html>), and 1.0 and 1.1.
//!
//! [`Decoder`] turns bytes, split anywhere, into [`Frame`]s, bounded by [`DecoderLimits`];
//! [`encode`] writes a frame back; [`PreparedMessage`] encodes a `MESSAGE` once for many
//! subscribers. [`Version::negotiate`] and [`HeartBeat::negotiate`] read a `CONNECT` frame's
//! `accept-version` and `heart-beat`. All of it is pure: no IO, no clock.
//!
//! A server's first exchange:
//!
//! ```
//! use bytes::BytesMut;
//! use roomcast_core::stomp::{encode, Command, Decoder, DecoderLimits, Frame, HeartBeat, Version};
//!
//! let mut decoder = Decoder::new(DecoderLimits::default());
//! decoder.handle_bytes(b"CONNECT\naccept-version:1.1,1.2\nheart-beat:0,10000\nhost:a\n\n\0");
//! let connect = decoder.poll_frame()?.expect("a whole frame");
//! assert_eq!(connect.command, Command::Connect);
//!
//! let Some(version) = Version::negotiate(connect.headers.get("accept-version"), &Version::ALL)
//! else {
//!     unreachable!("no common version: answer ERROR and close");
//! };
//! decoder.set_version(version); // the frames after CONNECT are read by its rules
//! let ours = HeartBeat::new(10_000, 0);
//! let Ok(theirs) = HeartBeat::parse(connect.headers.get("heart-beat")) else {
//!     unreachable!("a bad heart-beat header: answer ERROR and close");
//! };
//! let beats = ours.negotiate(theirs); // send an EOL every 10 s when idle, expect nothing
//! assert_eq!(beats.send, Some(std::time::Duration::from_secs(10)));
//!
//! let connected = Frame::new(Command::Connected)
//!     .header("version", version.as_str())
//!     .header("heart-beat", ours.header_value());
//! let mut out = BytesMut::new();
//! encode(&connected, version, &mut out)?;
//! assert_eq!(&out[..], b"CONNECTED\nversion:1.2\nheart-beat:10000,0\n\n\0");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bridge;
mod decoder;
mod encoder;
mod escape;
mod frame;
mod heart_beat;
mod version;

pub use decoder::{DecodeError, Decoder, DecoderLimits};
pub use encoder::{EncodeError, PreparedMessage, encode, encode_to_bytes};
pub use frame::{Command, Frame, Headers};
pub use heart_beat::{BadHeartBeat, HeartBeat, HeartBeats};
pub use version::Version;

#[cfg(test)]
mod props;
