//! A simulated client: a browser tab that outlives its connections. It remembers the rooms it
//! is in and the last message it saw in each, resumes from there on every new connection, and
//! checks every frame it receives against what the protocol promises.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use roomcast_core::cursor::{Position, Stream};
use roomcast_core::envelope::{Ref, ServerMessage};
use roomcast_core::session::SessionKind;

pub(crate) struct Client {
    pub(crate) user: usize,
    pub(crate) kind: SessionKind,
    /// The current connection, if any.
    pub(crate) conn: Option<u64>,
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
    Publish(usize),
    Direct,
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

    /// A frame from the server, on the current connection. `expected` is the oracle's answer
    /// to a join's resume, worked out when the hub handled it.
    pub(crate) fn receive(
        &mut self,
        message: ServerMessage,
        expected: &mut BTreeMap<u64, (bool, String)>,
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
                            let (expect, history) = expected.remove(&n).ok_or("no expectation")?;
                            if reply.recovered != Some(expect) {
                                return Err(format!(
                                    "room{room} from {since}: recovered {:?}, history says {expect} ({history})",
                                    reply.recovered
                                ));
                            }
                            if expect && id != since {
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
                    Request::Publish(room) => {
                        let id = reply.id.ok_or("a publish reply without id")?;
                        self.advance(room, id)?;
                    }
                    Request::Direct => {}
                }
            }
            ServerMessage::Error {
                reference, message, ..
            } => {
                return Err(format!("an error, none expected: {reference:?} {message}"));
            }
            ServerMessage::Presence {
                room,
                joins,
                leaves,
            } => {
                let r = index(room.as_str());
                match self.views.get_mut(&r) {
                    Some(View::In(members)) => {
                        for user in joins {
                            members.insert(user.as_str().to_owned());
                        }
                        for user in leaves {
                            members.remove(user.as_str());
                        }
                    }
                    Some(View::Leaving) => {}
                    _ => return Err(format!("presence in room{r}, not joined")),
                }
            }
            ServerMessage::Direct { id, .. } | ServerMessage::Notify { id, .. } => {
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
                            let (since, expect, history) = self
                                .resuming
                                .remove(&r)
                                .ok_or("streams for a room not asked")?;
                            if let Some(since) = since {
                                if start.recovered != Some(expect) {
                                    return Err(format!(
                                        "SSE room{r} from {since}: recovered {:?}, history says {expect} ({history})",
                                        start.recovered
                                    ));
                                }
                                if expect && start.id != since {
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
