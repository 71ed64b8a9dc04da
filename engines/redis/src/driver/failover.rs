//! What the hub was handed of each followed stream, so that a reconnection (after a failover
//! above all) can check that Redis still holds it before anything new reaches the hub.
//!
//! A master's last writes can be lost in a failover, and the new master then hands their
//! offsets out again to other messages (centrifugo#664): a node that delivered offset 105 and
//! then hears a new 106 would pass on a silent gap. So the driver keeps, per followed stream,
//! the position and nonce of the newest record it handed on (from `Live`s and reads). After a
//! reconnection, and before `LinkUp`, `verify.lua` checks each against Redis and starts a new
//! epoch where the record is gone or another: the hub's heads check then finds the new epoch
//! and tells the stream's receivers `recovered: false`. While the check has not run, `Live`s
//! are held back (dropped: the hub finds them by its heads check after `LinkUp`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use roomcast_core::cursor::Position;
use roomcast_core::engine::StreamId;

/// The newest record handed on per followed stream, and whether `Live`s may go on.
#[derive(Debug, Default)]
pub(super) struct Handed {
    newest: Mutex<HashMap<StreamId, (Position, String)>>,
    /// False from a link failure until the check after the reconnection has run.
    closed: AtomicBool,
}

impl Handed {
    /// A record of `stream` at `at`, with `nonce`, went to the hub.
    pub(super) fn note(&self, stream: StreamId, at: Position, nonce: String) {
        let mut newest = self.newest.lock().unwrap_or_else(|e| e.into_inner());
        match newest.get_mut(&stream) {
            // Only a newer one of the same epoch, or one of another epoch, replaces it.
            Some((known, _)) if known.epoch == at.epoch && known.offset >= at.offset => {}
            Some(entry) => *entry = (at, nonce),
            None => {
                newest.insert(stream, (at, nonce));
            }
        }
    }

    /// The stream is no longer followed.
    pub(super) fn forget(&self, stream: &StreamId) {
        self.newest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(stream);
    }

    /// What to check, newest record per stream.
    pub(super) fn to_check(&self) -> Vec<(StreamId, Position, String)> {
        self.newest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(stream, (at, nonce))| (stream.clone(), *at, nonce.clone()))
            .collect()
    }

    /// Whether a `Live` may go to the hub now.
    pub(super) fn open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    /// The link failed: nothing new goes on until the check.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// The check ran.
    pub(super) fn reopen(&self) {
        self.closed.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use roomcast_core::names::RoomName;

    use super::*;

    #[test]
    fn the_newest_record_of_a_stream_is_kept_and_a_new_epoch_replaces_it() {
        let handed = Handed::default();
        let lobby = StreamId::Room(RoomName::new("lobby").expect("valid"));
        let at = |epoch, offset| Position { epoch, offset };
        handed.note(lobby.clone(), at(7, 5), "a".into());
        handed.note(lobby.clone(), at(7, 4), "b".into());
        assert_eq!(handed.to_check(), [(lobby.clone(), at(7, 5), "a".into())]);
        handed.note(lobby.clone(), at(7, 6), "c".into());
        handed.note(lobby.clone(), at(9, 1), "d".into());
        assert_eq!(handed.to_check(), [(lobby.clone(), at(9, 1), "d".into())]);
        handed.forget(&lobby);
        assert!(handed.to_check().is_empty());
        assert!(handed.open());
        handed.close();
        assert!(!handed.open());
        handed.reopen();
        assert!(handed.open());
    }
}
