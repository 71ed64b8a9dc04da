//! The encoder's rules: escaping per version and command, `content-length`, refusals.

use super::*;

fn encoded(frame: &Frame, version: Version) -> Result<Vec<u8>, EncodeError> {
    encode_to_bytes(frame, version).map(|bytes| bytes.to_vec())
}

#[test]
fn writes_command_headers_blank_line_body_and_nul() {
    let frame = Frame::new(Command::Send)
        .header("destination", "/queue/a")
        .header("content-type", "text/plain")
        .body("hello queue a");
    assert_eq!(
        encoded(&frame, Version::V1_2).expect("valid"),
        b"SEND\ndestination:/queue/a\ncontent-type:text/plain\ncontent-length:13\n\nhello queue a\0"
    );
}

#[test]
fn content_length_is_written_for_every_frame_that_may_have_a_body() {
    for command in Command::ALL {
        let out = encoded(&Frame::new(command), Version::V1_2).expect("valid");
        let expected = if command.allows_body() {
            format!("{command}\ncontent-length:0\n\n\0")
        } else {
            format!("{command}\n\n\0")
        };
        assert_eq!(out, expected.as_bytes(), "{command}");
    }
    let nul = Frame::new(Command::Message).body(&b"\0\0"[..]);
    assert_eq!(
        encoded(&nul, Version::V1_2).expect("valid"),
        b"MESSAGE\ncontent-length:2\n\n\0\0\0"
    );
}

#[test]
fn a_content_length_in_the_headers_is_ignored() {
    let frame = Frame::new(Command::Send)
        .header("content-length", "999")
        .header("a", "b")
        .header("content-length", "1")
        .body("xyz");
    assert_eq!(
        encoded(&frame, Version::V1_2).expect("valid"),
        b"SEND\na:b\ncontent-length:3\n\nxyz\0"
    );
}

#[test]
fn escapes_names_and_values_by_version() {
    let frame = Frame::new(Command::Send).header("a:b\\", "1\n2:3\\");
    assert_eq!(
        encoded(&frame, Version::V1_2).expect("valid"),
        b"SEND\na\\cb\\\\:1\\n2\\c3\\\\\ncontent-length:0\n\n\0"
    );
    assert_eq!(
        encoded(&frame, Version::V1_1),
        encoded(&frame, Version::V1_2)
    );
    let cr = Frame::new(Command::Send).header("a", "\r");
    assert_eq!(
        encoded(&cr, Version::V1_2).expect("valid"),
        b"SEND\na:\\r\ncontent-length:0\n\n\0"
    );
    // 1.1 has no escape for CR.
    assert_eq!(
        encoded(&cr, Version::V1_1),
        Err(EncodeError::Unencodable { byte: b'\r' })
    );
}

#[test]
fn literal_frames_and_1_0_write_values_as_they_are() {
    let frame = Frame::new(Command::Connect)
        .header("login", "a\\b")
        .header("passcode", "x:y");
    for version in Version::ALL {
        assert_eq!(
            encoded(&frame, version).expect("valid"),
            b"CONNECT\nlogin:a\\b\npasscode:x:y\n\n\0"
        );
    }
    let send = Frame::new(Command::Send).header("a", "x:\\");
    assert_eq!(
        encoded(&send, Version::V1_0).expect("valid"),
        b"SEND\na:x:\\\ncontent-length:0\n\n\0"
    );
}

#[test]
fn refuses_what_cannot_be_written_and_writes_nothing() {
    let cases = [
        (
            Frame::new(Command::Connected).header("a", "x\ny"),
            Version::V1_2,
            EncodeError::Unencodable { byte: b'\n' },
        ),
        (
            Frame::new(Command::Connect).header("a:b", "x"),
            Version::V1_2,
            EncodeError::Unencodable { byte: b':' },
        ),
        (
            Frame::new(Command::Send).header("a", "\r"),
            Version::V1_0,
            EncodeError::Unencodable { byte: b'\r' },
        ),
        (
            Frame::new(Command::Send).header("", "x"),
            Version::V1_2,
            EncodeError::EmptyHeaderName,
        ),
        (
            Frame::new(Command::Subscribe).body("x"),
            Version::V1_2,
            EncodeError::BodyNotAllowed {
                command: Command::Subscribe,
            },
        ),
    ];
    for (frame, version, error) in cases {
        let mut out = BytesMut::new();
        assert_eq!(encode(&frame, version, &mut out), Err(error), "{frame:?}");
        assert!(out.is_empty());
    }
}

#[test]
fn a_prepared_message_writes_what_encode_writes() {
    let shared: Headers = [
        ("destination", "/topic/a:b"),
        ("content-type", "text/plain"),
    ]
    .into_iter()
    .collect();
    let body = Bytes::from_static(b"hi\0there");
    for version in Version::ALL {
        let prepared = PreparedMessage::new(version, &shared, body.clone()).expect("valid");
        assert_eq!(prepared.version(), version);
        for ack in [None, Some("ack-1")] {
            let mut out = BytesMut::new();
            prepared
                .write_for("sub-0", "m\\7", ack, &mut out)
                .expect("valid");
            let mut frame = Frame::new(Command::Message)
                .header("subscription", "sub-0")
                .header("message-id", "m\\7");
            if let Some(ack) = ack {
                frame = frame.header("ack", ack);
            }
            for (name, value) in shared.iter() {
                frame = frame.header(name, value);
            }
            let frame = frame.body(body.clone());
            assert_eq!(
                out,
                encode_to_bytes(&frame, version).expect("valid"),
                "{version}"
            );
            // The head and the tail are the same bytes.
            let mut head = BytesMut::new();
            prepared
                .write_head("sub-0", "m\\7", ack, &mut head)
                .expect("valid");
            head.extend_from_slice(prepared.tail());
            assert_eq!(head, out);
        }
    }
}

#[test]
fn a_prepared_message_refuses_what_its_version_cannot_write() {
    let prepared =
        PreparedMessage::new(Version::V1_0, &Headers::new(), Bytes::new()).expect("valid");
    let mut out = BytesMut::new();
    assert_eq!(
        prepared.write_for("a\nb", "1", None, &mut out),
        Err(EncodeError::Unencodable { byte: b'\n' })
    );
    assert_eq!(
        prepared.write_for("a", "1", Some("\r"), &mut out),
        Err(EncodeError::Unencodable { byte: b'\r' })
    );
    assert!(out.is_empty());
    let bad: Headers = [("", "x")].into_iter().collect();
    assert_eq!(
        PreparedMessage::new(Version::V1_2, &bad, Bytes::new()),
        Err(EncodeError::EmptyHeaderName)
    );
}
