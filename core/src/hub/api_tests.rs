//! The server API's reads of the hub: a stream's records through the engine, a room's presence,
//! the rooms a page at a time, a user's sessions.

use std::time::Instant;

use super::*;
use crate::engine::{EngineEvent, MemoryEngine, MemoryLimits};
use crate::envelope::Payload;
use crate::harness::Harness;
use crate::session::SessionKind;

fn harness(config: HubConfig) -> Harness<(), MemoryEngine> {
    Harness::with_engine(
        Hub::new(config),
        MemoryEngine::new(MemoryLimits::default(), 7),
        crate::testing::start(),
    )
}

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("a room name")
}

fn publish(h: &mut Harness<(), MemoryEngine>, n: u64) -> Position {
    let data = Payload::from_json(&n.to_string()).expect("JSON");
    let ticket = h.feed_hub(|hub, now| hub.publish_event(now, room("lobby"), None, data));
    match h.poll_hub_event() {
        Some(HubEvent::Done { ticket: t, result }) if t == ticket => result.expect("stored").id,
        other => panic!("no result: {other:?}"),
    }
}

/// Reads `stream` and returns the answer.
fn read(
    h: &mut Harness<(), MemoryEngine>,
    after: Option<Position>,
    max: usize,
) -> Result<StreamPage, HubError> {
    let stream = StreamId::Room(room("lobby"));
    let ticket = h.feed_hub(|hub, _: Instant| hub.read_stream(stream, after, max));
    match h.poll_hub_event() {
        Some(HubEvent::Read { ticket: t, result }) if t == ticket => result,
        other => panic!("no answer to the read: {other:?}"),
    }
}

#[test]
fn a_read_answers_the_view_and_the_records_after_a_position() {
    let mut h = harness(HubConfig::default());
    let ids: Vec<Position> = (1..=5).map(|n| publish(&mut h, n)).collect();
    let view = read(&mut h, None, 0).expect("read").view;
    assert_eq!(view.head, ids[4]);
    assert_eq!(view.first, 1);
    let page = read(&mut h, Some(ids[1]), 2).expect("read");
    let offsets: Vec<u64> = page.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [3, 4]);
    // A position of another epoch is not covered: the view says so, and no records come.
    let elsewhere = Position {
        epoch: ids[0].epoch + 1,
        offset: 1,
    };
    let page = read(&mut h, Some(elsewhere), 10).expect("read");
    assert!(!page.view.covers(elsewhere) && page.records.is_empty());
}

#[test]
fn a_read_is_refused_at_once_when_the_engine_cannot_take_it() {
    let mut h = harness(HubConfig {
        max_pending: 0,
        ..HubConfig::default()
    });
    assert!(matches!(
        read(&mut h, None, 0),
        Err(HubError::Unavailable(why)) if why.contains("wait for the engine")
    ));
    let mut h = harness(HubConfig::default());
    h.feed_hub(|hub, now| hub.handle_engine(now, EngineEvent::LinkDown));
    assert!(matches!(
        read(&mut h, None, 0),
        Err(HubError::Unavailable(why)) if why.contains("unreachable")
    ));
}

#[test]
fn presence_lists_users_with_their_sessions_here() {
    let mut h = harness(HubConfig::default());
    for user in ["bob", "alice", "alice"] {
        let connect = Connect {
            access: Default::default(),
            user: UserId::new(user).expect("a user"),
            broadcast: false,
            rooms: vec![room("lobby")],
            cursor: None,
        };
        h.connect(SessionKind::Sse, connect).expect("connects");
    }
    h.drive();
    let members = h.hub().room_presence(&room("lobby"));
    let listed: Vec<(&str, u32)> = members
        .iter()
        .map(|m| (m.user.as_str(), m.sessions))
        .collect();
    assert_eq!(listed, [("alice", 2), ("bob", 1)]);
    assert!(members.iter().all(|m| m.nodes.is_empty()));
    assert_eq!(h.hub().room_counts(&room("lobby")), (2, 3));
    assert!(h.hub().room_presence(&room("elsewhere")).is_empty());
    assert_eq!(h.hub().room_counts(&room("elsewhere")), (0, 0));
}

#[test]
fn rooms_come_a_page_at_a_time_and_sessions_by_user() {
    let mut h = harness(HubConfig::default());
    let mut ids = Vec::new();
    for (user, rooms) in [
        ("ann", &["a", "c"][..]),
        ("ben", &["b"][..]),
        ("ann", &["b"][..]),
    ] {
        let connect = Connect {
            access: Default::default(),
            user: UserId::new(user).expect("a user"),
            broadcast: false,
            rooms: rooms.iter().map(|r| room(r)).collect(),
            cursor: None,
        };
        ids.push(h.connect(SessionKind::Sse, connect).expect("connects"));
    }
    h.drive();
    let page = h.hub().rooms_page(None, 2);
    let listed: Vec<(&str, usize, usize)> = page
        .iter()
        .map(|r| (r.room.as_str(), r.users, r.sessions))
        .collect();
    assert_eq!(listed, [("a", 1, 1), ("b", 2, 2)]);
    assert!(page.iter().all(|r| r.last.is_none()), "no messages yet");
    let rest = h.hub().rooms_page(Some(&room("b")), 2);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].room, room("c"));

    let ann = h.hub().user_sessions(&UserId::new("ann").expect("a user"));
    let sessions: Vec<(SessionId, Vec<RoomName>)> =
        ann.into_iter().map(|s| (s.session, s.rooms)).collect();
    assert_eq!(
        sessions,
        [
            (ids[0], vec![room("a"), room("c")]),
            (ids[2], vec![room("b")])
        ]
    );
    assert!(
        h.hub()
            .user_sessions(&UserId::new("zoe").expect("a user"))
            .is_empty()
    );
}
