//! One test per rule of the STOMP 1.2 frame format, and per limit.

use super::*;

/// Decodes `chunks` fed one after the other with `decoder`; the frames, or the first error.
fn decode_with(decoder: &mut Decoder, chunks: &[&[u8]]) -> Result<Vec<Frame>, DecodeError> {
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.handle_bytes(chunk);
        while let Some(frame) = decoder.poll_frame()? {
            frames.push(frame);
        }
    }
    Ok(frames)
}

/// Decodes `stream` whole and byte by byte, which must agree.
fn decode_in(
    limits: DecoderLimits,
    version: Version,
    stream: &[u8],
) -> Result<Vec<Frame>, DecodeError> {
    let whole = decode_with(&mut Decoder::new(limits).with_version(version), &[stream]);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let split = decode_with(&mut Decoder::new(limits).with_version(version), &bytes);
    assert_eq!(
        whole, split,
        "whole and byte by byte disagree on {stream:?}"
    );
    whole
}

fn decode(stream: &[u8]) -> Result<Vec<Frame>, DecodeError> {
    decode_in(DecoderLimits::default(), Version::V1_2, stream)
}

/// The one frame in `stream`.
fn one(stream: &[u8]) -> Frame {
    let frames = decode(stream).expect("a valid stream");
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.into_iter().next().expect("one frame")
}

fn headers(frame: &Frame) -> Vec<(&str, &str)> {
    frame.headers.iter().collect()
}

fn limits(max_frame: usize, max_headers: usize, max_line: usize) -> DecoderLimits {
    DecoderLimits {
        max_frame,
        max_headers,
        max_line,
    }
}

#[test]
fn the_spec_frame_decodes() {
    let frame = one(b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\0");
    assert_eq!(frame.command, Command::Send);
    assert_eq!(
        headers(&frame),
        [("destination", "/queue/a"), ("content-type", "text/plain")]
    );
    assert_eq!(&frame.body[..], b"hello queue a\n");
}

#[test]
fn every_command_decodes_and_case_matters() {
    for command in Command::ALL {
        let stream = format!("{command}\n\n\0");
        assert_eq!(one(stream.as_bytes()).command, command);
    }
    for bad in [
        &b"send\n\n\0"[..],
        b"SEND \n\n\0",
        b" SEND\n\n\0",
        b"FOO\n\n\0",
        b"\xFF\n\n\0",
    ] {
        assert_eq!(decode(bad), Err(DecodeError::BadCommand), "{bad:?}");
    }
}

#[test]
fn crlf_and_lf_both_end_lines() {
    let lf = one(b"MESSAGE\nfoo:bar\n\nbody\0");
    let crlf = one(b"MESSAGE\r\nfoo:bar\r\n\r\nbody\0");
    let mixed = one(b"MESSAGE\r\nfoo:bar\n\r\nbody\0");
    assert_eq!(lf, crlf);
    assert_eq!(lf, mixed);
    // Only one CR before the LF is the line end: another is part of the value.
    assert_eq!(
        headers(&one(b"MESSAGE\nfoo:bar\r\r\n\n\0")),
        [("foo", "bar\r")]
    );
    // A CR inside a line is kept as it came.
    assert_eq!(headers(&one(b"MESSAGE\nfoo:a\rb\n\n\0")), [("foo", "a\rb")]);
}

#[test]
fn heart_beats_between_frames_are_skipped_and_counted() {
    let mut decoder = Decoder::default();
    let stream = b"\n\r\n\nSEND\n\n\0\n\r\n\n\nRECEIPT\nreceipt-id:1\n\n\0\r\n";
    let frames = decode_with(&mut decoder, &[stream]).expect("valid");
    assert_eq!(frames.len(), 2);
    assert_eq!(decoder.heartbeats(), 3 + 4 + 1);
    // A CRLF split across inputs is one heart-beat.
    let mut decoder = Decoder::default();
    decode_with(&mut decoder, &[b"\r", b"\n\r", b"\n"]).expect("valid");
    assert_eq!(decoder.heartbeats(), 2);
    // A lone CR is not an EOL: it starts a line that is no command.
    assert_eq!(decode(b"\rSEND\n\n\0"), Err(DecodeError::BadCommand));
}

#[test]
fn without_content_length_the_body_ends_at_the_first_nul() {
    // What follows the NUL is the next frame: `cd` is no command.
    assert_eq!(
        decode(b"SEND\n\nab\0cd\n\n\0"),
        Err(DecodeError::BadCommand)
    );
    let frames = decode(b"SEND\n\nab\0SEND\n\ncd\0").expect("valid");
    assert_eq!(&frames[0].body[..], b"ab");
    assert_eq!(&frames[1].body[..], b"cd");
    assert_eq!(&one(b"SEND\n\n\0").body[..], b"");
}

#[test]
fn content_length_reads_that_many_octets_nul_included() {
    let frame = one(b"SEND\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(&frame.body[..], b"a\0b\0c");
    // The header is framing: it is dropped from the frame, every entry of it.
    assert!(frame.headers.is_empty());
    let frame = one(b"SEND\ncontent-length:0\nx:1\ncontent-length:9\n\n\0");
    assert_eq!(headers(&frame), [("x", "1")]);
    assert_eq!(&frame.body[..], b"");
    // The first entry is the length; a later one, even a bad one, is history.
    assert_eq!(
        &one(b"SEND\ncontent-length:2\ncontent-length:x\n\nab\0").body[..],
        b"ab"
    );
}

#[test]
fn content_length_must_be_followed_by_nul() {
    assert_eq!(
        decode(b"SEND\ncontent-length:2\n\nabc\0"),
        Err(DecodeError::MissingNul)
    );
    assert_eq!(
        decode(b"SEND\ncontent-length:0\n\na\0"),
        Err(DecodeError::MissingNul)
    );
    // Waiting for the NUL is not an error.
    assert_eq!(decode(b"SEND\ncontent-length:2\n\nab"), Ok(vec![]));
}

#[test]
fn content_length_must_be_digits() {
    for value in ["-1", "+1", " 1", "1 ", "", "0x10", "1.0", "1e3", "١"] {
        let stream = format!("SEND\ncontent-length:{value}\n\n\0");
        assert_eq!(
            decode(stream.as_bytes()),
            Err(DecodeError::BadContentLength),
            "{value:?}"
        );
    }
    // Leading zeros are still a number.
    assert_eq!(&one(b"SEND\ncontent-length:002\n\nab\0").body[..], b"ab");
}

#[test]
fn a_content_length_past_the_frame_limit_fails_before_the_body_comes() {
    let limit = limits(64, 64, 64);
    let head = b"SEND\ncontent-length:50\n\n"; // 24 octets: 24 + 50 + 1 > 64
    let mut decoder = Decoder::new(limit);
    assert_eq!(
        decode_with(&mut decoder, &[head]),
        Err(DecodeError::FrameTooLarge { limit: 64 })
    );
    let huge = b"SEND\ncontent-length:99999999999999999999999999\n\n";
    assert_eq!(
        decode(huge),
        Err(DecodeError::FrameTooLarge { limit: 64 * 1024 })
    );
    // 24 + 39 + 1 = 64 fits exactly.
    let mut exact = b"SEND\ncontent-length:39\n\n".to_vec();
    exact.extend_from_slice(&[b'x'; 39]);
    exact.push(0);
    assert_eq!(
        decode_in(limit, Version::V1_2, &exact).expect("fits").len(),
        1
    );
}

#[test]
fn the_frame_limit_counts_every_octet_of_the_frame() {
    // 6 + 4 + 1 + 4 + 1 = 16 octets.
    let frame = b"SEND\r\na:b\n\nbody\0";
    assert_eq!(
        decode_in(limits(16, 8, 8), Version::V1_2, frame)
            .expect("fits")
            .len(),
        1
    );
    for max_frame in [1, 5, 6, 10, 11, 15] {
        assert_eq!(
            decode_in(limits(max_frame, 8, 8), Version::V1_2, frame),
            Err(DecodeError::FrameTooLarge { limit: max_frame }),
            "{max_frame}"
        );
    }
    // Heart-beats between frames do not count.
    let beats = b"\n\n\n\nSEND\r\na:b\n\nbody\0\n\n\n";
    assert_eq!(
        decode_in(limits(16, 8, 8), Version::V1_2, beats)
            .expect("fits")
            .len(),
        1
    );
}

#[test]
fn too_many_headers() {
    let stream = b"SEND\na:1\nb:2\na:3\n\n\0";
    assert_eq!(
        decode_in(limits(1024, 3, 64), Version::V1_2, stream)
            .expect("fits")
            .len(),
        1
    );
    assert_eq!(
        decode_in(limits(1024, 2, 64), Version::V1_2, stream),
        Err(DecodeError::TooManyHeaders { limit: 2 })
    );
    // content-length is a header like the others here.
    assert_eq!(
        decode_in(
            limits(1024, 0, 64),
            Version::V1_2,
            b"SEND\ncontent-length:0\n\n\0"
        ),
        Err(DecodeError::TooManyHeaders { limit: 0 })
    );
}

#[test]
fn line_too_long_whole_or_arriving() {
    let limit = limits(1024, 8, 5);
    // Five octets is the limit, the line end excluded, CRLF or LF.
    for fits in [&b"SEND\nab:cd\n\n\0"[..], b"SEND\r\nab:cd\r\n\r\n\0"] {
        assert_eq!(
            decode_in(limit, Version::V1_2, fits).expect("fits").len(),
            1
        );
    }
    for long in [
        &b"SEND\nab:cde\n\n\0"[..],
        b"MESSAGE\n\n\0",
        b"SEND\nab:cd\r\r\n\n\0",
    ] {
        assert_eq!(
            decode_in(limit, Version::V1_2, long),
            Err(DecodeError::LineTooLong { limit: 5 }),
            "{long:?}"
        );
    }
    // A line that has not ended fails as soon as it is too long.
    let mut decoder = Decoder::new(limit);
    assert_eq!(decode_with(&mut decoder, &[b"SEND\nab:cd"]), Ok(vec![]));
    assert_eq!(decode_with(&mut decoder, &[b"\r"]), Ok(vec![]));
    assert_eq!(
        decode_with(&mut decoder, &[b"x"]),
        Err(DecodeError::LineTooLong { limit: 5 })
    );
    // The body is no line.
    let body = b"SEND\n\n0123456789\0";
    assert_eq!(
        decode_in(limit, Version::V1_2, body).expect("fits").len(),
        1
    );
}

#[test]
fn an_unending_body_fails_at_the_frame_limit() {
    let limit = limits(32, 8, 8);
    let mut decoder = Decoder::new(limit);
    // SEND\n\n is 6 octets: 25 body octets and a NUL would fit, 26 do not.
    assert_eq!(
        decode_with(&mut decoder, &[b"SEND\n\n", &[b'x'; 25]]),
        Ok(vec![])
    );
    assert_eq!(decoder.buffered_len(), 25);
    assert_eq!(
        decode_with(&mut decoder, &[b"x"]),
        Err(DecodeError::FrameTooLarge { limit: 32 })
    );
}

#[test]
fn escapes_decode_in_1_2() {
    let frame = one(b"MESSAGE\na\\cb:1\\r2\\n3\\c4\\\\5\n\n\0");
    assert_eq!(headers(&frame), [("a:b", "1\r2\n3:4\\5")]);
    // An escaped colon in a name does not split it.
    assert_eq!(headers(&one(b"SEND\n\\c:\\c\n\n\0")), [(":", ":")]);
}

#[test]
fn undefined_escapes_are_fatal() {
    for header in [
        &b"a:\\t"[..],
        b"a:b\\",
        b"a\\:b",
        b"a:\\C",
        b"a:\\ ",
        b"a:\\\xC3\xA9",
    ] {
        let mut stream = b"SEND\n".to_vec();
        stream.extend_from_slice(header);
        stream.extend_from_slice(b"\n\n\0");
        assert_eq!(decode(&stream), Err(DecodeError::BadEscape), "{header:?}");
    }
}

#[test]
fn each_version_escapes_its_own_way() {
    let stream = b"SEND\na:\\n\\c\\\\\n\n\0";
    let v1_1 = decode_in(DecoderLimits::default(), Version::V1_1, stream).expect("valid");
    assert_eq!(headers(&v1_1[0]), [("a", "\n:\\")]);
    // 1.1 has no `\r`.
    assert_eq!(
        decode_in(
            DecoderLimits::default(),
            Version::V1_1,
            b"SEND\na:\\r\n\n\0"
        ),
        Err(DecodeError::BadEscape)
    );
    // 1.0 escapes nothing.
    let v1_0 = decode_in(
        DecoderLimits::default(),
        Version::V1_0,
        b"SEND\na:\\t\\n\\\n\n\0",
    )
    .expect("valid");
    assert_eq!(headers(&v1_0[0]), [("a", "\\t\\n\\")]);
}

#[test]
fn connect_and_connected_take_values_literally() {
    for command in ["CONNECT", "CONNECTED"] {
        let stream = format!("{command}\nlogin:a\\tb\\\npasscode:x:y\\c\n\n\0");
        let frame = one(stream.as_bytes());
        assert_eq!(
            headers(&frame),
            [("login", "a\\tb\\"), ("passcode", "x:y\\c")]
        );
    }
    // STOMP is not one of the two: its headers are escaped.
    assert_eq!(
        decode(b"STOMP\nlogin:a\\tb\n\n\0"),
        Err(DecodeError::BadEscape)
    );
    assert_eq!(
        headers(&one(b"STOMP\nlogin:a\\cb\n\n\0")),
        [("login", "a:b")]
    );
}

#[test]
fn the_version_set_after_connect_reads_the_frames_after_it() {
    let mut decoder = Decoder::default();
    decoder.handle_bytes(b"CONNECT\n\n\0SEND\na:\\t\n\n\0");
    assert_eq!(
        decoder.poll_frame().expect("valid").map(|f| f.command),
        Some(Command::Connect)
    );
    decoder.set_version(Version::V1_0);
    let send = decoder
        .poll_frame()
        .expect("valid under 1.0")
        .expect("a frame");
    assert_eq!(headers(&send), [("a", "\\t")]);
}

#[test]
fn repeated_headers_are_kept_and_the_first_wins() {
    let frame = one(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0");
    assert_eq!(frame.headers.get("foo"), Some("World"));
    assert_eq!(
        frame.headers.get_all("foo").collect::<Vec<_>>(),
        ["World", "Hello"]
    );
    assert_eq!(frame.headers.len(), 2);
}

#[test]
fn values_are_never_trimmed() {
    let frame = one(b"SEND\n a : b \n\tx:\t\n\n\0");
    assert_eq!(headers(&frame), [(" a ", " b "), ("\tx", "\t")]);
    // The grammar allows any other octet in a name, NUL included.
    assert_eq!(headers(&one(b"SEND\n\0:\n\n\0")), [("\0", "")]);
}

#[test]
fn an_empty_value_is_a_value() {
    let frame = one(b"SEND\na:\nb::\n\n\0");
    assert_eq!(headers(&frame), [("a", ""), ("b", ":")]);
    assert_eq!(frame.headers.get("a"), Some(""));
}

#[test]
fn a_raw_colon_in_a_value_is_taken_literally() {
    // The first colon splits; the 1.2 grammar wants `\c`, but a literal one is kept.
    assert_eq!(
        headers(&one(b"SEND\ndestination:/a:b:c\n\n\0")),
        [("destination", "/a:b:c")]
    );
}

#[test]
fn a_header_needs_a_colon_and_a_name() {
    for header in [&b"nocolon"[..], b":value", b":", b" "] {
        let mut stream = b"SEND\n".to_vec();
        stream.extend_from_slice(header);
        stream.extend_from_slice(b"\n\n\0");
        assert_eq!(decode(&stream), Err(DecodeError::BadHeader), "{header:?}");
    }
}

#[test]
fn headers_must_be_utf8() {
    assert_eq!(decode(b"SEND\na:\xFF\n\n\0"), Err(DecodeError::BadUtf8));
    assert_eq!(decode(b"SEND\n\xC3:b\n\n\0"), Err(DecodeError::BadUtf8));
    assert_eq!(
        headers(&one("SEND\nété:日本\n\n\0".as_bytes())),
        [("été", "日本")]
    );
}

#[test]
fn only_send_message_and_error_have_a_body() {
    for command in Command::ALL {
        let stream = format!("{command}\n\nx\0");
        let decoded = decode(stream.as_bytes());
        if command.allows_body() {
            assert_eq!(
                decoded.expect("a body is allowed")[0].body,
                "x",
                "{command}"
            );
        } else {
            assert_eq!(
                decoded,
                Err(DecodeError::BodyNotAllowed { command }),
                "{command}"
            );
            let stream = format!("{command}\ncontent-length:1\n\nx\0");
            assert_eq!(
                decode(stream.as_bytes()),
                Err(DecodeError::BodyNotAllowed { command })
            );
            // An empty one is no body.
            let stream = format!("{command}\ncontent-length:0\n\n\0");
            assert_eq!(decode(stream.as_bytes()).expect("no body").len(), 1);
        }
    }
}

#[test]
fn after_an_error_the_decoder_stays_failed() {
    let mut decoder = Decoder::default();
    decoder.handle_bytes(b"SEND\n\n\0BAD\n\n\0SEND\n\n\0");
    assert!(decoder.poll_frame().expect("the first is valid").is_some());
    assert_eq!(decoder.poll_frame(), Err(DecodeError::BadCommand));
    decoder.handle_bytes(b"SEND\n\n\0");
    assert_eq!(decoder.poll_frame(), Err(DecodeError::BadCommand));
    assert_eq!(decoder.error(), Some(DecodeError::BadCommand));
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn frames_split_anywhere_decode_the_same() {
    let stream: &[u8] = b"\r\nCONNECT\r\naccept-version:1.2\r\nhost:h\r\n\r\n\0\nSEND\ndestination:/q\\c1\ncontent-length:3\n\n\0\0\0\0\n\nSEND\nx:y\n\nhi\0";
    let whole = decode(stream).expect("valid");
    assert_eq!(whole.len(), 3);
    for at in 0..=stream.len() {
        for to in at..=stream.len() {
            let mut decoder = Decoder::default();
            let chunks = [&stream[..at], &stream[at..to], &stream[to..]];
            assert_eq!(
                decode_with(&mut decoder, &chunks).as_ref(),
                Ok(&whole),
                "{at} {to}"
            );
            assert_eq!(decoder.heartbeats(), 4);
        }
    }
}

#[test]
fn the_queue_is_given_back_between_frames() {
    for size in [10, 40_000] {
        let mut decoder = Decoder::default();
        let mut stream = b"SEND\n\n".to_vec();
        stream.extend(std::iter::repeat_n(b'x', size));
        stream.push(0);
        assert_eq!(
            decode_with(&mut decoder, &[&stream]).expect("valid").len(),
            1
        );
        assert_eq!(
            decoder.queue.capacity(),
            0,
            "an idle connection holds no buffer"
        );
    }
}
