//! Fuzz target bodies, behind the `fuzzing` feature: cargo-fuzz (`fuzz/`), proptest and CI all
//! run these same functions, so a crash found by one replays in the others. Each panics only
//! when a promise of the crate is broken.

mod hub_ops;
mod input;
mod session_ops;
mod stomp_decode;

pub use hub_ops::hub_ops;
pub use session_ops::session_ops;
pub use stomp_decode::stomp_decode;

use crate::envelope::{ClientMessage, Codec, ServerMessage};
use crate::sse::{Decoder, DecoderLimits, OwnedEvent};

/// The SSE decoder: the input's first two bytes pick small limits (or the defaults), the third
/// a count of split points (up to 15), then two bytes per split point; the rest is the stream.
/// Decoding it whole, split at those points and byte by byte must give the same events, last
/// event id, reconnection time and error, and the decoder must never hold more than its limits
/// allow.
pub fn sse_decode(input: &[u8]) {
    let [a, b, c, rest @ ..] = input else {
        return;
    };
    let limits = if a & 1 == 0 {
        DecoderLimits::default()
    } else {
        DecoderLimits {
            max_line: usize::from(*a >> 1) + 1,
            max_event: usize::from(*b) + 1,
        }
    };
    let (points, stream) = rest.split_at((usize::from(*c % 16) * 2).min(rest.len()));
    let mut splits: Vec<usize> = points
        .chunks_exact(2)
        .map(|p| usize::from(u16::from_le_bytes([p[0], p[1]])) % (stream.len() + 1))
        .collect();
    splits.sort_unstable();
    let whole = decode_in(limits, [stream]);
    let pieces = splits
        .iter()
        .copied()
        .chain([stream.len()])
        .scan(0, |start, end| {
            Some(&stream[std::mem::replace(start, end)..end])
        });
    assert_eq!(decode_in(limits, pieces), whole, "split at {splits:?}");
    assert_eq!(
        decode_in(limits, stream.chunks(1)),
        whole,
        "one byte at a time"
    );
}

type Outcome = (
    Vec<OwnedEvent>,
    String,
    Option<u64>,
    Option<crate::sse::DecodeError>,
);

fn decode_in<'a>(limits: DecoderLimits, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = Decoder::with_limits(limits);
    let mut events = Vec::new();
    for piece in pieces {
        let mut piece = piece;
        loop {
            match decoder.decode(&mut piece) {
                Ok(Some(event)) => events.push(event.into_owned()),
                Ok(None) => break,
                Err(error) => {
                    return (
                        events,
                        decoder.last_event_id().into(),
                        decoder.retry(),
                        Some(error),
                    );
                }
            }
            assert!(decoder.buffered_len() <= limits.max_line + limits.max_event);
        }
        assert!(
            piece.is_empty(),
            "decode returned None before using up its input"
        );
    }
    decoder.finish();
    (
        events,
        decoder.last_event_id().into(),
        decoder.retry(),
        None,
    )
}

/// The envelope decoder on any text: it never panics, an error's reply reads back as that
/// error, and a decoded message encodes to a frame that decodes to the same message.
pub fn envelope_decode(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let codec = Codec::new().with_max_frame(4096);
    match codec.decode_client(&text) {
        Ok(envelope) => {
            if !matches!(envelope.message, ClientMessage::App(_)) {
                assert_eq!(
                    codec.decode_client(&envelope.encode()).as_ref(),
                    Ok(&envelope)
                );
            }
        }
        Err(error) => {
            let reply = codec.decode_server(error.to_frame().as_str());
            let expected = ServerMessage::Error {
                reference: error.reference.clone(),
                code: error.code,
                message: error.message.clone(),
            };
            assert_eq!(reply, Ok(expected));
        }
    }
}
