//! A simulated client: a browser tab that outlives its connections. It remembers the rooms it
//! is in and the last message it saw in each, resumes from there on every new connection, and
//! checks every frame it receives against what the protocol promises.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use roomcast_core::cursor::{Position, Stream};
use roomcast_core::envelope::{ErrorCode, PresenceChange, Ref, ServerMessage};
use roomcast_core::session::SessionKind;

use super::server::Ledger;

pub(crate) struct Client {
    pub(crate) user: usize,
    pub(crate) kind: SessionKind,
    /// The current connection, if any.
    pub(crate) conn: Option<u64>,
    /// The hub of its current (or last) connection.
    pub(crate) hub: Option<usize>,
    /// Whether that connection went to another hub than the one before.
    pub(crate) moved: bool,
    /// Rooms it wants to be in, across connections.
    pub(crate) rooms: BTreeSet<usize>,
    /// The last message seen per room, and in the user's outbox: its cursor.
    pub(crate) seen: BTreeMap<usize, Position>,
    pub(crate) seen_user: Option<Position>,
    /// The rooms of the current connection, as it sees them.
    pub(crate) views: BTreeMap<usize, View>,
    /// Refs sent on the current connection and not answered yet.
    pub(crate) pending: BTreeMap<u64, Request>,
    /// Not reading (until then): the server's frames wait.
    pub(crate) stalled_until: Option<Instant>,
    pub(crate) reconnect_at: Option<Instant>,
    /// A connection silent past this is taken for dead (the announced interval + timeout).
    pub(crate) silent_deadline: Option<Instant>,
    /// The last user-stream message of the current connection.
    pub(crate) user_on_conn: Option<Position>,
    /// SSE: each room's resume point in the connect cursor, what history said of it then,
    /// until `streams` answers.
    pub(crate) resuming: BTreeMap<usize, (Option<Position>, bool, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum View {
    Joining,
    In(BTreeSet<String>),
    Leaving,
}

#[derive(Clone, Debug)]
pub(crate) enum Request {
    Join {
        room: usize,
        since: Option<Position>,
    },
    Leave(usize),
    /// A publish, and whether its room was reset while it waited (its id may then be one the
    /// reset already passed).
    Publish {
        room: usize,
        reset: bool,
    },
    Direct,
    Read,
    Typing,
}

impl Client {
    pub(crate) fn new(
        user: usize,
        kind: SessionKind,
        rooms: impl IntoIterator<Item = usize>,
    ) -> Self {
        Self {
            user,
            kind,
            conn: None,
            hub: None,
            moved: false,
            rooms: rooms.into_iter().collect(),
            seen: BTreeMap::new(),
            seen_user: None,
            views: BTreeMap::new(),
            pending: BTreeMap::new(),
            stalled_until: None,
            reconnect_at: None,
            silent_deadline: None,
            user_on_conn: None,
            resuming: BTreeMap::new(),
        }
    }

    /// The connection is gone: what was in flight on it is abandoned.
    pub(crate) fn lost(&mut self) {
        self.conn = None;
        self.views.clear();
        self.pending.clear();
        self.stalled_until = None;
        self.silent_deadline = None;
        self.user_on_conn = None;
        self.resuming.clear();
    }

    pub(crate) fn is_reading(&self) -> bool {
        self.stalled_until.is_none()
    }

    /// A frame from the server, on the current connection, at `now`. The ledger has the
    /// oracle, and its answer to each join's resume, worked out when the hub took it; `faulty`
    /// says whether the hub's engine link fails now and then.
    pub(crate) fn receive(
        &mut self,
        message: ServerMessage,
        ledger: &mut Ledger,
        faulty: bool,
        now: Instant,
    ) -> Result<(), String> {
        match message {
            ServerMessage::Message { room, id, .. } => {
                let r = index(room.as_str());
                if !matches!(self.views.get(&r), Some(View::In(_) | View::Leaving)) {
                    return Err(format!("a message in room{r}, not joined"));
                }
                self.advance(r, id)?;
            }
            ServerMessage::Reply(reply) => {
                let n = number(&reply.reference)?;
                let request = self
                    .pending
                    .remove(&n)
                    .ok_or_else(|| format!("ref {n}: answered twice, or never asked"))?;
                match request {
                    Request::Join { room, since } => {
                        let id = reply.id.ok_or("a join reply without id")?;
                        let members = reply.members.ok_or("a join reply without members")?;
                        if let Some(since) = since {
                            let (covered, history) =
                                ledger.expected.remove(&n).ok_or("no expectation")?;
                            self.judge(
                                room,
                                since,
                                reply.recovered,
                                covered,
                                &history,
                                ledger,
                                now,
                            )?;
                            if reply.recovered == Some(true) && id != since {
                                return Err(format!("room{room}: resumed at {id}, not {since}"));
                            }
                        }
                        self.seen.insert(room, id);
                        let members = members.iter().map(|u| u.as_str().to_owned()).collect();
                        self.views.insert(room, View::In(members));
                    }
                    Request::Leave(room) => {
                        self.views.remove(&room);
                    }
                    Request::Publish { room, reset } => {
                        let id = reply.id.ok_or("a publish reply without id")?;
                        let next = self.seen.get(&room).is_some_and(|last| {
                            last.epoch == id.epoch && last.offset + 1 == id.offset
                        });
                        // After a reset of its room, the id may be one the reset passed; after
                        // it left the room, it is past what it received there.
                        let joined =
                            matches!(self.views.get(&room), Some(View::In(_) | View::Leaving));
                        if joined && (!reset || next) {
                            self.advance(room, id)?;
                        }
                    }
                    Request::Direct => {
                        if reply.delivered.is_none() {
                            return Err(format!("a direct's reply without delivered: {reply:?}"));
                        }
                    }
                    Request::Typing => {}
                    Request::Read => {
                        if reply.id.is_none() || reply.unread.is_none() {
                            return Err(format!("a read reply without id or unread: {reply:?}"));
                        }
                    }
                }
            }
            ServerMessage::Error {
                reference,
                code,
                message,
            } => {
                let request = reference
                    .as_ref()
                    .and_then(|reference| number(reference).ok())
                    .and_then(|n| self.pending.remove(&n));
                let storing = matches!(
                    request,
                    Some(Request::Publish { .. } | Request::Direct | Request::Read)
                );
                if !(faulty && storing && code == ErrorCode::Unavailable) {
                    return Err(format!("an error, none expected: {reference:?} {message}"));
                }
                ledger.summary.unavailable += 1;
            }
            ServerMessage::Presence { room, change } => {
                let r = index(room.as_str());
                match self.views.get_mut(&r) {
                    Some(View::In(members)) => match change {
                        // Diffs are set operations: a join may name a user the join reply
                        // already listed (it came within the same window).
                        PresenceChange::Diff { joins, leaves } => {
                            for user in joins {
                                members.insert(user.as_str().to_owned());
                            }
                            for user in leaves {
                                members.remove(user.as_str());
                            }
                        }
                        PresenceChange::Members(list) => {
                            *members = list.iter().map(|u| u.as_str().to_owned()).collect();
                        }
                        PresenceChange::Count(count) => {
                            return Err(format!("a count ({count}) in room{r}: rooms are small"));
                        }
                    },
                    Some(View::Leaving) => {}
                    _ => return Err(format!("presence in room{r}, not joined")),
                }
            }
            ServerMessage::Typing { room, .. } => {
                let r = index(room.as_str());
                if !matches!(self.views.get(&r), Some(View::In(_) | View::Leaving)) {
                    return Err(format!("typing in room{r}, not joined"));
                }
            }
            ServerMessage::Direct { id, .. }
            | ServerMessage::Notify { id, .. }
            | ServerMessage::Receipt { id, .. } => {
                if let Some(last) = self.user_on_conn
                    && last.epoch == id.epoch
                    && id.offset <= last.offset
                {
                    return Err(format!("user stream: {id} after {last}"));
                }
                self.user_on_conn = Some(id);
                self.seen_user = Some(id);
            }
            ServerMessage::Streams { streams } => {
                for start in streams {
                    match &start.stream {
                        Stream::User => self.user_on_conn = Some(start.id),
                        Stream::Room(room) => {
                            let r = index(room.as_str());
                            let Some((since, covered, history)) = self.resuming.remove(&r) else {
                                self.reset(r, start.id, start.recovered, ledger, now)?;
                                continue;
                            };
                            if let Some(since) = since {
                                self.judge(
                                    r,
                                    since,
                                    start.recovered,
                                    covered,
                                    &history,
                                    ledger,
                                    now,
                                )?;
                                if start.recovered == Some(true) && start.id != since {
                                    return Err(format!(
                                        "SSE room{r}: resumed at {}, not {since}",
                                        start.id
                                    ));
                                }
                            }
                            self.seen.insert(r, start.id);
                        }
                        Stream::All => {}
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A resume of room `r` from `since`, answered `recovered`. False only if history no longer
    /// covers `since` now, having covered it when the hub took the request (`covered`) or not:
    /// history only shrinks, so the engine's read in between saw one or the other. True is
    /// a promise the client's later frames check: every message after `since` follows in order
    /// (`advance`), or a reset says otherwise; at a quiet point the last message has come. The
    /// hub may keep it past what the engine's history holds, from its live feed, or learn late
    /// that it cannot, and reset.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &mut self,
        r: usize,
        since: Position,
        recovered: Option<bool>,
        covered: bool,
        history: &str,
        ledger: &Ledger,
        now: Instant,
    ) -> Result<(), String> {
        let covered_now = covered && ledger.oracle.covers(r, since, now);
        match recovered {
            Some(true) => Ok(()),
            Some(false) if !covered_now => Ok(()),
            other => Err(format!(
                "room{r} from {since}: recovered {other:?}, history says {covered} when asked, \
                 {covered_now} now ({history})"
            )),
        }
    }

    /// A room the connection is on can no longer be followed on from what it saw: the hub
    /// says where it goes on from. History must no longer cover what the client saw.
    fn reset(
        &mut self,
        r: usize,
        head: Position,
        recovered: Option<bool>,
        ledger: &mut Ledger,
        now: Instant,
    ) -> Result<(), String> {
        if !self.views.contains_key(&r) {
            return Err(format!("a reset of room{r}, not joined"));
        }
        if recovered != Some(false) {
            return Err(format!("a reset of room{r} with recovered {recovered:?}"));
        }
        if let Some(seen) = self.seen.get(&r)
            && ledger.oracle.covers(r, *seen, now)
        {
            return Err(format!(
                "room{r}: reset to {head}, though history covers {seen} ({})",
                ledger.oracle.describe(r, now)
            ));
        }
        self.seen.insert(r, head);
        for request in self.pending.values_mut() {
            if let Request::Publish { room, reset } = request
                && *room == r
            {
                *reset = true;
            }
        }
        ledger.summary.stream_resets += 1;
        Ok(())
    }

    /// A message of room `r` at `id` must directly follow the last one seen there.
    fn advance(&mut self, r: usize, id: Position) -> Result<(), String> {
        if let Some(last) = self.seen.get(&r)
            && (last.epoch != id.epoch || last.offset + 1 != id.offset)
        {
            return Err(format!("room{r}: {id} after {last} (a gap or a repeat)"));
        }
        self.seen.insert(r, id);
        Ok(())
    }
}

pub(crate) fn index(name: &str) -> usize {
    name[4..].parse().expect("roomN or userN")
}

fn number(reference: &Ref) -> Result<u64, String> {
    match reference {
        Ref::Number(n) => Ok(*n),
        other => Err(format!("a ref never sent: {other:?}")),
    }
}
