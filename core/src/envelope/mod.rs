//! Envelopes: the typed JSON messages of the roomcast protocol (`docs/protocol.md`, v1).
//!
//! Every frame is one JSON object with a `type` and an optional `ref`. [`Codec::decode_client`]
//! turns a client's frame into a [`ClientEnvelope`], or into an [`EnvelopeError`] that carries
//! the `ref` when one could be read, so the caller can answer it: bad input is answered, never
//! fatal. A [`ServerMessage`] is encoded once into a [`Frame`], which fan-out shares by pointer.
//!
//! ```
//! use roomcast_core::envelope::{ClientMessage, Codec, ErrorCode, Ref};
//!
//! let codec = Codec::new();
//! let join = codec.decode_client(r#"{"type":"join","ref":1,"room":"lobby"}"#).expect("valid");
//! assert_eq!(join.reference, Some(Ref::Number(1)));
//! assert!(matches!(join.message, ClientMessage::Join { ref room, since: None, .. } if &**room == "lobby"));
//!
//! let error = codec.decode_client(r#"{"type":"dance","ref":"a7"}"#).expect_err("unknown");
//! assert_eq!((error.code, error.reference.clone()), (ErrorCode::UnknownType, Some(Ref::from("a7"))));
//! let reply = error.to_frame();
//! assert_eq!(reply.as_str(), r#"{"type":"error","ref":"a7","code":"unknown_type","message":"unknown message type \"dance\""}"#);
//! ```

mod client;
mod codec;
mod frame;
mod safe_json;
pub mod samples;
mod server;
mod wire;

pub use client::{AppMessage, ClientEnvelope, ClientMessage};
pub use codec::{Codec, CodecError, DEFAULT_MAX_FRAME};
pub use frame::{
    EnvelopeError, ErrorCode, Frame, MAX_ERROR_MESSAGE, MAX_REF_LEN, Payload, Ref, message_type,
};
pub use safe_json::DEFAULT_MAX_DEPTH;
pub use server::{PROTOCOL_VERSION, PresenceChange, Reply, ServerMessage, StreamStart};
