//! What the hub should answer a resume, worked out apart from the hub: every message stored in
//! each room (its offset and time, as the engine stored it), the rules of the history window
//! (count and age), and the epochs the engine lost.

use std::collections::BTreeSet;
use std::time::Instant;

use roomcast_core::cursor::Position;
use roomcast_core::hub::HistoryLimit;

pub(crate) struct Oracle {
    limit: HistoryLimit,
    rooms: Vec<RoomLog>,
    /// Epochs of rooms the engine lost: news in them may still be on its way.
    lost: BTreeSet<u64>,
}

#[derive(Default)]
struct RoomLog {
    epoch: Option<u64>,
    /// (offset, stored at) of every message of the current epoch.
    stored: Vec<(u64, Instant)>,
    /// Since when the stream has been still while nobody here follows it: made, stored to, or
    /// left by its last session.
    still_since: Option<Instant>,
}

impl Oracle {
    pub(crate) fn new(limit: HistoryLimit, rooms: usize) -> Self {
        Self {
            limit,
            rooms: (0..rooms).map(|_| RoomLog::default()).collect(),
            lost: BTreeSet::new(),
        }
    }

    /// The engine lost room `r`: it starts again on a new epoch.
    pub(crate) fn lost(&mut self, r: usize) {
        if let Some(epoch) = self.rooms[r].epoch {
            self.lost.insert(epoch);
        }
        self.rooms[r] = RoomLog::default();
    }

    /// The engine stored a message in room `r` at `now`; its position must follow the last one
    /// (or start a new epoch at 1, once the room was forgotten or lost).
    pub(crate) fn stored(&mut self, r: usize, id: Position, now: Instant) -> Result<(), String> {
        let log = &mut self.rooms[r];
        let expected = match log.epoch {
            Some(epoch) => (epoch, log.stored.len() as u64 + 1),
            None => (id.epoch, 1),
        };
        if (id.epoch, id.offset) != expected {
            return Err(format!(
                "room{r}: stored {id}, expected {:x}.{}",
                expected.0, expected.1
            ));
        }
        log.epoch = Some(id.epoch);
        log.stored.push((id.offset, now));
        log.still_since = Some(now);
        Ok(())
    }

    /// The room's current epoch, once a message or answer named it (late news of a lost one
    /// aside).
    pub(crate) fn saw_epoch(&mut self, r: usize, epoch: u64) -> Result<(), String> {
        if self.lost.contains(&epoch) {
            return Ok(());
        }
        let log = &mut self.rooms[r];
        match log.epoch {
            None => log.epoch = Some(epoch),
            Some(known) if known != epoch => {
                return Err(format!("room{r}: epoch {epoch:x}, expected {known:x}"));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Whether history at `now` holds every message of room `r` after `since`.
    pub(crate) fn covers(&self, r: usize, since: Position, now: Instant) -> bool {
        let log = &self.rooms[r];
        if log.epoch != Some(since.epoch) {
            return false;
        }
        let head = log.stored.len() as u64;
        let first_kept = log
            .stored
            .iter()
            .rev()
            .take(self.limit.max_messages)
            .rfind(|(_, at)| now.saturating_duration_since(*at) < self.limit.max_age)
            .map_or(head + 1, |(offset, _)| *offset);
        since.offset <= head && since.offset + 1 >= first_kept
    }

    /// A room no session here follows, whose stream holds nothing and has been still for the
    /// history's age (its last message's age reached, and since it was stored to or left), is
    /// forgotten by the engine: its next message starts a new epoch.
    pub(crate) fn settle(&mut self, r: usize, followed: bool, now: Instant) {
        let log = &mut self.rooms[r];
        if followed {
            log.still_since = None;
            return;
        }
        let since = *log.still_since.get_or_insert(now);
        let emptied = log.stored.last().map(|(_, at)| *at + self.limit.max_age);
        let still = emptied.map_or(since, |emptied| since.max(emptied));
        if now.saturating_duration_since(still) >= self.limit.max_age {
            *log = RoomLog::default();
        }
    }

    /// What history holds of room `r` at `now`, for a failure's message.
    pub(crate) fn describe(&self, r: usize, now: Instant) -> String {
        let log = &self.rooms[r];
        let ages: Vec<String> = log
            .stored
            .iter()
            .rev()
            .take(self.limit.max_messages + 1)
            .map(|(offset, at)| format!("{offset}: {:?} old", now.saturating_duration_since(*at)))
            .collect();
        format!(
            "epoch {:?}, newest first: {}",
            log.epoch.map(|e| format!("{e:x}")),
            ages.join(", ")
        )
    }

    /// The position of room `r`'s last message, if it has one.
    pub(crate) fn head(&self, r: usize) -> Option<Position> {
        let log = &self.rooms[r];
        let offset = log.stored.len() as u64;
        log.epoch
            .filter(|_| offset > 0)
            .map(|epoch| Position { epoch, offset })
    }

    /// A position in room `r` that history no longer covers, if there is one.
    pub(crate) fn lost_position(&self, r: usize, now: Instant) -> Option<Position> {
        let log = &self.rooms[r];
        let epoch = log.epoch?;
        (0..log.stored.len() as u64)
            .map(|offset| Position { epoch, offset })
            .find(|&p| !self.covers(r, p, now))
    }
}
