//! One test per rule of the WHATWG event stream parsing and interpretation algorithms.

use super::*;

/// Decodes `chunks` fed one after the other; returns (type, data, id) of each event.
fn decode_chunks(decoder: &mut Decoder, chunks: &[&[u8]]) -> Vec<(String, String, String)> {
    let mut events = Vec::new();
    for chunk in chunks {
        let mut input = *chunk;
        while let Some(event) = decoder.decode(&mut input).expect("within limits") {
            events.push((
                event.event.to_string(),
                event.data.to_string(),
                event.id.to_string(),
            ));
        }
        assert!(
            input.is_empty(),
            "decode returns None only once the input is used up"
        );
    }
    events
}

fn decode(bytes: &[u8]) -> Vec<(String, String, String)> {
    decode_chunks(&mut Decoder::new(), &[bytes])
}

fn ev(event: &str, data: &str, id: &str) -> (String, String, String) {
    (event.into(), data.into(), id.into())
}

#[test]
fn a_leading_bom_is_skipped_once() {
    assert_eq!(decode(b"\xEF\xBB\xBFdata: a\n\n"), [ev("message", "a", "")]);
    // A second BOM is part of the field name, which is then unknown.
    assert_eq!(decode(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), []);
    // A BOM later in the stream is not skipped either.
    assert_eq!(decode(b"\n\xEF\xBB\xBFdata: a\n\n"), []);
}

#[test]
fn a_bom_split_across_chunks_is_skipped() {
    let events = decode_chunks(&mut Decoder::new(), &[b"\xEF", b"\xBB", b"\xBFdata: b\n\n"]);
    assert_eq!(events, [ev("message", "b", "")]);
}

#[test]
fn a_partial_bom_is_invalid_utf8_not_a_bom() {
    // EF BB then 'd': the two bytes are one maximal invalid subsequence, one U+FFFD.
    assert_eq!(decode(b"\xEF\xBBdata: a\n\n"), []);
    assert_eq!(
        decode(b"data: \xEF\xBB\n\n"),
        [ev("message", "\u{FFFD}", "")]
    );
}

#[test]
fn cr_lf_and_crlf_all_end_lines() {
    for stream in [
        &b"data: a\ndata: b\n\n"[..],
        b"data: a\rdata: b\r\r",
        b"data: a\r\ndata: b\r\n\r\n",
        b"data: a\r\ndata: b\n\r",
    ] {
        assert_eq!(decode(stream), [ev("message", "a\nb", "")], "{stream:?}");
    }
}

#[test]
fn lf_cr_is_two_line_ends() {
    // "\n\r" ends the data line, then a blank line: one event.
    assert_eq!(
        decode(b"data: a\n\rdata: b\n\n"),
        [ev("message", "a", ""), ev("message", "b", "")]
    );
}

#[test]
fn crlf_split_across_chunks_is_one_line_end() {
    let events = decode_chunks(
        &mut Decoder::new(),
        &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
    );
    assert_eq!(events, [ev("message", "a\nb", "")]);
}

#[test]
fn a_blank_line_ended_by_a_lone_cr_dispatches_at_once() {
    let mut decoder = Decoder::new();
    let mut input = &b"data: now\r\r"[..];
    let event = decoder
        .decode(&mut input)
        .expect("ok")
        .expect("dispatched without the next byte");
    assert_eq!(event.data, "now");
    // The LF that then arrives completes the CRLF: it is not another blank line.
    assert_eq!(
        decode_chunks(&mut decoder, &[b"\ndata: next\n\n"]),
        [ev("message", "next", "")]
    );
}

#[test]
fn one_space_after_the_colon_is_stripped() {
    assert_eq!(decode(b"data:a\n\n"), [ev("message", "a", "")]);
    assert_eq!(decode(b"data: a\n\n"), [ev("message", "a", "")]);
    assert_eq!(decode(b"data:  a \n\n"), [ev("message", " a ", "")]);
    assert_eq!(decode(b"data:\ta\n\n"), [ev("message", "\ta", "")]);
}

#[test]
fn a_line_without_colon_is_a_field_with_an_empty_value() {
    assert_eq!(decode(b"data\n\n"), [ev("message", "", "")]);
    assert_eq!(decode(b"data\ndata\n\n"), [ev("message", "\n", "")]);
    // "data " (trailing space) is not the field "data".
    assert_eq!(decode(b"data \ndata :x\n\n"), []);
}

#[test]
fn comments_and_unknown_fields_are_ignored() {
    let stream = b": comment\n:\nfoo: bar\nDATA: no\nEvent: no\ndata: yes\n\n";
    assert_eq!(decode(stream), [ev("message", "yes", "")]);
}

#[test]
fn data_lines_join_with_lf_and_one_trailing_lf_is_removed() {
    assert_eq!(
        decode(b"data: a\ndata:\ndata: b\n\n"),
        [ev("message", "a\n\nb", "")]
    );
    assert_eq!(decode(b"data:\ndata:\n\n"), [ev("message", "\n", "")]);
    assert_eq!(decode(b"data:\n\n"), [ev("message", "", "")]);
}

#[test]
fn the_event_type_defaults_to_message_and_resets_after_dispatch() {
    let stream = b"event: chat\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n";
    assert_eq!(
        decode(stream),
        [
            ev("chat", "1", ""),
            ev("message", "2", ""),
            ev("message", "3", "")
        ]
    );
}

#[test]
fn a_block_without_data_dispatches_nothing_but_resets_the_type() {
    let stream = b"event: lost\n\ndata: x\n\n";
    assert_eq!(decode(stream), [ev("message", "x", "")]);
}

#[test]
fn the_last_event_id_persists_and_updates_when_a_block_ends() {
    let mut decoder = Decoder::new();
    let events = decode_chunks(
        &mut decoder,
        &[b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"],
    );
    assert_eq!(
        events,
        [
            ev("message", "a", "1"),
            ev("message", "b", "1"),
            ev("message", "c", "")
        ]
    );

    // An id-only block sets the last event id without dispatching.
    let mut decoder = Decoder::new();
    assert_eq!(decode_chunks(&mut decoder, &[b"id: 5\n\n"]), []);
    assert_eq!(decoder.last_event_id(), "5");

    // An id in a block that has not ended yet is not the last event id.
    let mut decoder = Decoder::new();
    decode_chunks(&mut decoder, &[b"id: 1\n\nid: 2\n"]);
    assert_eq!(decoder.last_event_id(), "1");
    decoder.finish();
    assert_eq!(decoder.last_event_id(), "1");
}

#[test]
fn an_id_containing_nul_is_ignored() {
    let stream = b"id: 1\n\nid: 2\0x\ndata: a\n\n";
    assert_eq!(decode(stream), [ev("message", "a", "1")]);
}

#[test]
fn retry_takes_only_ascii_digits() {
    let mut decoder = Decoder::new();
    decode_chunks(&mut decoder, &[b"retry: 1500\n"]);
    assert_eq!(decoder.retry(), Some(1500));
    for ignored in [
        &b"retry: 15a\n"[..],
        b"retry: -1\n",
        b"retry: 1.5\n",
        b"retry:  15\n",
        b"retry: +15\n",
        b"retry:\n",
        b"retry\n",
        b"retry: 99999999999999999999999\n", // past u64, ignored as Chromium does
        b"retry: \xD9\xA1\n",                // ARABIC-INDIC DIGIT ONE is not ASCII
    ] {
        decode_chunks(&mut decoder, &[ignored]);
        assert_eq!(decoder.retry(), Some(1500), "{ignored:?}");
    }
    decode_chunks(&mut decoder, &[b"retry: 007\n"]);
    assert_eq!(decoder.retry(), Some(7));
}

#[test]
fn retry_applies_without_a_dispatch() {
    let mut decoder = Decoder::new();
    decode_chunks(&mut decoder, &[b"retry: 10"]);
    assert_eq!(decoder.retry(), None, "the line has not ended");
    decode_chunks(&mut decoder, &[b"\n"]);
    assert_eq!(
        decoder.retry(),
        Some(10),
        "set when its line ends, not at the blank line"
    );
}

#[test]
fn invalid_utf8_decodes_as_replacement_characters() {
    assert_eq!(
        decode(b"data: a\xFFb\n\n"),
        [ev("message", "a\u{FFFD}b", "")]
    );
    // Overlong encodings and encoded surrogates: one U+FFFD per byte.
    assert_eq!(
        decode(b"data: \xC0\xAF\n\n"),
        [ev("message", "\u{FFFD}\u{FFFD}", "")]
    );
    assert_eq!(
        decode(b"data: \xED\xA0\x80\n\n"),
        [ev("message", "\u{FFFD}\u{FFFD}\u{FFFD}", "")]
    );
    // A truncated sequence is one U+FFFD, and the line end is still a line end.
    assert_eq!(
        decode(b"data: \xE2\x82\ndata: x\n\n"),
        [ev("message", "\u{FFFD}\nx", "")]
    );
    assert_eq!(
        decode(b"event: \xFF\nid: \xFE\ndata\n\n"),
        [ev("\u{FFFD}", "", "\u{FFFD}")]
    );
}

#[test]
fn a_multibyte_character_split_across_chunks_survives() {
    let events = decode_chunks(&mut Decoder::new(), &[b"data: \xE2", b"\x82", b"\xAC\n\n"]);
    assert_eq!(events, [ev("message", "\u{20AC}", "")]);
}

#[test]
fn the_pending_event_is_dropped_at_end_of_stream() {
    let mut decoder = Decoder::new();
    assert_eq!(
        decode_chunks(&mut decoder, &[b"data: a\n\ndata: b\n"]),
        [ev("message", "a", "")]
    );
    decoder.finish();
    // The next stream starts clean: "b" is gone, and a new leading BOM is skipped.
    let events = decode_chunks(&mut decoder, &[b"\xEF\xBB\xBFdata: c\n\n"]);
    assert_eq!(events, [ev("message", "c", "")]);
}

#[test]
fn a_line_without_its_end_is_dropped_at_end_of_stream() {
    let mut decoder = Decoder::new();
    decode_chunks(&mut decoder, &[b"data: a\n\nid: 9"]);
    decoder.finish();
    assert_eq!(decoder.last_event_id(), "");
    assert_eq!(decode_chunks(&mut decoder, &[b"\n\n"]), []);
    assert_eq!(decoder.last_event_id(), "");
}

#[test]
fn a_known_last_event_id_carries_into_events() {
    let mut decoder = Decoder::new().with_last_event_id("41");
    assert_eq!(decoder.last_event_id(), "41");
    let events = decode_chunks(&mut decoder, &[b"data: a\n\nid: 42\ndata: b\n\n"]);
    assert_eq!(events, [ev("message", "a", "41"), ev("message", "b", "42")]);
}

#[test]
fn events_come_out_one_at_a_time_with_their_own_state() {
    let mut decoder = Decoder::new();
    let mut input = &b"retry: 1\ndata: a\n\nretry: 2\nid: x\ndata: b\n\n"[..];
    let first = decoder
        .decode(&mut input)
        .expect("ok")
        .expect("event")
        .into_owned();
    assert_eq!(
        (
            first.data.as_str(),
            decoder.retry(),
            decoder.last_event_id()
        ),
        ("a", Some(1), "")
    );
    let second = decoder
        .decode(&mut input)
        .expect("ok")
        .expect("event")
        .into_owned();
    assert_eq!(
        (
            second.data.as_str(),
            decoder.retry(),
            decoder.last_event_id()
        ),
        ("b", Some(2), "x")
    );
    assert!(input.is_empty());
}

#[test]
fn a_line_over_the_limit_is_an_error_that_sticks() {
    let limits = DecoderLimits {
        max_line: 16,
        max_event: 1024,
    };
    let mut decoder = Decoder::with_limits(limits);
    // Exactly at the limit is fine, one byte more is not, whether in one piece or held.
    let mut input = &b"data: 0123456789\n"[..];
    assert_eq!(decoder.decode(&mut input), Ok(None));
    let mut input = &b"data: 0123"[..];
    assert_eq!(decoder.decode(&mut input), Ok(None));
    let mut input = &b"4567890"[..];
    assert_eq!(
        decoder.decode(&mut input),
        Err(DecodeError::LineTooLong { limit: 16 })
    );
    assert_eq!(
        decoder.decode(&mut &b"\n\n"[..]),
        Err(DecodeError::LineTooLong { limit: 16 })
    );
    assert_eq!(decoder.buffered_len(), 0, "a failed decoder holds nothing");
    // `finish` starts the next stream afresh.
    decoder.finish();
    assert_eq!(
        decode_chunks(&mut decoder, &[b"data: ok\n\n"]),
        [ev("message", "ok", "")]
    );
}

#[test]
fn a_held_line_that_ends_over_the_limit_is_an_error() {
    let mut decoder = Decoder::with_limits(DecoderLimits {
        max_line: 8,
        max_event: 1024,
    });
    assert_eq!(decoder.decode(&mut &b"data: 0"[..]), Ok(None));
    assert_eq!(
        decoder.decode(&mut &b"12\n"[..]),
        Err(DecodeError::LineTooLong { limit: 8 })
    );
}

#[test]
fn comments_cost_no_memory_however_long() {
    let mut decoder = Decoder::with_limits(DecoderLimits {
        max_line: 8,
        max_event: 1024,
    });
    assert_eq!(decoder.decode(&mut &b": a long comment"[..]), Ok(None));
    for _ in 0..100 {
        assert_eq!(decoder.decode(&mut &[b'x'; 100][..]), Ok(None));
        assert_eq!(decoder.buffered_len(), 0);
    }
    assert_eq!(
        decode_chunks(&mut decoder, &[b"\ndata: a\n\n"]),
        [ev("message", "a", "")]
    );
}

#[test]
fn an_event_over_the_limit_is_an_error() {
    let limits = DecoderLimits {
        max_line: 1024,
        max_event: 10,
    };
    // data "12345\n6789" is 10 bytes with its joining LF (the trailing LF is counted too).
    let mut decoder = Decoder::with_limits(limits);
    assert_eq!(
        decode_chunks(&mut decoder, &[b"data: 1234\ndata: 5678\n\n"]),
        [ev("message", "1234\n5678", "")]
    );
    let mut decoder = Decoder::with_limits(limits);
    let result = decoder.decode(&mut &b"data: 1234\ndata: 56789\n\n"[..]);
    assert_eq!(result, Err(DecodeError::EventTooLarge { limit: 10 }));
    // The event type counts too.
    let mut decoder = Decoder::with_limits(limits);
    let result = decoder.decode(&mut &b"data: 12345\nevent: abcde\n\n"[..]);
    assert_eq!(result, Err(DecodeError::EventTooLarge { limit: 10 }));
}

#[test]
fn memory_stays_bounded_on_endless_data_lines() {
    let limits = DecoderLimits {
        max_line: 64,
        max_event: 256,
    };
    let mut decoder = Decoder::with_limits(limits);
    let mut failed = false;
    for _ in 0..1000 {
        match decoder.decode(&mut &b"data: 0123456789\n"[..]) {
            Ok(_) => assert!(decoder.buffered_len() <= 64 + 256),
            Err(error) => {
                assert_eq!(error, DecodeError::EventTooLarge { limit: 256 });
                failed = true;
                break;
            }
        }
    }
    assert!(failed);
}

#[test]
fn line_ends_are_found_at_every_offset() {
    for len in 0..40 {
        for end in 0..=len {
            let mut bytes = vec![b'x'; len];
            // Bytes that differ from CR and LF by one bit, or are next to them, must not match.
            for (i, byte) in bytes.iter_mut().enumerate() {
                *byte = [b'x', 0x0B, 0x0C, 0x09, 0x8A, 0x8D, 0x0E, 0x00][i % 8];
            }
            let expected = (end < len).then(|| {
                bytes[end] = if end % 2 == 0 { b'\n' } else { b'\r' };
                end
            });
            assert_eq!(find_line_end(&bytes), expected, "len {len}, end {end}");
        }
    }
}

#[test]
fn a_bom_then_a_lone_line_end_is_an_empty_first_line() {
    // Chromium 156 folds the LF into the next line here; the spec, and we, do not.
    assert_eq!(
        decode(b"\xEF\xBB\xBF\ndata:x\n\ndata:y\n\n"),
        [ev("message", "x", ""), ev("message", "y", "")]
    );
    assert_eq!(
        decode(b"\xEF\xBB\xBF\rdata:x\r\r"),
        [ev("message", "x", "")]
    );
    let events = decode_chunks(&mut Decoder::new(), &[b"\xEF\xBB\xBF", b"\ndata:x\n\n"]);
    assert_eq!(events, [ev("message", "x", "")]);
}

#[test]
fn the_line_limit_holds_however_the_line_arrived() {
    let limits = DecoderLimits {
        max_line: 8,
        max_event: 1024,
    };
    for stream in [
        &b"data: 0123\n"[..],
        b"event: abc\n",
        b"id: 0123456\n",
        b"unknown: x\n",
    ] {
        let mut decoder = Decoder::with_limits(limits);
        let whole = decoder.decode(&mut &stream[..]).map(|_| ());
        assert_eq!(
            whole,
            Err(DecodeError::LineTooLong { limit: 8 }),
            "{stream:?}"
        );
        let mut split = Decoder::with_limits(limits);
        assert_eq!(split.decode(&mut &stream[..3]), Ok(None));
        assert_eq!(
            split.decode(&mut &stream[3..]),
            Err(DecodeError::LineTooLong { limit: 8 })
        );
    }
    // Comments are skipped, not held, so no limit applies to them, in one piece or not.
    let mut decoder = Decoder::with_limits(limits);
    assert_eq!(
        decode_chunks(&mut decoder, &[b": a comment longer than 8\ndata: ok\n\n"]),
        [ev("message", "ok", "")]
    );
}

#[test]
fn a_repeated_event_type_still_counts_towards_the_event_size() {
    let limits = DecoderLimits {
        max_line: 64,
        max_event: 4,
    };
    let mut decoder = Decoder::with_limits(limits);
    // "chat" alone fits; with one byte of data (its LF) it does not, cached type or not.
    let result = decoder.decode(&mut &b"event: chat\n\ndata:\nevent: chat\n\n"[..]);
    assert_eq!(result, Err(DecodeError::EventTooLarge { limit: 4 }));
}
