use std::io::Cursor;

use proptest::prelude::*;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::*;

#[test]
fn heads_use_the_minimal_length_encoding() {
    // RFC 6455, 5.2: 7 bits up to 125, then 126 and 16 bits, then 127 and 64 bits.
    let table: [(usize, &[u8]); 6] = [
        (0, &[0x81, 0]),
        (125, &[0x81, 125]),
        (126, &[0x81, 126, 0, 126]),
        (0xffff, &[0x81, 126, 0xff, 0xff]),
        (0x1_0000, &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        (
            usize::MAX,
            &[0x81, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    ];
    for (len, bytes) in table {
        assert_eq!(Head::new(TEXT, len).as_bytes(), bytes, "{len}");
    }
    // The 5.7 example: a single-frame unmasked text message "Hello".
    let mut frames = Frames::default();
    frames.push(TEXT, Bytes::from_static(b"Hello"));
    let mut out = [0u8; 16];
    let used = frames.copy_into(&mut out).expect("fits");
    assert_eq!(&out[..used], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    // An unmasked ping with no payload.
    assert_eq!(Head::new(PING, 0).as_bytes(), &[0x89, 0]);
}

#[test]
fn frames_that_do_not_fit_are_not_copied() {
    let mut frames = Frames::default();
    frames.push(TEXT, Bytes::from(vec![b'x'; 10]));
    frames.push(PING, Bytes::new());
    assert_eq!(frames.len(), 2);
    assert_eq!(frames.copy_into(&mut [0u8; 14]), Some(14));
    assert_eq!(frames.copy_into(&mut [0u8; 13]), None);
    frames.clear(64);
    assert!(frames.is_empty());
    assert_eq!(frames.copy_into(&mut [0u8; 0]), Some(0));
}

/// A frame of a proptest case: a first byte and a payload length.
fn frame() -> impl Strategy<Value = (u8, usize)> {
    let first = prop_oneof![
        Just(TEXT),
        Just(BINARY),
        Just(PING),
        Just(PONG),
        Just(CLOSE)
    ];
    // Lengths around every edge of the length encodings, and some small ones.
    let len = prop_oneof![0..130usize, 65_530..65_540usize, 0..3_000usize];
    (first, len)
}

proptest! {
    /// Every frame written here reads back through tungstenite: its FIN, opcode, no mask, its
    /// length and its payload; the heads laid out for a vectored write give the same bytes, and
    /// so does the copy when it fits.
    #[test]
    fn every_frame_written_here_reads_back_through_tungstenite(
        case in proptest::collection::vec(frame(), 1..8),
    ) {
        let mut frames = Frames::default();
        let payloads: Vec<Bytes> = case
            .iter()
            .enumerate()
            .map(|(n, (_, len))| Bytes::from(vec![n as u8; *len]))
            .collect();
        for ((first, _), payload) in case.iter().zip(&payloads) {
            frames.push(*first, payload.clone());
        }
        let mut written = Vec::new();
        for (head, payload) in frames.iter() {
            written.extend_from_slice(head.as_bytes());
            written.extend_from_slice(payload);
        }
        let mut cursor = Cursor::new(&written[..]);
        for ((first, len), payload) in case.iter().zip(&payloads) {
            let (header, length) = FrameHeader::parse(&mut cursor)
                .expect("a valid head")
                .expect("a whole head");
            let opcode = match *first {
                TEXT => OpCode::Data(Data::Text),
                BINARY => OpCode::Data(Data::Binary),
                PING => OpCode::Control(Control::Ping),
                PONG => OpCode::Control(Control::Pong),
                _ => OpCode::Control(Control::Close),
            };
            prop_assert!(header.is_final);
            prop_assert_eq!(header.opcode, opcode);
            prop_assert_eq!(header.mask, None);
            prop_assert_eq!(length, *len as u64);
            let start = cursor.position() as usize;
            prop_assert!(written[start..start + len] == payload[..]);
            cursor.set_position((start + len) as u64);
        }
        prop_assert_eq!(cursor.position() as usize, written.len());
        let (mut heads, mut ends) = (Vec::new(), Vec::new());
        frames.heads_into(&mut heads, &mut ends);
        let mut vectored = Vec::new();
        let mut start = 0;
        for (end, payload) in ends.iter().zip(&payloads) {
            vectored.extend_from_slice(&heads[start..*end]);
            vectored.extend_from_slice(payload);
            start = *end;
        }
        prop_assert!(vectored == written);
        let mut copy = vec![0u8; written.len() + 1];
        let used = frames.copy_into(&mut copy).expect("fits");
        prop_assert!(copy[..used] == written[..]);
        prop_assert_eq!(frames.copy_into(&mut copy[..written.len() - 1]), None, "one byte short");
    }
}
