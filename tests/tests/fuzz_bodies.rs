//! The core's fuzz target bodies under proptest, so every `cargo test` runs them on stable,
//! without cargo-fuzz.

use proptest::prelude::*;
use roomcast_core::fuzzing;

/// Bytes near the SSE grammar, where the decoder's branches are.
fn sse_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data:".to_vec()),
        Just(b"data: ".to_vec()),
        Just(b"id:".to_vec()),
        Just(b"event:".to_vec()),
        Just(b"retry:".to_vec()),
        Just(b":".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xFF\xC0\xE2\x82\0".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sse_decode_body_holds(head in proptest::collection::vec(any::<u8>(), 3), stream in sse_like()) {
        fuzzing::sse_decode(&[head, stream].concat());
    }

    #[test]
    fn envelope_decode_body_holds(text in r#"\{("(type|ref|room|data|since|to|typing)":(1|-1|"[a-z]{0,3}"|"join"|"publish"|null|true|\[\]|\{\}),?){0,6}\}?"#) {
        fuzzing::envelope_decode(text.as_bytes());
    }

    #[test]
    fn envelope_decode_body_holds_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzzing::envelope_decode(&bytes);
    }
}
