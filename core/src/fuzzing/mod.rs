//! Fuzz target bodies, behind the `fuzzing` feature: cargo-fuzz (`fuzz/`), proptest and CI all
//! run these same functions, so a crash found by one replays in the others. Each panics only
//! when a promise of the crate is broken.

use crate::envelope::{ClientMessage, Codec, ServerMessage};
use crate::sse::{Decoder, DecoderLimits, OwnedEvent};

/// The SSE decoder: the input's first two bytes pick small limits (or the defaults), the next
/// one a chunk size; the rest is the stream. Decoding it whole, in chunks and byte by byte must
/// give the same events, last event id, reconnection time and error, and the decoder must never
/// hold more than its limits allow.
pub fn sse_decode(input: &[u8]) {
    let [a, b, c, stream @ ..] = input else {
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
    let chunk = usize::from(*c).max(1);
    let whole = decode_in(limits, stream, stream.len().max(1));
    assert_eq!(decode_in(limits, stream, chunk), whole, "chunks of {chunk}");
    assert_eq!(decode_in(limits, stream, 1), whole, "one byte at a time");
}

type Outcome = (
    Vec<OwnedEvent>,
    String,
    Option<u64>,
    Option<crate::sse::DecodeError>,
);

fn decode_in(limits: DecoderLimits, stream: &[u8], chunk: usize) -> Outcome {
    let mut decoder = Decoder::with_limits(limits);
    let mut events = Vec::new();
    for piece in stream.chunks(chunk) {
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
