//! A long-poll answer: the stored messages after a cursor, and the cursor to poll with next.
//!
//! A long-poll request is a short-lived SSE-like session: it connects with the client's cursor,
//! the hub replays what the client missed (or says it cannot), and [`LongPoll`] collects the
//! stored messages (room messages, notifications, direct messages, broadcasts) until it is full
//! or the driver's wait ends. Presence, typing and replies are left out: a long-poll client sees
//! streams, not live state. The answer is one JSON object (`docs/protocol.md`, section 14):
//!
//! ```json
//! {"cursor":"room:lobby=1f.3,user=2a.7","recovered":true,"events":[{"type":"message",...}]}
//! ```
//!
//! `cursor` is the position after the last event included, never further, so messages left out
//! because the answer was full come with the next poll.

use crate::cursor::Cursor;
use crate::envelope::Frame;
use crate::event_stream::{Tracked, track};
use crate::session::Transmit;

/// The stored messages of one poll, bounded by count and bytes.
#[derive(Clone, Debug)]
pub struct LongPoll {
    cursor: Cursor,
    events: Vec<Frame>,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
    recovered: bool,
    started: bool,
    full: bool,
}

impl LongPoll {
    /// An empty answer starting from `cursor`, holding at most `max_events` events and about
    /// `max_bytes` of them (always at least one event, so a large message cannot block a poll).
    pub fn new(cursor: Option<Cursor>, max_events: usize, max_bytes: usize) -> Self {
        Self {
            cursor: cursor.unwrap_or_default(),
            events: Vec::new(),
            bytes: 0,
            max_events: max_events.max(1),
            max_bytes,
            recovered: true,
            started: false,
            full: false,
        }
    }

    /// Takes one of the session's transmits. Once full, everything is left out, and the cursor
    /// stays after the last event taken.
    pub fn push(&mut self, transmit: &Transmit) {
        let Transmit::Frame(delivery) = transmit else {
            return; // keep-alives, pings and the close have no place in an answer
        };
        if self.full {
            return;
        }
        let len = delivery.frame.as_str().len();
        if delivery.stream.is_some()
            && !self.events.is_empty()
            && self.bytes.saturating_add(len) > self.max_bytes
        {
            self.full = true;
            return;
        }
        match track(&mut self.cursor, delivery) {
            Tracked::Stored => {
                self.events.push(delivery.frame.clone());
                self.bytes += len;
                self.full = self.events.len() >= self.max_events;
            }
            Tracked::Started { recovered } => {
                self.recovered &= recovered;
                self.started = true;
            }
            Tracked::Other => {}
        }
    }

    /// Whether the hub's `streams` message came: until then the cursor and `recovered` are not
    /// known, and the replay may still be on its way, so a poll must not answer yet.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The events taken so far.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event was taken.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether it takes no more events.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The cursor after the last event taken.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Whether every stream the starting cursor named was recovered (false: there is a gap the
    /// history no longer covers, as `recovered: false` says on a WebSocket).
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// The answer as JSON; each event is its frame, unchanged.
    pub fn encode(&self) -> String {
        let cursor =
            serde_json::to_string(&self.cursor.to_string()).expect("a string always encodes");
        let mut out = String::with_capacity(64 + cursor.len() + self.bytes + self.events.len());
        out.push_str(r#"{"cursor":"#);
        out.push_str(&cursor);
        out.push_str(r#","recovered":"#);
        out.push_str(if self.recovered { "true" } else { "false" });
        out.push_str(r#","events":["#);
        for (i, frame) in self.events.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(frame.as_str());
        }
        out.push_str("]}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::{Close, CloseCode};
    use crate::cursor::{Position, Stream};
    use crate::delivery::Delivery;
    use crate::envelope::{Payload, ServerMessage, StreamStart};
    use crate::names::RoomName;

    fn room(name: &str) -> RoomName {
        RoomName::new(name).expect("valid")
    }

    fn message(offset: u64, data: &str) -> Transmit {
        let id = Position { epoch: 0xa, offset };
        let message = ServerMessage::Message {
            event: None,
            room: room("a"),
            id,
            from: None,
            data: Payload::from_json(data).expect("JSON"),
        };
        Transmit::Frame(Delivery::streamed(
            message.encode(),
            Stream::Room(room("a")),
            id,
        ))
    }

    fn streams(recovered: Option<bool>) -> Transmit {
        let message = ServerMessage::Streams {
            streams: vec![StreamStart {
                stream: Stream::Room(room("a")),
                id: Position {
                    epoch: 0xa,
                    offset: 2,
                },
                recovered,
                replayed: 0,
                unread: None,
            }],
        };
        Transmit::Frame(Delivery::unstreamed(message.encode()))
    }

    fn presence() -> Transmit {
        let message = ServerMessage::Presence {
            room: room("a"),
            change: crate::envelope::PresenceChange::Diff {
                joins: vec![],
                leaves: vec![],
            },
        };
        Transmit::Frame(Delivery::unstreamed(message.encode()))
    }

    #[test]
    fn stored_messages_are_taken_and_the_rest_left_out() {
        let mut poll = LongPoll::new(None, 10, 1 << 20);
        poll.push(&streams(None));
        poll.push(&presence());
        poll.push(&Transmit::KeepAlive);
        poll.push(&message(3, "1"));
        poll.push(&message(4, "[2]"));
        poll.push(&Transmit::Close(Close::new(CloseCode::Normal, "")));
        assert_eq!(poll.len(), 2);
        assert!(poll.recovered());
        let answer: serde_json::Value = serde_json::from_str(&poll.encode()).expect("JSON");
        assert_eq!(answer["cursor"], "room:a=a.4");
        assert_eq!(answer["recovered"], true);
        assert_eq!(answer["events"][0]["data"], 1);
        assert_eq!(answer["events"][1]["data"], serde_json::json!([2]));
        assert_eq!(answer["events"][1]["id"], "a.4");
    }

    #[test]
    fn an_empty_poll_still_answers_the_cursor_to_poll_with() {
        let mut poll = LongPoll::new(None, 10, 1 << 20);
        assert!(!poll.is_started());
        poll.push(&streams(None));
        assert!(poll.is_started());
        assert!(poll.is_empty());
        assert_eq!(
            poll.encode(),
            r#"{"cursor":"room:a=a.2","recovered":true,"events":[]}"#
        );
    }

    #[test]
    fn a_gap_is_reported() {
        let mut poll = LongPoll::new(None, 10, 1 << 20);
        poll.push(&streams(Some(false)));
        assert!(!poll.recovered());
        assert!(poll.encode().contains(r#""recovered":false"#));
    }

    #[test]
    fn a_full_answer_keeps_its_cursor_at_the_last_event_taken() {
        let mut poll = LongPoll::new(None, 2, 1 << 20);
        for offset in 3..6 {
            poll.push(&message(offset, "0"));
        }
        assert!(poll.is_full());
        assert_eq!(poll.len(), 2);
        assert_eq!(poll.cursor().to_string(), "room:a=a.4");
    }

    #[test]
    fn the_byte_bound_holds_but_one_large_event_always_fits() {
        let big = format!("\"{}\"", "x".repeat(500));
        let mut poll = LongPoll::new(None, 100, 100);
        poll.push(&message(3, &big));
        assert_eq!(poll.len(), 1, "the first event is taken whatever its size");
        poll.push(&message(4, "0"));
        assert!(poll.is_full());
        assert_eq!(poll.len(), 1);
        assert_eq!(poll.cursor().to_string(), "room:a=a.3");
    }
}
