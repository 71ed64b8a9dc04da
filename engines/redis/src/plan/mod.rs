//! The pure half: engine operations to Redis calls, and Redis replies and pushes to engine
//! events.
//!
//! A driver takes each [`Operation`] to [`Plan::plan`], which gives a [`Step`]: calls to run
//! (pipelined, in order) and how to read their replies ([`Answer`]), or a channel to subscribe
//! to or leave. It hands the replies back to [`Plan::answer`], a pub/sub message to
//! [`Plan::live`], and a link that failed to [`Answer::failed`]: each gives the events for the
//! hub.

mod decode;
mod keys;

use std::time::Duration;

use roomcast_core::cursor::Position;
use roomcast_core::engine::{EngineEvent, Fault, OpId, Operation, StreamId};
use roomcast_core::names::{RoomName, UserId};

pub use self::keys::Keys;

/// What the plan needs to know of the deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanConfig {
    /// The first part of every key and channel: `rc`.
    pub prefix: String,
    /// A Redis Cluster: appends publish with `SPUBLISH` (sharded pub/sub), so a message goes
    /// only to the shard of its stream.
    pub sharded: bool,
    /// How long a stream that was read or marked but never appended to is remembered: 1 day.
    /// A stream appended to is remembered for twice its records' age limit, at least this.
    pub idle_ttl: Duration,
    /// How long a node's presence entry lasts unless refreshed: 30 s. A node refreshes its
    /// entries at a third of it, so those of a node that died are gone within it.
    pub presence_ttl: Duration,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            prefix: "rc".to_owned(),
            sharded: false,
            idle_ttl: Duration::from_secs(24 * 3600),
            presence_ttl: Duration::from_secs(30),
        }
    }
}

/// One of the scripts, whose source the driver loads (`SCRIPT LOAD`, then `EVALSHA`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Script {
    /// `append.lua`.
    Append,
    /// `read.lua`.
    Read,
    /// `mark.lua`.
    Mark,
    /// `presence.lua`.
    Presence,
    /// `presence_read.lua`.
    PresenceRead,
    /// `verify.lua`.
    Verify,
    /// `nodes.lua`.
    Nodes,
}

impl Script {
    /// Every script.
    pub const ALL: [Self; 7] = [
        Self::Append,
        Self::Read,
        Self::Mark,
        Self::Presence,
        Self::PresenceRead,
        Self::Verify,
        Self::Nodes,
    ];

    /// Its Lua source.
    pub fn source(self) -> &'static str {
        match self {
            Self::Append => include_str!("../lua/append.lua"),
            Self::Read => include_str!("../lua/read.lua"),
            Self::Mark => include_str!("../lua/mark.lua"),
            Self::Presence => include_str!("../lua/presence.lua"),
            Self::PresenceRead => include_str!("../lua/presence_read.lua"),
            Self::Verify => include_str!("../lua/verify.lua"),
            Self::Nodes => include_str!("../lua/nodes.lua"),
        }
    }
}

/// One Redis call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// A script, with its keys and arguments.
    Script {
        /// Which.
        script: Script,
        /// Its keys (all of one stream: one slot).
        keys: Vec<String>,
        /// Its arguments.
        args: Vec<Vec<u8>>,
    },
    /// `HMGET key e o`: a stream's epoch and last offset.
    Head {
        /// The stream's meta.
        key: String,
    },
    /// Any other command, word by word.
    Command(Vec<Vec<u8>>),
}

/// A reply from Redis, as the plan reads it (a driver converts its client's value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Nil.
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk or simple string.
    Data(Vec<u8>),
    /// An array.
    Array(Vec<Reply>),
    /// An error reply.
    Error(String),
}

/// How to read the replies of a step's calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An append's: `Appended`, or `Failed`.
    Append {
        /// The operation.
        op: OpId,
        /// An outbox's: whether its publish reached a node (one where its user has a session:
        /// `Appended::online`).
        online: bool,
    },
    /// A read's: `Read`.
    Read {
        /// The operation.
        op: OpId,
        /// The stream read.
        stream: StreamId,
        /// The position asked for.
        after: Option<Position>,
    },
    /// A mark's: `Marked`.
    Mark {
        /// The operation.
        op: OpId,
        /// Whose outbox.
        user: roomcast_core::names::UserId,
    },
    /// The heads asked for: `Tops`, one call per stream.
    Tops {
        /// The operation.
        op: OpId,
        /// The streams, in the order of the calls.
        streams: Vec<StreamId>,
    },
    /// Everyone present in a room: `PresenceSnapshot`.
    Presence {
        /// The room.
        room: RoomName,
    },
    /// Nothing to tell (a presence entry written, refreshed).
    Nothing,
}

impl Answer {
    /// The event for calls that could not be made or answered (the link failed): the
    /// operation failed, `unavailable`; nothing for calls nobody waits on.
    pub fn failed(&self, why: &str) -> Option<EngineEvent> {
        let op = match self {
            Self::Append { op, .. } | Self::Read { op, .. } | Self::Mark { op, .. } => *op,
            Self::Tops { op, .. } => *op,
            Self::Presence { .. } | Self::Nothing => return None,
        };
        Some(EngineEvent::Failed {
            op,
            fault: Fault::Unavailable(why.to_owned()),
        })
    }
}

/// What the driver does for an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run these calls in order (pipelined: each reply in its place), then read the replies
    /// with [`Plan::answer`].
    Run {
        /// The calls.
        calls: Vec<Call>,
        /// How to read their replies.
        answer: Answer,
    },
    /// Subscribe to this channel: the stream's appends come as pushes, for [`Plan::live`].
    Subscribe(String),
    /// Leave it.
    Unsubscribe(String),
    /// Nothing to do in Redis (the scripts trim by age and keys expire by themselves).
    Nothing,
}

/// The plan: key names, calls and the reading of replies. Deterministic: its epochs and nonces
/// come from its seed.
#[derive(Clone, Debug)]
pub struct Plan {
    config: PlanConfig,
    keys: Keys,
    rng: u64,
}

impl Plan {
    /// A plan for this deployment; `seed` makes the epochs and nonces it hands out (a driver
    /// seeds it from the OS, a test with a number).
    pub fn new(config: PlanConfig, seed: u64) -> Self {
        let keys = Keys::new(&config.prefix);
        Self {
            config,
            keys,
            rng: seed,
        }
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// What to do for `operation`, at `now_ms` (milliseconds since the Unix epoch: the
    /// records' times, for their age).
    pub fn plan(&mut self, now_ms: u64, operation: Operation) -> Step {
        match operation {
            Operation::Append {
                op,
                stream,
                record,
                retention,
            } => {
                let age = millis(retention.max_age);
                let ttl = (2 * age).max(millis(self.config.idle_ttl));
                let publish: &[u8] = if self.config.sharded {
                    b"SPUBLISH"
                } else {
                    b"PUBLISH"
                };
                let nonce = self.nonce();
                let marker = self.keys.marker(&stream, &nonce);
                let args = vec![
                    record.encode(),
                    record.size().to_string().into_bytes(),
                    nonce.into_bytes(),
                    now_ms.to_string().into_bytes(),
                    retention.max_messages.to_string().into_bytes(),
                    retention.max_bytes.to_string().into_bytes(),
                    age.to_string().into_bytes(),
                    self.epoch().to_string().into_bytes(),
                    self.keys.channel(&stream).into_bytes(),
                    publish.to_vec(),
                    ttl.to_string().into_bytes(),
                    b"0".to_vec(),
                ];
                let call = Call::Script {
                    script: Script::Append,
                    keys: vec![self.keys.meta(&stream), self.keys.log(&stream), marker],
                    args,
                };
                // A node with a session of an outbox's user follows its channel: the publish's
                // count of receivers says whether one does, a `direct`'s `delivered`.
                let online = matches!(stream, StreamId::Outbox(_));
                Step::Run {
                    calls: vec![call],
                    answer: Answer::Append { op, online },
                }
            }
            Operation::Read {
                op,
                stream,
                after,
                max,
            } => {
                let (epoch, offset) = match after {
                    Some(after) => (after.epoch.to_string(), after.offset),
                    None => (String::new(), 0),
                };
                let args = vec![
                    self.epoch().to_string().into_bytes(),
                    epoch.into_bytes(),
                    offset.to_string().into_bytes(),
                    max.max(1).to_string().into_bytes(),
                    now_ms.to_string().into_bytes(),
                    millis(self.config.idle_ttl).to_string().into_bytes(),
                ];
                let call = Call::Script {
                    script: Script::Read,
                    keys: vec![self.keys.meta(&stream), self.keys.log(&stream)],
                    args,
                };
                Step::Run {
                    calls: vec![call],
                    answer: Answer::Read { op, stream, after },
                }
            }
            Operation::MarkRead { op, user, upto } => {
                let stream = StreamId::Outbox(user.clone());
                let args = vec![
                    self.epoch().to_string().into_bytes(),
                    upto.epoch.to_string().into_bytes(),
                    upto.offset.to_string().into_bytes(),
                    millis(self.config.idle_ttl).to_string().into_bytes(),
                ];
                let call = Call::Script {
                    script: Script::Mark,
                    keys: vec![self.keys.meta(&stream)],
                    args,
                };
                Step::Run {
                    calls: vec![call],
                    answer: Answer::Mark { op, user },
                }
            }
            Operation::Tops { op, streams } => {
                let calls = streams
                    .iter()
                    .map(|stream| Call::Head {
                        key: self.keys.meta(stream),
                    })
                    .collect();
                Step::Run {
                    calls,
                    answer: Answer::Tops { op, streams },
                }
            }
            Operation::Presence {
                node,
                room,
                user,
                present,
            } => {
                let stream = StreamId::Room(room.clone());
                let presence_ttl = millis(self.config.presence_ttl);
                let publish: &[u8] = if self.config.sharded {
                    b"SPUBLISH"
                } else {
                    b"PUBLISH"
                };
                let args = vec![
                    format!("{node}:{user}").into_bytes(),
                    if present {
                        b"1".to_vec()
                    } else {
                        b"0".to_vec()
                    },
                    (now_ms + presence_ttl).to_string().into_bytes(),
                    self.keys.channel(&stream).into_bytes(),
                    publish.to_vec(),
                    format!("P {node} {} {user}", u8::from(present)).into_bytes(),
                    (2 * presence_ttl).to_string().into_bytes(),
                ];
                let call = Call::Script {
                    script: Script::Presence,
                    keys: vec![self.keys.presence(&room)],
                    args,
                };
                Step::Run {
                    calls: vec![call],
                    answer: Answer::Nothing,
                }
            }
            Operation::Typing {
                node,
                room,
                user,
                typing,
            } => {
                // Relayed, not kept.
                let publish: &[u8] = if self.config.sharded {
                    b"SPUBLISH"
                } else {
                    b"PUBLISH"
                };
                let channel = self.keys.channel(&StreamId::Room(room));
                let message = format!("T {node} {} {user}", u8::from(typing));
                let call = Call::Command(vec![
                    publish.to_vec(),
                    channel.into_bytes(),
                    message.into_bytes(),
                ]);
                Step::Run {
                    calls: vec![call],
                    answer: Answer::Nothing,
                }
            }
            Operation::Follow { stream, .. } => Step::Subscribe(self.keys.channel(&stream)),
            Operation::Unfollow(stream) => Step::Unsubscribe(self.keys.channel(&stream)),
            // Records past their age go at every append and read of their stream, and the keys
            // of a stream left alone expire.
            _ => Step::Nothing,
        }
    }

    /// The events the replies of a step's calls mean, one reply per call in order.
    pub fn answer(&self, answer: Answer, replies: Vec<Reply>) -> Vec<EngineEvent> {
        decode::answer(answer, replies)
    }

    /// The call that reads everyone present in `room` (expired entries dropped), answered
    /// [`Answer::Presence`].
    pub fn presence_read(&self, now_ms: u64, room: &RoomName) -> Step {
        let call = Call::Script {
            script: Script::PresenceRead,
            keys: vec![self.keys.presence(room)],
            args: vec![now_ms.to_string().into_bytes()],
        };
        Step::Run {
            calls: vec![call],
            answer: Answer::Presence { room: room.clone() },
        }
    }

    /// The calls that keep this node's presence entries (`node`, room, user) from expiring:
    /// one `ZADD` of every user of a room (in chunks of 1,000) and one `PEXPIRE`, per room.
    pub fn presence_refresh(&self, now_ms: u64, node: u64, entries: &[(RoomName, UserId)]) -> Step {
        let presence_ttl = millis(self.config.presence_ttl);
        let expiry = (now_ms + presence_ttl).to_string().into_bytes();
        let key_ttl = (2 * presence_ttl).to_string().into_bytes();
        let mut rooms: std::collections::BTreeMap<&RoomName, Vec<&UserId>> =
            std::collections::BTreeMap::new();
        for (room, user) in entries {
            rooms.entry(room).or_default().push(user);
        }
        let mut calls = Vec::new();
        for (room, users) in rooms {
            let key = self.keys.presence(room).into_bytes();
            for chunk in users.chunks(1000) {
                let mut words = vec![b"ZADD".to_vec(), key.clone()];
                for user in chunk {
                    words.push(expiry.clone());
                    words.push(format!("{node}:{user}").into_bytes());
                }
                calls.push(Call::Command(words));
            }
            calls.push(Call::Command(vec![
                b"PEXPIRE".to_vec(),
                key,
                key_ttl.clone(),
            ]));
        }
        Step::Run {
            calls,
            answer: Answer::Nothing,
        }
    }

    /// The `Live` a pub/sub message of `channel` means, if it is one of this plan's (a
    /// malformed one is dropped: the hub finds the gap at the next one, or by its heads check).
    pub fn live(&self, channel: &str, payload: &[u8]) -> Option<EngineEvent> {
        let stream = self.keys.stream_of_channel(channel)?;
        decode::live(stream, payload)
    }

    /// The call that checks that `stream` still holds the record this node delivered last,
    /// at `at` with `nonce`, and starts a new epoch if not (`verify.lua`): its reply is 1
    /// when it did.
    pub fn verify(&mut self, stream: &StreamId, at: Position, nonce: &str) -> Call {
        Call::Script {
            script: Script::Verify,
            keys: vec![self.keys.meta(stream), self.keys.log(stream)],
            args: vec![
                at.epoch.to_string().into_bytes(),
                at.offset.to_string().into_bytes(),
                nonce.as_bytes().to_vec(),
                self.epoch().to_string().into_bytes(),
            ],
        }
    }

    /// An append's calls made a retry: the same record, nonce and time, checked against what
    /// the stream holds, so that if the first attempt was stored its position is the answer
    /// and nothing is stored twice (`append.lua`). `None` for calls that are not an append's.
    pub fn retry(calls: &[Call]) -> Option<Vec<Call>> {
        let mut calls = calls.to_vec();
        match calls.first_mut() {
            Some(Call::Script {
                script: Script::Append,
                args,
                ..
            }) if args.len() == 12 => {
                args[11] = b"1".to_vec();
                Some(calls)
            }
            _ => None,
        }
    }

    /// The call that writes this node's figures (JSON) to the node registry, drops the nodes
    /// gone quiet for the presence TTL, and reads every live node's figures (`nodes.lua`).
    pub fn nodes(&self, now_ms: u64, node: u64, figures: &str) -> Call {
        let ttl = millis(self.config.presence_ttl);
        Call::Script {
            script: Script::Nodes,
            keys: vec![self.keys.nodes(), self.keys.nodes_seen()],
            args: vec![
                format!("{node:016x}").into_bytes(),
                figures.as_bytes().to_vec(),
                (now_ms + ttl).to_string().into_bytes(),
                now_ms.to_string().into_bytes(),
                (2 * ttl).to_string().into_bytes(),
            ],
        }
    }

    /// The stream, position and nonce of the record a pub/sub message carries (for the check
    /// after a reconnection).
    pub fn live_nonce(
        &self,
        channel: &str,
        payload: &[u8],
    ) -> Option<(StreamId, Position, String)> {
        let stream = self.keys.stream_of_channel(channel)?;
        let (at, nonce) = decode::live_nonce(payload)?;
        Some((stream, at, nonce))
    }

    /// The position and nonce of the last record a read's replies carry, if they carry any.
    pub fn read_nonce(answer: &Answer, replies: &[Reply]) -> Option<(StreamId, Position, String)> {
        let Answer::Read { stream, .. } = answer else {
            return None;
        };
        let (at, nonce) = decode::read_nonce(replies)?;
        Some((stream.clone(), at, nonce))
    }

    /// A fresh epoch: never 0, so that `0.0` is never a real position.
    fn epoch(&mut self) -> u64 {
        loop {
            let epoch = self.next();
            if epoch != 0 {
                return epoch;
            }
        }
    }

    /// A record's nonce: 16 hex digits.
    fn nonce(&mut self) -> String {
        format!("{:016x}", self.next())
    }

    /// SplitMix64.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
