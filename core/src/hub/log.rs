//! A stream's log: epoch, offsets and a bounded history, from which a client resumes exactly.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::cursor::Position;
use crate::delivery::{SessionId, Shared};

/// How much of a stream is kept: whichever bound is reached first drops the oldest message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLimit {
    /// Most messages kept.
    pub max_messages: usize,
    /// Oldest message kept.
    pub max_age: Duration,
}

/// What a resume from a position finds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recovery<'a> {
    /// Every message after the position is still here (possibly none): these, in order.
    Recovered(Vec<&'a Entry>),
    /// The history no longer covers the gap, or the position is of another epoch or beyond the
    /// stream's end.
    Lost,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) offset: u64,
    pub(crate) at: Instant,
    pub(crate) delivery: Shared,
    /// The session that published it, which does not receive it live (exclude-sender).
    pub(crate) sender: Option<SessionId>,
}

#[derive(Debug)]
pub(crate) struct Log {
    epoch: u64,
    /// The offset the next message gets; offsets start at 1.
    next: u64,
    /// Contiguous: `entries[i].offset == first offset + i`.
    entries: VecDeque<Entry>,
    limit: HistoryLimit,
    bytes: usize,
}

impl Log {
    pub(crate) fn new(epoch: u64, limit: HistoryLimit) -> Self {
        Self {
            epoch,
            next: 1,
            entries: VecDeque::new(),
            limit,
            bytes: 0,
        }
    }

    /// The position of the last message, or `epoch.0` for a stream with none yet.
    pub(crate) fn head(&self) -> Position {
        Position {
            epoch: self.epoch,
            offset: self.next - 1,
        }
    }

    /// The position the next message will have.
    pub(crate) fn next_position(&self) -> Position {
        Position {
            epoch: self.epoch,
            offset: self.next,
        }
    }

    /// Appends the message made for the next position, then applies the count bound.
    pub(crate) fn append(&mut self, now: Instant, delivery: Shared, sender: Option<SessionId>) {
        debug_assert_eq!(
            delivery.stream.as_ref().map(|s| s.1),
            Some(self.next_position())
        );
        self.bytes += delivery.frame.len();
        self.entries.push_back(Entry {
            offset: self.next,
            at: now,
            delivery,
            sender,
        });
        self.next += 1;
        while self.entries.len() > self.limit.max_messages {
            self.pop();
        }
    }

    /// Drops messages older than the age bound. Returns when the oldest left will expire.
    pub(crate) fn prune(&mut self, now: Instant) -> Option<Instant> {
        while let Some(entry) = self.entries.front() {
            if now.saturating_duration_since(entry.at) < self.limit.max_age {
                break;
            }
            self.pop();
        }
        self.expiry()
    }

    /// When the oldest message expires, if there is one.
    pub(crate) fn expiry(&self) -> Option<Instant> {
        self.entries
            .front()
            .map(|entry| entry.at + self.limit.max_age)
    }

    fn pop(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.bytes -= entry.delivery.frame.len();
        }
    }

    /// The messages after `position`, or `Lost`. Never a partial replay.
    pub(crate) fn since(&self, position: Position) -> Recovery<'_> {
        let first = self.entries.front().map_or(self.next, |entry| entry.offset);
        // In order: `offset + 1` cannot overflow once `offset < next` holds.
        if position.epoch != self.epoch
            || position.offset >= self.next
            || position.offset + 1 < first
        {
            return Recovery::Lost;
        }
        let skip = usize::try_from(position.offset + 1 - first).unwrap_or(usize::MAX);
        Recovery::Recovered(self.entries.iter().skip(skip).collect())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::Stream;
    use crate::delivery::Delivery;
    use crate::envelope::{Payload, ServerMessage};

    fn log(max_messages: usize) -> Log {
        Log::new(
            7,
            HistoryLimit {
                max_messages,
                max_age: Duration::from_secs(60),
            },
        )
    }

    fn push(log: &mut Log, now: Instant) -> Position {
        let id = log.next_position();
        let frame = ServerMessage::Broadcast {
            id,
            event: None,
            data: Payload::from_json("1").expect("JSON"),
        }
        .encode();
        log.append(now, Delivery::streamed(frame, Stream::All, id), None);
        id
    }

    fn offsets(recovery: Recovery<'_>) -> Option<Vec<u64>> {
        match recovery {
            Recovery::Recovered(entries) => Some(entries.iter().map(|e| e.offset).collect()),
            Recovery::Lost => None,
        }
    }

    #[test]
    fn offsets_start_at_one_and_grow_by_one() {
        let now = crate::testing::start();
        let mut log = log(10);
        assert_eq!(
            log.head(),
            Position {
                epoch: 7,
                offset: 0
            }
        );
        assert_eq!(
            push(&mut log, now),
            Position {
                epoch: 7,
                offset: 1
            }
        );
        assert_eq!(
            push(&mut log, now),
            Position {
                epoch: 7,
                offset: 2
            }
        );
        assert_eq!(
            log.head(),
            Position {
                epoch: 7,
                offset: 2
            }
        );
    }

    #[test]
    fn resume_inside_the_window_gets_exactly_the_missed_messages() {
        let now = crate::testing::start();
        let mut log = log(10);
        for _ in 0..5 {
            push(&mut log, now);
        }
        let at = |offset| Position { epoch: 7, offset };
        assert_eq!(offsets(log.since(at(0))), Some(vec![1, 2, 3, 4, 5]));
        assert_eq!(offsets(log.since(at(3))), Some(vec![4, 5]));
        assert_eq!(offsets(log.since(at(5))), Some(vec![]));
    }

    #[test]
    fn resume_outside_the_window_or_epoch_is_lost() {
        let now = crate::testing::start();
        let mut log = log(3);
        for _ in 0..5 {
            push(&mut log, now); // keeps 3, 4, 5
        }
        let at = |offset| Position { epoch: 7, offset };
        assert_eq!(offsets(log.since(at(1))), None, "message 2 is gone");
        assert_eq!(offsets(log.since(at(2))), Some(vec![3, 4, 5]));
        assert_eq!(offsets(log.since(at(6))), None, "beyond the end");
        assert_eq!(
            offsets(log.since(Position {
                epoch: 8,
                offset: 2
            })),
            None,
            "another epoch"
        );
    }

    #[test]
    fn age_prunes_and_a_resume_at_the_head_still_recovers() {
        let start = crate::testing::start();
        let mut log = log(10);
        push(&mut log, start);
        push(&mut log, start + Duration::from_secs(30));
        assert_eq!(
            log.prune(start + Duration::from_secs(60)),
            Some(start + Duration::from_secs(90))
        );
        assert_eq!(log.len(), 1);
        assert_eq!(log.prune(start + Duration::from_secs(90)), None);
        assert!(log.is_empty());
        assert_eq!(log.bytes(), 0);
        assert_eq!(
            offsets(log.since(Position {
                epoch: 7,
                offset: 2
            })),
            Some(vec![])
        );
        assert_eq!(
            offsets(log.since(Position {
                epoch: 7,
                offset: 1
            })),
            None
        );
    }
}
