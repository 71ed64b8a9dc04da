//! Stream positions and cursors: how a client says what it has seen, so it can resume exactly.
//!
//! Rooms, each user's outbox and the broadcast feed are streams. Every message in a stream has a
//! [`Position`]: the stream's epoch (which changes when the stream's history starts afresh) and
//! an offset that grows by one per message. A [`Cursor`] holds one position per stream a
//! connection follows; its text form travels as an SSE `id:`, so a browser's automatic
//! `Last-Event-ID` resumes every stream of the connection at once.

use std::fmt;

use smallvec::SmallVec;

use crate::names::RoomName;

/// Most streams one cursor may name.
pub const MAX_CURSOR_STREAMS: usize = 128;
/// Longest cursor text, in bytes.
pub const MAX_CURSOR_LEN: usize = 16 * 1024;

/// A message's place in its stream. Text form: `<epoch as lowercase hex>.<offset>`, e.g. `1f.42`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The history the offset belongs to; a new epoch means older offsets are meaningless.
    pub epoch: u64,
    /// The message's number in the stream: 1 for the first, one more for each next.
    pub offset: u64,
}

/// A stream a client can follow.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// A room's messages. Text form: `room:<name>`.
    Room(RoomName),
    /// The connection's own user's outbox: direct messages and notifications. Text form: `user`.
    User,
    /// The broadcast feed. Text form: `all`.
    All,
}

/// The positions of the streams a connection follows. Text form: `<stream>=<position>` entries
/// joined by `,`, e.g. `room:lobby=1f.42,user=1f.7`; the empty text is the empty cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Sorted by stream, each stream once. A connection follows a few streams, and an SSE
    /// stream moves its cursor on with every event: the first two entries are held in place,
    /// where the stream's other state is, and more in one allocation; a `BTreeMap` node spread
    /// a lookup over three cache lines of its own (docs/performance.md).
    positions: SmallVec<[(Stream, Position); 2]>,
}

/// A position or cursor text that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorError(String);

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CursorError {}

fn error(what: impl Into<String>) -> CursorError {
    CursorError(what.into())
}

impl Position {
    /// Appends `<epoch hex>.<offset>` to `out`, as `Display` writes it.
    pub fn write_to(&self, out: &mut String) {
        push_hex(out, self.epoch);
        out.push('.');
        push_decimal(out, self.offset);
    }
}

// An SSE stream writes a cursor as every event's `id:`, once per event per connection: the
// digits go out two at a time, as slices of these tables, so no `core::fmt`, no char-by-char
// push and no UTF-8 check of a digit buffer (600 instructions per event before).
const DIGITS: &[u8; 16] = b"0123456789abcdef";
const HEX_PAIR_BYTES: [u8; 512] = pairs::<512>(16);
const DECIMAL_PAIR_BYTES: [u8; 200] = pairs::<200>(10);
/// `00 01 … fe ff`, without the spaces.
const HEX_PAIRS: &str = ascii(&HEX_PAIR_BYTES);
/// `00 01 … 98 99`, without the spaces.
const DECIMAL_PAIRS: &str = ascii(&DECIMAL_PAIR_BYTES);

/// Every two-digit number in `radix`, in order, as `N / 2` pairs of digits.
const fn pairs<const N: usize>(radix: usize) -> [u8; N] {
    let mut table = [0u8; N];
    let mut i = 0;
    while i < N / 2 {
        table[2 * i] = DIGITS[i / radix];
        table[2 * i + 1] = DIGITS[i % radix];
        i += 1;
    }
    table
}

const fn ascii(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => panic!("digits are ASCII"),
    }
}

/// Pair `i` of a table: its two digits, or only the second when `short` (a leading zero).
fn pair(table: &'static str, i: usize, short: bool) -> &'static str {
    let pair = table.get(2 * i..2 * i + 2).unwrap_or("00");
    if short { &pair[1..] } else { pair }
}

/// Appends `n` in lower-case hex, without leading zeros.
fn push_hex(out: &mut String, n: u64) {
    let bytes = n.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let lead = usize::from(bytes[first]);
    out.push_str(pair(HEX_PAIRS, lead, lead < 0x10));
    for &byte in &bytes[first + 1..] {
        out.push_str(pair(HEX_PAIRS, usize::from(byte), false));
    }
}

/// Appends `n` in decimal, without leading zeros.
fn push_decimal(out: &mut String, mut n: u64) {
    // Base-100 digits from the right; a u64 has at most ten.
    let mut low = [0u8; 10];
    let mut count = 0;
    while n >= 100 {
        low[count] = (n % 100) as u8;
        n /= 100;
        count += 1;
    }
    out.push_str(pair(DECIMAL_PAIRS, n as usize, n < 10));
    for &digits in low[..count].iter().rev() {
        out.push_str(pair(DECIMAL_PAIRS, usize::from(digits), false));
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::with_capacity(24);
        self.write_to(&mut text);
        f.write_str(&text)
    }
}

impl serde::Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::str::FromStr for Position {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, CursorError> {
        let bad = || error(format!("position {text:?} is not <epoch hex>.<offset>"));
        let (epoch, offset) = text.split_once('.').ok_or_else(bad)?;
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if epoch.is_empty() || epoch.len() > 16 || !epoch.chars().all(hex) {
            return Err(bad());
        }
        if offset.is_empty() || !offset.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(Self {
            epoch: u64::from_str_radix(epoch, 16).map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
        })
    }
}

impl Stream {
    /// Appends the stream's name to `out`, as `Display` writes it.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Self::Room(room) => {
                out.push_str("room:");
                out.push_str(room.as_str());
            }
            Self::User => out.push_str("user"),
            Self::All => out.push_str("all"),
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        self.write_to(&mut text);
        f.write_str(&text)
    }
}

impl serde::Serialize for Stream {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::str::FromStr for Stream {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, CursorError> {
        match text {
            "user" => Ok(Self::User),
            "all" => Ok(Self::All),
            _ => {
                let name = text
                    .strip_prefix("room:")
                    .ok_or_else(|| error(format!("unknown stream {text:?}")))?;
                RoomName::new(name)
                    .map(Self::Room)
                    .map_err(|e| error(format!("room name {name:?} {e}")))
            }
        }
    }
}

impl Cursor {
    /// The empty cursor.
    pub fn new() -> Self {
        Self::default()
    }

    /// The position of `stream`, if the cursor has one.
    pub fn get(&self, stream: &Stream) -> Option<Position> {
        let at = self.find(stream).ok()?;
        Some(self.positions[at].1)
    }

    /// Sets the position of `stream`. Refused past [`MAX_CURSOR_STREAMS`] streams.
    pub fn set(&mut self, stream: Stream, position: Position) -> Result<(), CursorError> {
        match self.find(&stream) {
            Ok(at) => self.positions[at].1 = position,
            Err(at) => self.insert(at, stream, position)?,
        }
        Ok(())
    }

    /// Sets the position of `stream` as [`set`](Self::set) does, cloning the stream only if
    /// the cursor does not name it yet: a stored message moves a stream on, and most often one
    /// the cursor already names.
    pub(crate) fn advance(
        &mut self,
        stream: &Stream,
        position: Position,
    ) -> Result<(), CursorError> {
        match self.find(stream) {
            Ok(at) => self.positions[at].1 = position,
            Err(at) => self.insert(at, stream.clone(), position)?,
        }
        Ok(())
    }

    /// Forgets `stream`.
    pub fn remove(&mut self, stream: &Stream) -> Option<Position> {
        let at = self.find(stream).ok()?;
        Some(self.positions.remove(at).1)
    }

    /// The streams and their positions, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (&Stream, Position)> {
        self.positions
            .iter()
            .map(|(stream, position)| (stream, *position))
    }

    /// How many streams the cursor names.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True for the empty cursor.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Where `stream` is (`Ok`) or would go (`Err`).
    fn find(&self, stream: &Stream) -> Result<usize, usize> {
        self.positions
            .binary_search_by(|(named, _)| named.cmp(stream))
    }

    fn insert(&mut self, at: usize, stream: Stream, position: Position) -> Result<(), CursorError> {
        if self.positions.len() >= MAX_CURSOR_STREAMS {
            return Err(error(format!(
                "a cursor holds at most {MAX_CURSOR_STREAMS} streams"
            )));
        }
        self.positions.insert(at, (stream, position));
        Ok(())
    }
}

impl Cursor {
    /// Appends the cursor's text to `out`, as `Display` writes it, without `core::fmt` or an
    /// allocation of its own.
    pub fn write_to(&self, out: &mut String) {
        for (i, (stream, position)) in self.positions.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            stream.write_to(out);
            out.push('=');
            position.write_to(out);
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        self.write_to(&mut text);
        f.write_str(&text)
    }
}

impl std::str::FromStr for Cursor {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, CursorError> {
        if text.len() > MAX_CURSOR_LEN {
            return Err(error(format!("a cursor is at most {MAX_CURSOR_LEN} bytes")));
        }
        let mut cursor = Self::new();
        if text.is_empty() {
            return Ok(cursor);
        }
        for entry in text.split(',') {
            let (stream, position) = entry.split_once('=').ok_or_else(|| {
                error(format!("cursor entry {entry:?} is not <stream>=<position>"))
            })?;
            let stream: Stream = stream.parse()?;
            if cursor.find(&stream).is_ok() {
                return Err(error(format!("cursor names {stream} twice")));
            }
            cursor.set(stream, position.parse()?)?;
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> Stream {
        Stream::Room(RoomName::new(name).expect("valid room"))
    }

    #[test]
    fn positions_read_back_and_refuse_near_misses() {
        let p: Position = "1f.42".parse().expect("valid");
        assert_eq!(
            p,
            Position {
                epoch: 0x1f,
                offset: 42
            }
        );
        assert_eq!(p.to_string(), "1f.42");
        let max = Position {
            epoch: u64::MAX,
            offset: u64::MAX,
        };
        assert_eq!(max.to_string().parse::<Position>(), Ok(max));
        // The hand-written digits are `{:x}.{}`'s, at the edges and in between.
        for (epoch, offset) in [
            (0, 0),
            (9, 10),
            (0xa, 99),
            (0xdead_beef, 1 << 40),
            (u64::MAX, u64::MAX),
        ] {
            let position = Position { epoch, offset };
            assert_eq!(position.to_string(), format!("{epoch:x}.{offset}"));
        }
        for bad in [
            "",
            "1f",
            ".42",
            "1f.",
            "1F.42",
            "g.1",
            "1f.-1",
            "1f.+1",
            "1f.4.2",
            "1f.18446744073709551616",
            "10000000000000000.1",
        ] {
            assert!(bad.parse::<Position>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cursors_read_back_in_a_stable_order() {
        let text = "user=1.7,room:lobby=1f.42,all=2.0";
        let cursor: Cursor = text.parse().expect("valid");
        assert_eq!(
            cursor.get(&room("lobby")),
            Some(Position {
                epoch: 0x1f,
                offset: 42
            })
        );
        assert_eq!(
            cursor.get(&Stream::User),
            Some(Position {
                epoch: 1,
                offset: 7
            })
        );
        assert_eq!(cursor.to_string(), "room:lobby=1f.42,user=1.7,all=2.0");
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        assert_eq!("".parse::<Cursor>(), Ok(Cursor::new()));
    }

    #[test]
    fn cursors_refuse_bad_entries_duplicates_and_excess() {
        for bad in [
            "user",
            "user=",
            "nope=1.1",
            "room:=1.1",
            "room:a b=1.1",
            "user=1.1,user=2.2",
            "user=1.1,",
            ",",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..=MAX_CURSOR_STREAMS)
            .map(|i| format!("room:r{i}=1.1"))
            .collect();
        assert!(
            many[..MAX_CURSOR_STREAMS]
                .join(",")
                .parse::<Cursor>()
                .is_ok()
        );
        assert!(many.join(",").parse::<Cursor>().is_err());
        assert!("x".repeat(MAX_CURSOR_LEN + 1).parse::<Cursor>().is_err());
    }

    proptest::proptest! {
        /// Under any sets, advances and removals, the cursor holds what a `BTreeMap` of the
        /// same operations holds, in the same order, and refuses the same sets (a stream past
        /// the limit of 128: removals are rare, so the cursor stays near it).
        #[test]
        fn a_cursor_behaves_as_an_ordered_map(
            ops in proptest::collection::vec((0..40u8, 0..132usize, proptest::num::u64::ANY), 400..1000),
        ) {
            let stream = |i: usize| match i {
                0 => Stream::User,
                1 => Stream::All,
                i => room(&format!("r{i}")),
            };
            let mut cursor = Cursor::new();
            let mut model = std::collections::BTreeMap::new();
            for (op, i, offset) in ops {
                let (key, position) = (stream(i), Position { epoch: 1, offset });
                match op {
                    0..=38 => {
                        let fits = model.len() < MAX_CURSOR_STREAMS || model.contains_key(&key);
                        let set = if op < 20 {
                            cursor.set(key.clone(), position)
                        } else {
                            cursor.advance(&key, position)
                        };
                        proptest::prop_assert_eq!(set.is_ok(), fits);
                        if fits {
                            model.insert(key.clone(), position);
                        }
                    }
                    _ => proptest::prop_assert_eq!(cursor.remove(&key), model.remove(&key)),
                }
                proptest::prop_assert_eq!(cursor.get(&key), model.get(&key).copied());
            }
            let held: Vec<_> = cursor.iter().map(|(s, p)| (s.clone(), p)).collect();
            let expected: Vec<_> = model.into_iter().collect();
            proptest::prop_assert_eq!(held, expected);
            let text = cursor.to_string();
            proptest::prop_assert_eq!(text.parse::<Cursor>(), Ok(cursor));
        }

        /// The hand-written digits are `{:x}.{}`'s for every position.
        #[test]
        fn position_text_is_hex_dot_decimal(epoch: u64, offset: u64) {
            let position = Position { epoch, offset };
            proptest::prop_assert_eq!(position.to_string(), format!("{epoch:x}.{offset}"));
        }
    }

    #[test]
    fn cursor_text_is_a_valid_sse_id() {
        let cursor: Cursor = "room:a/b.c_d-e:f=ff.1,all=0.0".parse().expect("valid");
        let text = cursor.to_string();
        assert!(!text.contains(['\r', '\n', '\0']));
    }
}
