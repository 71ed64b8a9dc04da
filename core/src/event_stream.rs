//! The server side of an SSE connection: a session's transmits as `text/event-stream` bytes,
//! each event's `id:` the connection's cursor, so a browser's automatic `Last-Event-ID` resumes
//! every stream of the connection (`docs/protocol.md`, section 13).

use crate::cursor::{Cursor, Stream};
use crate::delivery::Delivery;
use crate::envelope::{Codec, ServerMessage, message_type};
use crate::session::Transmit;
use crate::sse::{Fields, encode_clean_event, encode_comment};

/// Turns one SSE session's transmits into bytes, keeping its cursor.
///
/// - The first bytes are a `retry:` block, the reconnection delay.
/// - The session's `welcome` goes out as the `open` event, so a client knows the stream is live.
/// - Every other frame is an event named for its message type, with the frame as its data.
/// - Every event's `id:` is the cursor after it: the `streams` message sets where each stream
///   starts, and each stored message moves its stream on.
/// - A keep-alive is a comment; the close ends the stream.
#[derive(Clone, Debug)]
pub struct EventStream {
    cursor: Cursor,
    retry_ms: u64,
    started: bool,
    /// The cursor's text, rewritten for each event into the same buffer.
    id: String,
}

impl EventStream {
    /// A stream that asks clients to reconnect after `retry_ms`, starting from `cursor` (the one
    /// the connection resumed with, if any).
    pub fn new(retry_ms: u64, cursor: Option<Cursor>) -> Self {
        Self {
            cursor: cursor.unwrap_or_default(),
            retry_ms,
            started: false,
            id: String::new(),
        }
    }

    /// The connection's cursor so far.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Appends the bytes for `transmit` to `out`. False for the close: the stream ends there.
    pub fn encode(&mut self, transmit: &Transmit, out: &mut Vec<u8>) -> bool {
        if !self.started {
            self.started = true;
            Fields::default()
                .retry(self.retry_ms)
                .encode(out)
                .expect("no id or type to refuse");
        }
        match transmit {
            Transmit::Frame(delivery) => {
                let frame = delivery.frame.as_str();
                let kind = message_type(frame);
                track(&mut self.cursor, delivery);
                let event = if kind == "welcome" { "open" } else { kind };
                self.id.clear();
                self.cursor.write_to(&mut self.id);
                // A cursor's text holds no line break or NUL (its names' alphabet), and a frame
                // of one line holds none in its type either.
                if delivery.is_one_line() {
                    encode_clean_event(out, &self.id, event, frame);
                } else {
                    Fields::data(frame)
                        .event(event)
                        .id(&self.id)
                        .encode(out)
                        .expect("cursors and message types hold no line breaks");
                }
                true
            }
            Transmit::KeepAlive => {
                encode_comment(out, "");
                true
            }
            Transmit::Close(_) => false,
            // WebSocket pings have no SSE form; the keep-alive does their work.
            _ => true,
        }
    }

    /// Forgets a stream the connection no longer follows (it left a room).
    pub fn forget(&mut self, stream: &Stream) {
        self.cursor.remove(stream);
    }
}

/// What a delivery did to a connection's cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tracked {
    /// A stored message: its stream moved on.
    Stored,
    /// The `streams` message: each stream's start was set. `false` if a stream the cursor named
    /// could not be recovered.
    Started {
        /// Every named stream was recovered.
        recovered: bool,
    },
    /// Anything else (replies, presence, typing): the cursor is unchanged.
    Other,
}

/// Moves `cursor` on for `delivery`: a stored message sets its stream's position, the `streams`
/// message sets where each stream starts. The one rule for SSE ids and long-poll cursors.
pub(crate) fn track(cursor: &mut Cursor, delivery: &Delivery) -> Tracked {
    if let Some((stream, position)) = &delivery.stream {
        // A full cursor (128 streams) refuses a new one; the stream is then not resumable by
        // cursor, which `streams` on the next connection will say.
        let _ = cursor.advance(stream, *position);
        return Tracked::Stored;
    }
    let frame = delivery.frame.as_str();
    if message_type(frame) != "streams" {
        return Tracked::Other;
    }
    let mut recovered = true;
    if let Ok(ServerMessage::Streams { streams }) = Codec::new().decode_server(frame) {
        for start in streams {
            recovered &= start.recovered != Some(false);
            let _ = cursor.set(start.stream, start.id);
        }
    }
    Tracked::Started { recovered }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::{Close, CloseCode};
    use crate::cursor::Position;
    use crate::envelope::{Payload, StreamStart};
    use crate::names::{RoomName, UserId};
    use crate::sse::Decoder;

    fn room(name: &str) -> RoomName {
        RoomName::new(name).expect("valid")
    }

    fn frame(message: ServerMessage) -> Transmit {
        Transmit::Frame(Delivery::unstreamed(message.encode()))
    }

    fn message(room_name: &str, offset: u64) -> Transmit {
        let id = Position { epoch: 0xa, offset };
        let data = Payload::from_json(&offset.to_string()).expect("JSON");
        let message = ServerMessage::Message {
            event: None,
            room: room(room_name),
            id,
            from: None,
            data,
        };
        Transmit::Frame(Delivery::streamed(
            message.encode(),
            Stream::Room(room(room_name)),
            id,
        ))
    }

    /// Decodes the bytes as a browser would: (event type, data, last event id) per event.
    fn browser(bytes: &[u8]) -> (Vec<(String, String, String)>, Option<u64>) {
        let mut decoder = Decoder::new();
        let mut input = bytes;
        let mut events = Vec::new();
        while let Some(event) = decoder.decode(&mut input).expect("within limits") {
            events.push((
                event.event.to_owned(),
                event.data.to_owned(),
                event.id.to_owned(),
            ));
        }
        (events, decoder.retry())
    }

    #[test]
    fn a_frame_with_line_breaks_goes_out_as_data_lines() {
        // An application's raw JSON keeps its whitespace, line breaks included.
        let id = Position {
            epoch: 0xa,
            offset: 1,
        };
        let data = Payload::from_json("{\"a\":\r\n1}").expect("JSON");
        let message = ServerMessage::Message {
            event: None,
            room: room("r"),
            id,
            from: None,
            data,
        };
        let frame = message.encode();
        let delivery = Delivery::streamed(frame.clone(), Stream::Room(room("r")), id);
        assert!(!delivery.is_one_line(), "{}", frame.as_str());
        let mut out = Vec::new();
        EventStream::new(1000, None).encode(&Transmit::Frame(delivery), &mut out);
        let (events, _) = browser(&out);
        // A reader sees each line break as one LF.
        let text = frame.as_str().replace("\r\n", "\n");
        assert_eq!(
            events,
            [("message".to_owned(), text, "room:r=a.1".to_owned())]
        );
        let one_line = Delivery::unstreamed(
            ServerMessage::Message {
                event: None,
                room: room("r"),
                id,
                from: None,
                data: Payload::from_json("{\"a\":1}").expect("JSON"),
            }
            .encode(),
        );
        assert!(one_line.is_one_line());
    }

    #[test]
    fn a_stream_opens_with_retry_then_the_welcome_as_open() {
        let mut stream = EventStream::new(2000, None);
        let mut out = Vec::new();
        let welcome = ServerMessage::Welcome {
            session: "s1".into(),
            user: UserId::new("alice").expect("valid"),
            ping_interval_ms: 15000,
            ping_timeout_ms: 10000,
            max_frame: 65536,
        };
        assert!(stream.encode(&frame(welcome.clone()), &mut out));
        assert!(out.starts_with(b"retry: 2000\n\n"));
        let (events, retry) = browser(&out);
        assert_eq!(retry, Some(2000));
        assert_eq!(
            events,
            [(
                "open".to_owned(),
                welcome.encode().as_str().to_owned(),
                String::new()
            )]
        );
    }

    #[test]
    fn every_event_carries_the_cursor_after_it() {
        let mut stream = EventStream::new(1000, None);
        let mut out = Vec::new();
        let starts = ServerMessage::Streams {
            streams: vec![
                StreamStart {
                    stream: Stream::User,
                    id: Position {
                        epoch: 7,
                        offset: 3,
                    },
                    recovered: None,
                    replayed: 0,
                    unread: None,
                },
                StreamStart {
                    stream: Stream::Room(room("a")),
                    id: Position {
                        epoch: 0xa,
                        offset: 0,
                    },
                    recovered: None,
                    replayed: 0,
                    unread: None,
                },
            ],
        };
        stream.encode(&frame(starts), &mut out);
        stream.encode(&message("a", 1), &mut out);
        stream.encode(&message("a", 2), &mut out);
        let presence = ServerMessage::Presence {
            room: room("a"),
            change: crate::envelope::PresenceChange::Diff {
                joins: vec![],
                leaves: vec![],
            },
        };
        stream.encode(&frame(presence), &mut out);
        let (events, _) = browser(&out);
        let ids: Vec<&str> = events.iter().map(|e| e.2.as_str()).collect();
        assert_eq!(
            ids,
            [
                "room:a=a.0,user=7.3",
                "room:a=a.1,user=7.3",
                "room:a=a.2,user=7.3",
                "room:a=a.2,user=7.3"
            ]
        );
        let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(kinds, ["streams", "message", "message", "presence"]);
        // What the browser would send back as Last-Event-ID is a cursor the hub resumes from.
        let cursor: Cursor = ids[3].parse().expect("a cursor");
        assert_eq!(
            cursor.get(&Stream::Room(room("a"))),
            Some(Position {
                epoch: 0xa,
                offset: 2
            })
        );
        assert_eq!(&cursor, stream.cursor());
    }

    /// What a proptest case does to a stream: a stored message, a `streams` message, a
    /// frame that moves nothing, or leaving a stream.
    #[derive(Clone, Debug)]
    enum Op {
        Stored(usize, Position),
        Started(Vec<(usize, Position)>),
        Other,
        Forget(usize),
    }

    fn streams() -> [Stream; 5] {
        [
            Stream::Room(room("a")),
            Stream::Room(room("lobby/long-name.2")),
            Stream::Room(room("b:c")),
            Stream::User,
            Stream::All,
        ]
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        // Epochs and offsets of every digit count, so a position's text grows and shrinks.
        let position = (
            prop_oneof![0..16u64, any::<u64>()],
            prop_oneof![0..12u64, any::<u64>()],
        )
            .prop_map(|(epoch, offset)| Position { epoch, offset });
        prop_oneof![
            6 => (0..5usize, position.clone()).prop_map(|(s, p)| Op::Stored(s, p)),
            1 => proptest::collection::vec((0..5usize, position), 0..4).prop_map(Op::Started),
            1 => Just(Op::Other),
            1 => (0..5usize).prop_map(Op::Forget),
        ]
    }

    proptest::proptest! {
        /// Whatever moves the cursor, in any order, from any resumed cursor: every event's id,
        /// as a browser reads it, is the whole cursor after the event, and parses back to it.
        #[test]
        fn every_id_is_the_cursor_after_its_event(
            resumed in proptest::collection::vec((0..5usize, 0..100u64), 0..4),
            ops in proptest::collection::vec(op(), 1..40),
        ) {
            let streams = streams();
            let mut cursor = Cursor::new();
            for (s, offset) in resumed {
                cursor.set(streams[s].clone(), Position { epoch: 1, offset }).expect("room");
            }
            let mut stream = EventStream::new(1000, Some(cursor));
            for op in ops {
                let transmit = match op {
                    Op::Stored(s, id) => {
                        let data = Payload::from_json("1").expect("JSON");
                        let frame = ServerMessage::Broadcast { id, event: None, data }.encode();
                        Transmit::Frame(Delivery::streamed(frame, streams[s].clone(), id))
                    }
                    Op::Started(starts) => frame(ServerMessage::Streams {
                        streams: starts
                            .into_iter()
                            .map(|(s, id)| StreamStart {
                                stream: streams[s].clone(),
                                id,
                                recovered: None,
                                replayed: 0,
                                unread: None,
                            })
                            .collect(),
                    }),
                    Op::Other => frame(ServerMessage::Presence {
                        room: room("a"),
                        change: crate::envelope::PresenceChange::Diff {
                            joins: vec![],
                            leaves: vec![],
                        },
                    }),
                    Op::Forget(s) => {
                        stream.forget(&streams[s]);
                        continue;
                    }
                };
                let mut out = Vec::new();
                stream.encode(&transmit, &mut out);
                let (events, _) = browser(&out);
                proptest::prop_assert_eq!(&events[0].2, &stream.cursor().to_string());
                let parsed: Cursor = events[0].2.parse().expect("a cursor");
                proptest::prop_assert_eq!(&parsed, stream.cursor());
            }
        }
    }

    #[test]
    fn a_resumed_stream_starts_from_its_cursor() {
        let cursor: Cursor = "room:a=a.4".parse().expect("valid");
        let mut stream = EventStream::new(1000, Some(cursor));
        let mut out = Vec::new();
        stream.encode(&message("a", 5), &mut out);
        assert_eq!(browser(&out).0[0].2, "room:a=a.5");
        stream.forget(&Stream::Room(room("a")));
        assert!(stream.cursor().is_empty());
    }

    #[test]
    fn keep_alives_are_comments_and_the_close_ends_the_stream() {
        let mut stream = EventStream::new(1000, None);
        let mut out = Vec::new();
        assert!(stream.encode(&Transmit::KeepAlive, &mut out));
        assert!(
            stream.encode(&Transmit::Ping, &mut out),
            "no SSE form, nothing written"
        );
        assert_eq!(out, b"retry: 1000\n\n:\n");
        assert!(!stream.encode(
            &Transmit::Close(Close::new(CloseCode::GoingAway, "bye")),
            &mut out
        ));
        assert_eq!(browser(&out).0, []);
    }

    #[test]
    fn the_message_type_is_read_from_the_frame_head() {
        assert_eq!(
            message_type(r#"{"type":"presence","room":"a"}"#),
            "presence"
        );
        assert_eq!(message_type("not ours"), "message");
        assert_eq!(message_type(r#"{"type":"unterminated"#), "message");
        assert_eq!(message_type(r#"{"type":"","x":1}"#), "");
        assert_eq!(message_type(r#"{"type":"ünï","x":1}"#), "ünï");
    }
}
