//! Property tests of the SSE codec: invariants that must hold for any input and any chunking,
//! checked against a small model of the WHATWG "server-sent events" rules.

use proptest::prelude::*;
use proptest::sample::{Index, select};
use roomcast_core::sse::{
    DecodeError, Decoder, DecoderLimits, EncodeError, Fields, OwnedEvent, encode_comment,
};

/// One encoder call: an event block or a comment.
#[derive(Clone, Debug)]
enum Item {
    Block {
        id: Option<String>,
        event: Option<String>,
        data: Option<String>,
        retry: Option<u64>,
    },
    Comment(String),
}

/// What a whole decode produced; equal outcomes mean indistinguishable decodings.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<OwnedEvent>,
    last_id: String,
    retry: Option<u64>,
    error: Option<DecodeError>,
}

/// Unicode text biased towards what SSE treats specially (line ends, NUL, BOM, spaces) and
/// towards text that looks like fields, since that is where injection would happen.
fn text() -> impl Strategy<Value = String> {
    let special = select(vec![
        "\r",
        "\n",
        "\r\n",
        "\0",
        "\u{FEFF}",
        " ",
        ":",
        "data: x",
        "\nid: x\n",
        "\r\nevent: e\r",
        "\rretry: 1\r",
        "\n\n",
        "\r\r",
        "é",
    ]);
    let piece = prop_oneof![
        2 => any::<char>().prop_map(String::from),
        1 => special.prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// Text without CR, LF or NUL: a valid id (or event type) more often than `text()` gives one.
fn clean_text() -> impl Strategy<Value = String> {
    text().prop_map(|t| t.replace(['\r', '\n', '\0'], ""))
}

fn item() -> impl Strategy<Value = Item> {
    let field = || prop_oneof![text(), clean_text()];
    let block = (
        proptest::option::of(field()),
        proptest::option::of(field()),
        proptest::option::weighted(0.8, text()),
        proptest::option::weighted(0.2, any::<u64>()),
    )
        .prop_map(|(id, event, data, retry)| Item::Block {
            id,
            event,
            data,
            retry,
        });
    prop_oneof![4 => block, 1 => text().prop_map(Item::Comment)]
}

/// Bytes biased towards SSE syntax, BOMs and invalid UTF-8, with arbitrary bytes mixed in.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = select(vec![
        &b"data:"[..],
        b"id:",
        b"event:",
        b"retry:",
        b":",
        b" ",
        b"\r",
        b"\n",
        b"\r\n",
        b"\0",
        b"\xEF\xBB\xBF",
        b"\xFF",
        b"\xC0",
        b"\xE2\x82",
        b"7",
        b"x",
        // Whole lines, so that repeated fields and limits are reached often.
        b"event: chat\n",
        b"data: 0123456789\n",
    ]);
    let piece = prop_oneof![
        4 => token.prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 1..4),
    ];
    proptest::collection::vec(piece, 0..64).prop_map(|pieces| pieces.concat())
}

/// Limits below `max`, half the time tiny, so that streams of a few lines reach them.
fn small_limits(max: usize) -> impl Strategy<Value = DecoderLimits> {
    let limit = move || prop_oneof![1..16usize, 1..max];
    (limit(), limit()).prop_map(|(max_line, max_event)| DecoderLimits {
        max_line,
        max_event,
    })
}

/// Splits `bytes` at the given points (empty chunks included, to exercise empty input).
fn split<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut ends: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(bytes.len());
    let mut start = 0;
    let mut chunks = Vec::new();
    for end in ends {
        chunks.push(&bytes[start..end]);
        start = end;
    }
    chunks
}

/// Feeds `chunks` in order, stopping at the first error (it sticks anyway).
fn decode(mut decoder: Decoder, chunks: &[&[u8]]) -> Outcome {
    let mut events = Vec::new();
    let mut error = None;
    'chunks: for chunk in chunks {
        let mut input = *chunk;
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(event)) => events.push(event.into_owned()),
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) with {} bytes left", input.len());
                    break;
                }
                Err(e) => {
                    error = Some(e);
                    break 'chunks;
                }
            }
        }
    }
    Outcome {
        events,
        last_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
        error,
    }
}

/// The error `Fields::encode` must give: ids may not hold CR, LF or NUL, types not CR or LF.
fn refusal(id: Option<&str>, event: Option<&str>) -> Option<EncodeError> {
    if id.is_some_and(|id| id.contains(['\r', '\n', '\0'])) {
        Some(EncodeError::InvalidId)
    } else if event.is_some_and(|event| event.contains(['\r', '\n'])) {
        Some(EncodeError::InvalidEventType)
    } else {
        None
    }
}

/// Encodes `items` and returns the bytes with the outcome the spec predicts for them, starting
/// from `initial_id`. Refused blocks are checked to be refused, and then leave no trace.
fn encode_with_model(items: &[Item], initial_id: &str) -> (Vec<u8>, Outcome) {
    let mut bytes = Vec::new();
    let mut model = Outcome {
        events: Vec::new(),
        last_id: initial_id.to_owned(),
        retry: None,
        error: None,
    };
    for item in items {
        let fields = match item {
            Item::Comment(text) => {
                encode_comment(&mut bytes, text);
                continue;
            }
            Item::Block {
                id,
                event,
                data,
                retry,
            } => Fields {
                id: id.as_deref(),
                event: event.as_deref(),
                data: data.as_deref(),
                retry: *retry,
            },
        };
        let Fields {
            id, event, data, ..
        } = fields;
        let before = bytes.len();
        let result = fields.encode(&mut bytes);
        if let Some(error) = refusal(id, event) {
            assert_eq!(result, Err(error), "{fields:?}");
            assert_eq!(bytes.len(), before, "a refused block writes nothing");
            continue;
        }
        assert_eq!(result, Ok(()), "{fields:?}");
        // Ids persist across blocks; a retry applies whether or not the block has data.
        if let Some(id) = id {
            model.last_id = id.to_owned();
        }
        model.retry = fields.retry.or(model.retry);
        if let Some(data) = data {
            model.events.push(OwnedEvent {
                event: event
                    .filter(|e| !e.is_empty())
                    .unwrap_or("message")
                    .to_owned(),
                // SSE cannot carry CR: every line end of data reads back as LF.
                data: data.replace("\r\n", "\n").replace('\r', "\n"),
                id: model.last_id.clone(),
            });
        }
    }
    (bytes, model)
}

proptest! {
    // No regressions file: failures are reported, not persisted next to the tests.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    // What the encoder writes, the decoder reads back as the spec says, however TCP splits it.
    #[test]
    fn roundtrip_under_any_chunking(
        items in proptest::collection::vec(item(), 0..8),
        cuts in proptest::collection::vec(any::<Index>(), 0..12),
    ) {
        let (bytes, model) = encode_with_model(&items, "");
        prop_assert_eq!(decode(Decoder::new(), &split(&bytes, &cuts)), model);
    }

    // A client must see the same events whatever the network's segmentation, errors included.
    #[test]
    fn chunking_does_not_change_the_outcome(
        bytes in sse_bytes(),
        cuts in proptest::collection::vec(any::<Index>(), 0..12),
        limits in prop_oneof![Just(DecoderLimits::default()), small_limits(32)],
    ) {
        let whole = decode(Decoder::with_limits(limits), &[&bytes]);
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(&decode(Decoder::with_limits(limits), &bytewise), &whole, "byte by byte");
        let chunks = split(&bytes, &cuts);
        prop_assert_eq!(&decode(Decoder::with_limits(limits), &chunks), &whole, "{:?}", chunks);
    }

    // A hostile peer must not crash the client or make it buffer beyond its limits, and a
    // failed stream must stay failed until the connection is replaced.
    #[test]
    fn limits_bound_memory_and_errors_stick_until_finish(
        bytes in sse_bytes(),
        cuts in proptest::collection::vec(any::<Index>(), 0..12),
        limits in small_limits(256),
        next in sse_bytes(),
    ) {
        let bound = limits.max_line + limits.max_event;
        let mut decoder = Decoder::with_limits(limits);
        let mut failed: Option<DecodeError> = None;
        for chunk in split(&bytes, &cuts) {
            let mut input = chunk;
            loop {
                let result = decoder.decode(&mut input).map(|e| e.map(|e| e.into_owned()));
                prop_assert!(decoder.buffered_len() <= bound, "{} > {bound}", decoder.buffered_len());
                match (result, &failed) {
                    (Err(e), Some(first)) => { prop_assert_eq!(&e, first); break; }
                    (Err(e), None) => failed = Some(e),
                    (Ok(ok), Some(first)) => prop_assert!(false, "{ok:?} after {first:?}"),
                    (Ok(Some(_)), None) => {}
                    (Ok(None), None) => { prop_assert!(input.is_empty()); break; }
                }
            }
        }
        if let Some(error) = &failed {
            prop_assert_eq!(&decoder.decode(&mut &b""[..]), &Err(error.clone()));
        }
        // After `finish`, the decoder acts as a new one that knows the last id and retry.
        decoder.finish();
        let (last_id, retry) = (decoder.last_event_id().to_owned(), decoder.retry());
        let fresh = Decoder::with_limits(limits).with_last_event_id(&last_id);
        let mut expected = decode(fresh, &[&next]);
        expected.retry = expected.retry.or(retry);
        prop_assert_eq!(decode(decoder, &[&next]), expected);
    }

    // Comments and data can carry any text without forging fields, ids or events.
    #[test]
    fn encoded_text_never_injects_fields(
        items in proptest::collection::vec((any::<bool>(), text()), 0..8),
        cuts in proptest::collection::vec(any::<Index>(), 0..4),
    ) {
        let items: Vec<Item> = items
            .into_iter()
            .map(|(comment, text)| match comment {
                true => Item::Comment(text),
                false => Item::Block { id: None, event: None, data: Some(text), retry: None },
            })
            .collect();
        let (bytes, model) = encode_with_model(&items, "");
        prop_assert_eq!(model.last_id.as_str(), "");
        prop_assert_eq!(decode(Decoder::new(), &split(&bytes, &cuts)), model);
    }

    // A reconnecting client's Last-Event-ID must label events until the server sends a new id.
    #[test]
    fn a_known_last_event_id_carries_until_an_id_field(
        initial in clean_text(),
        items in proptest::collection::vec(item(), 0..6),
    ) {
        let (bytes, model) = encode_with_model(&items, &initial);
        let decoder = Decoder::new().with_last_event_id(&initial);
        prop_assert_eq!(decoder.last_event_id(), initial.as_str());
        prop_assert_eq!(decode(decoder, &[&bytes]), model);
    }
}
