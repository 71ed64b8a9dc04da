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

/// Bytes near the STOMP grammar: commands, headers, escapes, line ends, NULs.
fn stomp_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"SEND\n".to_vec()),
        Just(b"CONNECT\r\n".to_vec()),
        Just(b"MESSAGE\n".to_vec()),
        Just(b"destination:/topic/a\n".to_vec()),
        Just(b"content-length:3\n".to_vec()),
        Just(b"content-length:x\n".to_vec()),
        Just(b"a\\cb:c\\nd\\\\\n".to_vec()),
        Just(b"\\t".to_vec()),
        Just(b":".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\0".to_vec()),
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
    fn stomp_decode_body_holds(head in proptest::collection::vec(any::<u8>(), 4), stream in stomp_like()) {
        fuzzing::stomp_decode(&[head, stream].concat());
    }

    #[test]
    fn envelope_decode_body_holds_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzzing::envelope_decode(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn session_ops_body_holds(program in proptest::collection::vec(any::<u8>(), 0..1500)) {
        fuzzing::session_ops(&program);
    }

    #[test]
    fn hub_ops_body_holds(program in proptest::collection::vec(any::<u8>(), 0..1500)) {
        fuzzing::hub_ops(&program);
    }
}

/// Every committed seed (`fuzz/corpus/<target>/seed-*`) through its target's body: the seeds
/// are the unit tests' scenarios, so this replays them on stable in every `cargo test`.
#[test]
fn every_seed_passes_its_target() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    type Body = fn(&[u8]);
    let targets: [(&str, Body); 5] = [
        ("sse_decode", fuzzing::sse_decode),
        ("envelope_decode", fuzzing::envelope_decode),
        ("session_ops", fuzzing::session_ops),
        ("hub_ops", fuzzing::hub_ops),
        ("stomp_decode", fuzzing::stomp_decode),
    ];
    for (target, body) in targets {
        let mut seeds = 0;
        for entry in std::fs::read_dir(corpus.join(target)).expect("the corpus folder") {
            let path = entry.expect("an entry").path();
            let name = path.file_name().expect("a name").to_string_lossy();
            if name.starts_with("seed-") {
                body(&std::fs::read(&path).expect("a seed"));
                seeds += 1;
            }
        }
        assert!(seeds >= 10, "{target}: only {seeds} seeds");
    }
}
