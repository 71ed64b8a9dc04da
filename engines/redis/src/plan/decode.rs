//! Replies and pushes to engine events. Anything not as the scripts write it is an error the
//! operation fails with (`unavailable`), never a guess.

use std::sync::Arc;

use roomcast_core::cursor::Position;
use roomcast_core::engine::{EngineEvent, Fault, Record, StreamId, View};
use roomcast_core::names::{RoomName, UserId};

use super::{Answer, Reply};

/// Why a reply could not be read.
type Bad = String;

pub(super) fn answer(answer: Answer, replies: Vec<Reply>) -> Vec<EngineEvent> {
    let op = match &answer {
        Answer::Append { op, .. } | Answer::Read { op, .. } | Answer::Mark { op, .. } => *op,
        Answer::Tops { op, .. } => *op,
        // Nobody waits: a presence read that fails is made good by the next one.
        Answer::Presence { room } => {
            return presence_snapshot(room.clone(), replies)
                .into_iter()
                .collect();
        }
        Answer::Nothing => return Vec::new(),
    };
    let event = match read_answer(answer, replies) {
        Ok(event) => event,
        Err(fault) => EngineEvent::Failed { op, fault },
    };
    vec![event]
}

fn read_answer(answer: Answer, replies: Vec<Reply>) -> Result<EngineEvent, Fault> {
    let bad = |why: Bad| Fault::Unavailable(format!("redis: {why}"));
    match answer {
        Answer::Append { op, online } => {
            let [epoch, offset, receivers] = one(replies)?;
            // The publish's receivers: for an outbox, the nodes following it.
            let online = online && matches!(receivers, Reply::Int(count) if count > 0);
            let at = Position {
                epoch: epoch_of(&epoch).map_err(bad)?,
                offset: number(&offset).map_err(bad)?,
            };
            Ok(EngineEvent::Appended { op, at, online })
        }
        Answer::Read { op, stream, after } => {
            let [epoch, top, first, read, records, _nonce] = one(replies)?;
            let epoch = epoch_of(&epoch).map_err(bad)?;
            let top = number(&top).map_err(bad)?;
            let view = View {
                head: Position { epoch, offset: top },
                first: number(&first).map_err(bad)?,
                read: match stream {
                    StreamId::Outbox(_) => number(&read).map_err(bad)?,
                    _ => 0,
                },
            };
            let records = match after {
                Some(after) if view.covers(after) => entries(records).map_err(bad)?,
                _ => Vec::new(),
            };
            // The hub relies on a read's records following on from its position, in order,
            // within the head: a reply that breaks it is refused, not passed on.
            let mut last = after.map_or(0, |after| after.offset);
            for record in &records {
                if record.offset <= last || record.offset > top {
                    return Err(bad(format!(
                        "record {} after {last} in a stream whose last is {top}",
                        record.offset
                    )));
                }
                last = record.offset;
            }
            Ok(EngineEvent::Read {
                op,
                stream,
                view,
                records,
            })
        }
        Answer::Mark { op, user } => {
            let [epoch, before, read] = one(replies)?;
            Ok(EngineEvent::Marked {
                op,
                user,
                before: number(&before).map_err(bad)?,
                read: Position {
                    epoch: epoch_of(&epoch).map_err(bad)?,
                    offset: number(&read).map_err(bad)?,
                },
            })
        }
        Answer::Presence { .. } | Answer::Nothing => unreachable!("answered above"),
        Answer::Tops { op, streams } => {
            if replies.len() != streams.len() {
                return Err(bad(format!(
                    "{} replies to {} calls",
                    replies.len(),
                    streams.len()
                )));
            }
            let mut heads = Vec::with_capacity(streams.len());
            for (stream, reply) in streams.into_iter().zip(replies) {
                let [epoch, top] = fields::<2>(reply).map_err(|why| match why {
                    Failure::Error(error) => error,
                    Failure::Bad(why) => bad(why),
                })?;
                // A stream without meta is unknown to Redis: left out.
                if epoch == Reply::Nil {
                    continue;
                }
                let head = Position {
                    epoch: epoch_of(&epoch).map_err(bad)?,
                    offset: number(&top).map_err(bad)?,
                };
                heads.push((stream, head));
            }
            Ok(EngineEvent::Tops { op, heads })
        }
    }
}

/// The one reply of a one-call step, an array of `N` fields.
fn one<const N: usize>(replies: Vec<Reply>) -> Result<[Reply; N], Fault> {
    let [reply]: [Reply; 1] = replies.try_into().map_err(|replies: Vec<Reply>| {
        Fault::Unavailable(format!("redis: {} replies to one call", replies.len()))
    })?;
    fields::<N>(reply).map_err(|why| match why {
        Failure::Error(error) => error,
        Failure::Bad(why) => Fault::Unavailable(format!("redis: {why}")),
    })
}

enum Failure {
    /// An error reply: what it means for the operation.
    Error(Fault),
    /// Not what the script returns.
    Bad(Bad),
}

/// An array reply of exactly `N` elements.
fn fields<const N: usize>(reply: Reply) -> Result<[Reply; N], Failure> {
    match reply {
        Reply::Array(items) => {
            let count = items.len();
            items
                .try_into()
                .map_err(|_| Failure::Bad(format!("an array of {count}, not {N}")))
        }
        Reply::Error(error) => Err(Failure::Error(fault_of(&error))),
        other => Err(Failure::Bad(format!("{other:?}, not an array"))),
    }
}

/// What an error reply means: a script's `LIMIT` or Redis out of memory (its `maxmemory`
/// with `noeviction`) is a budget reached; anything else, Redis cannot take it now.
fn fault_of(error: &str) -> Fault {
    if let Some(why) = error.strip_prefix("LIMIT ") {
        Fault::LimitReached(why.to_owned())
    } else if error.starts_with("OOM") {
        Fault::LimitReached(format!("redis is out of memory: {error}"))
    } else {
        Fault::Unavailable(format!("redis: {error}"))
    }
}

fn number(reply: &Reply) -> Result<u64, Bad> {
    match reply {
        Reply::Int(n) => u64::try_from(*n).map_err(|_| format!("{n} is not an offset")),
        Reply::Data(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| format!("{:?} is not a number", String::from_utf8_lossy(bytes))),
        other => Err(format!("{other:?} is not a number")),
    }
}

/// An epoch, as the scripts keep it: a decimal string (Lua's numbers cannot hold 64 bits).
fn epoch_of(reply: &Reply) -> Result<u64, Bad> {
    match reply {
        Reply::Data(_) => number(reply),
        other => Err(format!("{other:?} is not an epoch")),
    }
}

/// XRANGE entries: `[id, [r, record, n, nonce, t, time, s, size]]`, ids `<offset>-0`.
fn entries(reply: Reply) -> Result<Vec<Arc<Record>>, Bad> {
    let Reply::Array(items) = reply else {
        return Err(format!("{reply:?}: not a list of records"));
    };
    let mut records = Vec::with_capacity(items.len());
    for item in items {
        let [id, fields] = fields::<2>(item).map_err(|why| match why {
            Failure::Error(error) => format!("{error}"),
            Failure::Bad(why) => why,
        })?;
        let offset = match &id {
            Reply::Data(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|id| id.strip_suffix("-0"))
                .and_then(|offset| offset.parse::<u64>().ok()),
            _ => None,
        }
        .ok_or_else(|| format!("{id:?} is not an entry id of an offset"))?;
        let Reply::Array(fields) = fields else {
            return Err(format!("entry {offset}: no fields"));
        };
        let bytes = match fields.as_slice() {
            [Reply::Data(name), Reply::Data(bytes), ..] if name == b"r" => bytes,
            _ => return Err(format!("entry {offset}: no record")),
        };
        let record = Record::decode(offset, bytes).map_err(|e| format!("entry {offset}: {e}"))?;
        records.push(Arc::new(record));
    }
    Ok(records)
}

/// The members of a room's presence, `node:user` each.
fn presence_snapshot(room: RoomName, replies: Vec<Reply>) -> Option<EngineEvent> {
    let [Reply::Array(items)]: [Reply; 1] = replies.try_into().ok()? else {
        return None;
    };
    let mut members = Vec::with_capacity(items.len());
    for item in items {
        let Reply::Data(bytes) = item else {
            return None;
        };
        let (node, user) = std::str::from_utf8(&bytes).ok()?.split_once(':')?;
        members.push((UserId::new(user).ok()?, node.parse().ok()?));
    }
    Some(EngineEvent::PresenceSnapshot { room, members })
}

/// A presence or typing message on a room's channel: `P node 1|0 user`, `T node 1|0 user`.
fn signal(stream: StreamId, payload: &[u8]) -> Option<EngineEvent> {
    let StreamId::Room(room) = stream else {
        return None;
    };
    let (&kind, rest) = payload.split_first()?;
    let text = std::str::from_utf8(rest.strip_prefix(b" ")?).ok()?;
    let (node, rest) = text.split_once(' ')?;
    let (on, user) = rest.split_once(' ')?;
    let on = match on {
        "1" => true,
        "0" => false,
        _ => return None,
    };
    let (node, user) = (node.parse().ok()?, UserId::new(user).ok()?);
    match kind {
        b'P' => Some(EngineEvent::Presence {
            room,
            node,
            user,
            present: on,
        }),
        b'T' => Some(EngineEvent::Typing {
            room,
            node,
            user,
            typing: on,
        }),
        _ => None,
    }
}

/// A pub/sub message: `epoch offset nonce`, a newline, the record; or a presence or typing
/// message.
/// The position and nonce a pub/sub message of an append starts with.
pub(super) fn live_nonce(payload: &[u8]) -> Option<(Position, String)> {
    let newline = payload.iter().position(|b| *b == b'\n')?;
    let head = std::str::from_utf8(&payload[..newline]).ok()?;
    let mut words = head.split(' ');
    let epoch = words.next()?.parse().ok()?;
    let offset = words.next()?.parse().ok()?;
    let nonce = words.next()?.to_owned();
    Some((Position { epoch, offset }, nonce))
}

/// The position and nonce of the last record of a read's reply (`{epoch, top, first, read,
/// records, nonce}`, a record `[id, [r, record, n, nonce, ...]]`).
pub(super) fn read_nonce(replies: &[Reply]) -> Option<(Position, String)> {
    let [Reply::Array(fields)] = replies else {
        return None;
    };
    let (Some(epoch), Some(Reply::Array(records))) = (fields.first(), fields.get(4)) else {
        return None;
    };
    let epoch = epoch_of(epoch).ok()?;
    let Reply::Array(last) = records.last()? else {
        return None;
    };
    let (Some(Reply::Data(id)), Some(Reply::Array(values))) = (last.first(), last.get(1)) else {
        return None;
    };
    let offset = std::str::from_utf8(id)
        .ok()?
        .split('-')
        .next()?
        .parse()
        .ok()?;
    let Some(Reply::Data(nonce)) = values.get(3) else {
        return None;
    };
    let nonce = String::from_utf8(nonce.clone()).ok()?;
    Some((Position { epoch, offset }, nonce))
}

pub(super) fn live(stream: StreamId, payload: &[u8]) -> Option<EngineEvent> {
    if payload.starts_with(b"P ") || payload.starts_with(b"T ") {
        return signal(stream, payload);
    }
    let newline = payload.iter().position(|b| *b == b'\n')?;
    let head = std::str::from_utf8(&payload[..newline]).ok()?;
    let mut words = head.split(' ');
    let epoch = words.next()?.parse().ok()?;
    let offset = words.next()?.parse().ok()?;
    let _nonce = words.next()?;
    if words.next().is_some() {
        return None;
    }
    let record = Record::decode(offset, &payload[newline + 1..]).ok()?;
    Some(EngineEvent::Live {
        stream,
        at: Position { epoch, offset },
        record: Arc::new(record),
    })
}
