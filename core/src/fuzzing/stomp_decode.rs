//! The STOMP decoder under any split, and every frame it gives through the encoder and back.

use crate::stomp::{
    DecodeError, Decoder, DecoderLimits, EncodeError, Frame, Version, encode_to_bytes,
};

/// The STOMP decoder. The input's first byte picks the version (bits 0-1: 0 is 1.0, 1 is 1.1,
/// 2 and 3 are 1.2) and, when bit 2 is set, small limits: `max_headers` from bits 3-7,
/// `max_line = byte1 + 1`, `max_frame = byte2 * 4 + 1` (else the defaults). Byte 3 is a count
/// of split points (up to 15), then two bytes (LE) per point; the rest is the stream.
///
/// Decoding it whole, split at those points and byte by byte must give the same frames,
/// heart-beat count and error; after each drain the decoder may hold no more than its limits
/// allow. Each frame must encode again (or be refused for an octet its version cannot write,
/// which it holds) and decode back to itself, within limits that are exactly its size.
pub fn stomp_decode(input: &[u8]) {
    let [mode, line, frame, count, rest @ ..] = input else {
        return;
    };
    let version = match mode & 3 {
        0 => Version::V1_0,
        1 => Version::V1_1,
        _ => Version::V1_2,
    };
    let limits = if mode & 4 == 0 {
        DecoderLimits::default()
    } else {
        DecoderLimits {
            max_frame: usize::from(*frame) * 4 + 1,
            max_headers: usize::from(mode >> 3),
            max_line: usize::from(*line) + 1,
        }
    };
    let (points, stream) = rest.split_at((usize::from(count % 16) * 2).min(rest.len()));
    let mut splits: Vec<usize> = points
        .chunks_exact(2)
        .map(|p| usize::from(u16::from_le_bytes([p[0], p[1]])) % (stream.len() + 1))
        .collect();
    splits.sort_unstable();
    let whole = decode_in(limits, version, [stream]);
    let pieces = splits
        .iter()
        .copied()
        .chain([stream.len()])
        .scan(0, |start, end| {
            Some(&stream[std::mem::replace(start, end)..end])
        });
    assert_eq!(
        decode_in(limits, version, pieces),
        whole,
        "split at {splits:?}"
    );
    assert_eq!(
        decode_in(limits, version, stream.chunks(1)),
        whole,
        "one byte at a time"
    );
    for frame in &whole.0 {
        reencode(frame, version);
    }
}

type Outcome = (Vec<Frame>, u64, Option<DecodeError>);

fn decode_in<'a>(
    limits: DecoderLimits,
    version: Version,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Outcome {
    let mut decoder = Decoder::new(limits).with_version(version);
    let mut frames = Vec::new();
    for piece in pieces {
        decoder.handle_bytes(piece);
        loop {
            match decoder.poll_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, decoder.heartbeats(), Some(error)),
            }
        }
        let bound = limits.max_frame.max(limits.max_line + 1);
        assert!(
            decoder.buffered_len() <= bound,
            "{} bytes held, over {bound}",
            decoder.buffered_len()
        );
    }
    (frames, decoder.heartbeats(), None)
}

/// The frame encodes and decodes back to itself, or holds what its version cannot write.
fn reencode(frame: &Frame, version: Version) {
    let bytes = match encode_to_bytes(frame, version) {
        Ok(bytes) => bytes,
        Err(EncodeError::Unencodable { byte }) => {
            // Only where nothing, or no CR, is escaped: the decoder took the octet literally.
            let literal = frame.command.is_literal() || version == Version::V1_0;
            assert!(literal || (version == Version::V1_1 && byte == b'\r'));
            let held = frame.headers.iter().any(|(name, value)| {
                name.as_bytes().contains(&byte) || value.as_bytes().contains(&byte)
            });
            assert!(held, "{frame:?} refused for {byte:#04x} it does not hold");
            return;
        }
        Err(error) => panic!("{frame:?} decoded but cannot be encoded: {error}"),
    };
    // The encoder adds content-length to frames that may have a body.
    let headers = frame.headers.len() + usize::from(frame.command.allows_body());
    let limits = DecoderLimits {
        max_frame: bytes.len(),
        max_headers: headers,
        max_line: bytes.len(),
    };
    let (frames, heartbeats, error) = decode_in(limits, version, [&bytes[..]]);
    assert_eq!(error, None, "{frame:?} as {bytes:?}");
    assert_eq!(frames, std::slice::from_ref(frame), "{bytes:?}");
    assert_eq!(heartbeats, 0);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::stomp_decode;

    /// Bytes near the STOMP grammar, where the decoder's branches are.
    fn stomp_like() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"SEND\n".to_vec()),
            Just(b"CONNECT\r\n".to_vec()),
            Just(b"MESSAGE\n".to_vec()),
            Just(b"SUBSCRIBE\n".to_vec()),
            Just(b"content-length:".to_vec()),
            Just(b"3".to_vec()),
            Just(b"a:b".to_vec()),
            Just(b":".to_vec()),
            Just(b"\\".to_vec()),
            Just(b"\\c".to_vec()),
            Just(b"\\r".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\0".to_vec()),
            Just(b"\xFF\xC3".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn the_body_holds_near_the_grammar(
            head in proptest::collection::vec(any::<u8>(), 4),
            stream in stomp_like(),
        ) {
            stomp_decode(&[head, stream].concat());
        }
    }

    #[test]
    fn the_body_holds_on_chosen_streams() {
        let streams: [&[u8]; 6] = [
            b"",
            b"\x02\x00\x00\x00CONNECT\naccept-version:1.2\nhost:h\n\n\0",
            // 1.0: a raw CR in a value decodes, and cannot be written back.
            b"\x00\x00\x00\x00SEND\na:x\ry\n\n\0",
            // 1.1, split inside the CRLF and the escape.
            b"\x01\x00\x00\x02\x05\x00\x0e\x00SEND\r\na:\\c\\n\n\nbody\0\n",
            // Small limits: max_headers 1, max_line 4, max_frame 17.
            b"\x0e\x03\x04\x00SEND\na:b\n\nbody\0",
            b"\x0e\x03\x04\x00SEND\na:b\nc:d\n\n\0",
        ];
        for stream in streams {
            stomp_decode(stream);
        }
    }

    /// Every committed seed, as `tests/tests/fuzz_bodies.rs` runs those of the other targets.
    #[test]
    fn every_seed_passes() {
        let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/stomp_decode");
        let mut seeds = 0;
        for entry in std::fs::read_dir(corpus).expect("the corpus folder") {
            let path = entry.expect("an entry").path();
            let name = path.file_name().expect("a name").to_string_lossy();
            if name.starts_with("seed-") {
                stomp_decode(&std::fs::read(&path).expect("a seed"));
                seeds += 1;
            }
        }
        assert!(seeds >= 10, "only {seeds} seeds");
    }
}
