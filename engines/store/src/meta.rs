//! What the store keeps of a stream beside its records, and the tables' layout.

use std::time::Duration;

use redb::TableDefinition;
use roomcast_core::cursor::Position;
use roomcast_core::engine::{Retention, View};

/// Streams by key ([`StreamId::key`](roomcast_core::engine::StreamId::key)): their [`Meta`].
pub(crate) const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");

/// Records by (stream number, offset): `at_ms` (8 bytes), `size` (4 bytes, little-endian),
/// then the record's bytes ([`Record::encode`](roomcast_core::engine::Record::encode)).
pub(crate) const RECORDS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("records");

/// Bytes before a record's own in its value.
pub(crate) const RECORD_HEAD: usize = 12;

/// A stream's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Its number in record keys.
    pub(crate) id: u64,
    pub(crate) epoch: u64,
    /// The offset the next record gets.
    pub(crate) next: u64,
    /// The oldest offset kept (`next` when none is).
    pub(crate) first: u64,
    /// Its user's read mark (outboxes).
    pub(crate) read: u64,
    /// Bytes of the records kept ([`Record::size`](roomcast_core::engine::Record::size)).
    pub(crate) bytes: u64,
    pub(crate) retention: Option<Retention>,
    /// Since when it has been still, in milliseconds since the Unix epoch.
    pub(crate) touched_ms: u64,
}

/// The encoded size of a [`Meta`].
const META_LEN: usize = 8 * 10 + 1;

impl Meta {
    pub(crate) fn new(id: u64, epoch: u64, now_ms: u64) -> Self {
        Self {
            id,
            epoch,
            next: 1,
            first: 1,
            read: 0,
            bytes: 0,
            retention: None,
            touched_ms: now_ms,
        }
    }

    pub(crate) fn position(&self, offset: u64) -> Position {
        Position {
            epoch: self.epoch,
            offset,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first == self.next
    }

    pub(crate) fn len(&self) -> u64 {
        self.next - self.first
    }

    /// The view, with `first` past the records already aged out (`first` given).
    pub(crate) fn view(&self, first: u64) -> View {
        View {
            head: self.position(self.next - 1),
            first,
            read: self.read,
        }
    }

    /// The oldest time a record may have been appended at and still be kept, as of `now_ms`.
    pub(crate) fn cutoff_ms(&self, now_ms: u64) -> Option<u64> {
        let age = self.retention?.max_age;
        Some(now_ms.saturating_sub(millis(age)))
    }

    /// Holds nothing and has been still for its retention age (see the memory engine's rule).
    pub(crate) fn forgettable(&self, now_ms: u64) -> bool {
        self.is_empty()
            && self
                .retention
                .is_none_or(|r| now_ms.saturating_sub(self.touched_ms) >= millis(r.max_age))
    }

    pub(crate) fn encode(&self) -> [u8; META_LEN] {
        let mut out = [0u8; META_LEN];
        let retention = self.retention.unwrap_or(Retention {
            max_messages: 0,
            max_bytes: 0,
            max_age: Duration::ZERO,
        });
        let fields = [
            self.id,
            self.epoch,
            self.next,
            self.first,
            self.read,
            self.bytes,
            self.touched_ms,
            retention.max_messages as u64,
            retention.max_bytes as u64,
            millis(retention.max_age),
        ];
        for (i, field) in fields.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&field.to_le_bytes());
        }
        out[80] = u8::from(self.retention.is_some());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != META_LEN {
            return None;
        }
        let field = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8"));
        let retention = (bytes[80] == 1).then(|| Retention {
            max_messages: usize::try_from(field(7)).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(field(8)).unwrap_or(usize::MAX),
            max_age: Duration::from_millis(field(9)),
        });
        let meta = Self {
            id: field(0),
            epoch: field(1),
            next: field(2),
            first: field(3),
            read: field(4),
            bytes: field(5),
            touched_ms: field(6),
            retention,
        };
        (meta.first <= meta.next && meta.next >= 1).then_some(meta)
    }
}

/// A record's value: when it was appended, its size, its bytes.
pub(crate) fn record_value(at_ms: u64, size: usize, record: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(RECORD_HEAD + record.len());
    value.extend_from_slice(&at_ms.to_le_bytes());
    value.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
    value.extend_from_slice(record);
    value
}

/// A record value's head: when it was appended, and its size.
pub(crate) fn record_head(value: &[u8]) -> Option<(u64, usize)> {
    let at = u64::from_le_bytes(value.get(..8)?.try_into().ok()?);
    let size = u32::from_le_bytes(value.get(8..12)?.try_into().ok()?);
    Some((at, size as usize))
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meta_decodes_to_itself() {
        let mut meta = Meta::new(7, 0xdead_beef, 1_700_000_000_000);
        meta.next = 42;
        meta.first = 30;
        meta.read = 35;
        meta.bytes = 1234;
        assert_eq!(Meta::decode(&meta.encode()), Some(meta));
        meta.retention = Some(Retention {
            max_messages: 1000,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(600),
        });
        assert_eq!(Meta::decode(&meta.encode()), Some(meta));
        assert_eq!(Meta::decode(&meta.encode()[..80]), None, "torn");
        meta.first = 43;
        assert_eq!(Meta::decode(&meta.encode()), None, "first past next");
    }

    #[test]
    fn a_record_value_keeps_its_time_and_size() {
        let value = record_value(99, 40, b"{}");
        assert_eq!(record_head(&value), Some((99, 40)));
        assert_eq!(&value[RECORD_HEAD..], b"{}");
        assert_eq!(record_head(&value[..5]), None);
    }
}
