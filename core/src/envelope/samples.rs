//! One of every server message, each optional field both given and left out: the samples the
//! protocol's JSON Schema (`docs/schema/protocol-v1.json`) is checked against, and a start for
//! another implementation's conformance tests. Its test fails to compile when a message is
//! added without a sample here.

use std::str::FromStr;

use super::{ErrorCode, Payload, PresenceChange, Ref, Reply, ServerMessage, StreamStart};
use crate::cursor::{Position, Stream};
use crate::names::{RoomName, UserId};

/// Every kind of server message, with its optional fields both ways.
pub fn server_messages() -> Vec<ServerMessage> {
    let room = || RoomName::new("lobby").expect("a room name");
    let user = |name: &str| UserId::new(name).expect("a user id");
    let id = |text: &str| Position::from_str(text).expect("a position");
    let data = || Payload::from_json(r#"{"text":"hi","n":[1,2.5,null]}"#).expect("JSON");
    let mut join = Reply::to(Ref::from(1));
    join.room = Some(room());
    join.members = Some(vec![user("alice"), user("bob")]);
    join.id = Some(id("1f.44"));
    join.recovered = Some(true);
    join.replayed = Some(2);
    let mut crowded = Reply::to(Ref::Text("j1".into()));
    crowded.room = Some(room());
    crowded.count = Some(41_873);
    crowded.id = Some(id("1f.44"));
    let mut direct = Reply::to(Ref::from(4));
    direct.id = Some(id("1f.42"));
    direct.delivered = Some(false);
    let mut read = Reply::to(Ref::from(7));
    read.id = Some(id("2.14"));
    read.unread = Some(1);
    let mut app = Reply::to(Ref::from(6));
    app.data = Some(data());
    vec![
        ServerMessage::Welcome {
            session: "s1".into(),
            user: user("alice"),
            ping_interval_ms: 25_000,
            ping_timeout_ms: 10_000,
            max_frame: 65_536,
        },
        ServerMessage::Reply(Reply::to(Ref::from(5))),
        ServerMessage::Reply(join),
        ServerMessage::Reply(crowded),
        ServerMessage::Reply(direct),
        ServerMessage::Reply(read),
        ServerMessage::Reply(app),
        ServerMessage::Error {
            reference: Some(Ref::Text("x".into())),
            code: ErrorCode::BadFrame,
            message: "join needs the field `room`".into(),
        },
        ServerMessage::Error {
            reference: None,
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
        },
        ServerMessage::Message {
            room: room(),
            id: id("1f.42"),
            from: Some(user("alice")),
            event: None,
            data: data(),
        },
        ServerMessage::Message {
            room: room(),
            id: id("1f.43"),
            from: None,
            event: Some("alert".into()),
            data: Payload::from_json("null").expect("JSON"),
        },
        ServerMessage::Presence {
            room: room(),
            change: PresenceChange::Diff {
                joins: vec![user("bob")],
                leaves: vec![],
            },
        },
        ServerMessage::Presence {
            room: room(),
            change: PresenceChange::Members(vec![user("alice"), user("bob")]),
        },
        ServerMessage::Presence {
            room: room(),
            change: PresenceChange::Count(41_873),
        },
        ServerMessage::Typing {
            room: room(),
            user: user("bob"),
            typing: false,
        },
        ServerMessage::Direct {
            id: id("1f.42"),
            from: user("bob"),
            data: data(),
        },
        ServerMessage::Notify {
            id: id("1f.42"),
            event: Some("invoice.paid".into()),
            data: data(),
        },
        ServerMessage::Notify {
            id: id("1f.43"),
            event: None,
            data: data(),
        },
        ServerMessage::Broadcast {
            id: id("1f.42"),
            event: None,
            data: Payload::from_json("[]").expect("JSON"),
        },
        ServerMessage::Broadcast {
            id: id("1f.43"),
            event: Some("news".into()),
            data: data(),
        },
        ServerMessage::Receipt {
            id: id("2.15"),
            from: user("bob"),
            upto: id("1f.42"),
        },
        ServerMessage::Streams {
            streams: vec![
                StreamStart {
                    stream: Stream::Room(room()),
                    id: id("1f.42"),
                    recovered: Some(true),
                    replayed: 2,
                    unread: None,
                },
                StreamStart {
                    stream: Stream::User,
                    id: id("2.0"),
                    recovered: None,
                    replayed: 0,
                    unread: Some(0),
                },
                StreamStart {
                    stream: Stream::All,
                    id: id("3.7"),
                    recovered: Some(false),
                    replayed: 0,
                    unread: None,
                },
            ],
        },
        ServerMessage::Read {
            upto: id("2.14"),
            unread: 1,
        },
        ServerMessage::Shutdown {
            reason: "restart".into(),
            reconnect_ms: 1_500,
        },
        ServerMessage::Expiring { in_ms: 60_000 },
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Numbers each kind of message. A message added to [`ServerMessage`] fails to compile
    /// here: give it an arm, raise [`KINDS`], and give it a sample (and a schema).
    fn kind(message: &ServerMessage) -> usize {
        match message {
            ServerMessage::Welcome { .. } => 0,
            ServerMessage::Reply(_) => 1,
            ServerMessage::Error { .. } => 2,
            ServerMessage::Message { .. } => 3,
            ServerMessage::Presence { .. } => 4,
            ServerMessage::Typing { .. } => 5,
            ServerMessage::Direct { .. } => 6,
            ServerMessage::Notify { .. } => 7,
            ServerMessage::Broadcast { .. } => 8,
            ServerMessage::Receipt { .. } => 9,
            ServerMessage::Streams { .. } => 10,
            ServerMessage::Read { .. } => 11,
            ServerMessage::Shutdown { .. } => 12,
            ServerMessage::Expiring { .. } => 13,
        }
    }

    const KINDS: usize = 14;

    #[test]
    fn every_kind_of_server_message_has_a_sample() {
        let seen: BTreeSet<usize> = server_messages().iter().map(kind).collect();
        assert_eq!(seen, (0..KINDS).collect());
    }
}
