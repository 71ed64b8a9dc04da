//! The hub's limits and timings.

use std::sync::Arc;
use std::time::Duration;

use crate::access::Namespaces;

/// How much of a stream is kept: whichever bound is reached first drops the oldest message.
/// The engine's [`Retention`](crate::engine::Retention), which every append carries.
pub use crate::engine::Retention as HistoryLimit;

/// The hub's limits and timings. `Default` gives the protocol's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// This hub's node number: the origin of what its sessions append, so that it does not
    /// deliver a session's own message back to it. Unique among the hubs sharing an engine.
    pub node: u64,
    /// History kept per room: 1,000 messages, 1 MiB or 10 minutes.
    pub room_history: HistoryLimit,
    /// History kept per user outbox: 1,000 messages, 1 MiB or 7 days.
    pub outbox_history: HistoryLimit,
    /// History kept of the broadcast feed: 1,000 messages, 1 MiB or 10 minutes.
    pub broadcast_history: HistoryLimit,
    /// How long a user whose last session disconnected stays present: 5 s.
    pub presence_grace: Duration,
    /// How long a room's presence changes wait to go out together: 200 ms. A change in a room
    /// whose last `presence` is older goes out at once; others join the next, so a join storm
    /// costs each member one frame per window, not one per arriving user.
    pub presence_window: Duration,
    /// Rooms with more users present get counts only (`presence {room, count}`, and `count`
    /// in the join reply instead of `members`): 1,000. The member list is the server API's.
    pub presence_counts_above: usize,
    /// How often a room above that size gets its count, at most: 1 s.
    pub presence_count_every: Duration,
    /// Most rooms one session may be in: 100. More gets `limit_reached`.
    pub max_rooms_per_session: usize,
    /// Most engine operations in flight (sent, not answered): 10,000. Past it an append is
    /// answered `unavailable` at once: the engine does not keep up.
    pub max_pending: usize,
    /// How often the engine is asked to drop the history past its age: every 10 s (a read
    /// never returns such a message anyway; this frees the memory).
    pub expire_every: Duration,
    /// How often the engine is asked the heads of the streams the hub follows: every 5 s. A
    /// `Live` an engine lost is found at the stream's next one; this finds a lost last one (and
    /// a stream that started afresh) when nothing follows it.
    pub check_every: Duration,
    /// Who may join, read and publish in each namespace, and its presence, typing and history
    /// ([`crate::access`]): by default only the default namespace, open to every session.
    pub namespaces: Arc<Namespaces>,
}

impl Default for HubConfig {
    fn default() -> Self {
        let history = |max_age| HistoryLimit {
            max_messages: 1000,
            max_bytes: 1 << 20,
            max_age,
        };
        Self {
            node: 0,
            room_history: history(Duration::from_secs(10 * 60)),
            outbox_history: history(Duration::from_secs(7 * 24 * 3600)),
            broadcast_history: history(Duration::from_secs(10 * 60)),
            presence_grace: Duration::from_secs(5),
            presence_window: Duration::from_millis(200),
            presence_counts_above: 1000,
            presence_count_every: Duration::from_secs(1),
            max_rooms_per_session: 100,
            max_pending: 10_000,
            expire_every: Duration::from_secs(10),
            check_every: Duration::from_secs(5),
            namespaces: Arc::default(),
        }
    }
}
