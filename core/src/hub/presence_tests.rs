//! Coalesced presence: what a join storm costs each member, what a frame says, counts only
//! above a room size, and that every member's view converges on the room's presence.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::access::Access;
use crate::envelope::Codec;
use crate::harness::Harness;
use crate::limits::SessionConfig;
use crate::session::SessionKind;

const WINDOW: Duration = Duration::from_millis(200);

fn harness(counts_above: usize) -> Harness {
    let config = HubConfig {
        presence_window: WINDOW,
        presence_counts_above: counts_above,
        presence_count_every: Duration::from_secs(1),
        ..HubConfig::default()
    };
    // Clients that never answer a ping: heartbeats that never end a session.
    let sessions = SessionConfig {
        ping_interval: Duration::from_secs(3600),
        ping_timeout: Duration::from_secs(3600),
        ..SessionConfig::default()
    };
    Harness::new(Hub::new(config), crate::testing::start())
        .with_session_config(sessions, Codec::default())
}

fn connect(h: &mut Harness, user: &str) -> SessionId {
    let connect = Connect {
        user: UserId::new(user).expect("valid"),
        broadcast: false,
        rooms: Vec::new(),
        cursor: None,
        access: Access::default(),
    };
    let session = h.connect(SessionKind::WebSocket, connect).expect("connect");
    h.take_json(session);
    session
}

/// Joins the lobby; returns the reply.
fn join(h: &mut Harness, session: SessionId) -> Value {
    h.handle_text(session, r#"{"type":"join","ref":1,"room":"lobby"}"#)
        .expect("websocket");
    let answers = h.take_json(session);
    answers
        .into_iter()
        .find(|a| a["type"] == "reply")
        .expect("a reply")
}

fn presences(h: &mut Harness, session: SessionId) -> Vec<Value> {
    h.take_json(session)
        .into_iter()
        .filter(|m| m["type"] == "presence")
        .collect()
}

fn check(h: &Harness) {
    if let Err(broken) = h.hub().check_invariants() {
        panic!("invariant broken: {broken}");
    }
}

#[test]
fn a_join_storm_costs_each_member_one_frame_per_window() {
    let mut h = harness(1000);
    let first = connect(&mut h, "u0");
    join(&mut h, first);
    let mut sessions = vec![first];
    // 200 arrivals, 10 every 50 ms: one second.
    for batch in 0..20 {
        for i in 0..10 {
            let s = connect(&mut h, &format!("u{}", 1 + batch * 10 + i));
            join(&mut h, s);
            sessions.push(s);
        }
        h.advance(Duration::from_millis(50));
        check(&h);
    }
    h.advance(WINDOW);
    let frames = presences(&mut h, first);
    // One frame at once (the room was quiet), then one per window: 1 s / 200 ms.
    assert!(
        frames.len() <= 7,
        "{} frames for 200 arrivals: {frames:?}",
        frames.len()
    );
    let joined: BTreeSet<&str> = frames
        .iter()
        .flat_map(|f| f["joins"].as_array().expect("a diff"))
        .map(|u| u.as_str().expect("a name"))
        .collect();
    assert_eq!(joined.len(), 200, "every arrival is announced, once");
    assert!(!joined.contains("u0"), "not the first member itself");
    let sent = h.hub().presence_sent();
    assert!(
        sent <= 7 * 201,
        "{sent} presence frames delivered to 201 members"
    );
}

#[test]
fn a_user_who_comes_and_goes_within_a_window_is_in_no_frame() {
    let mut h = harness(1000);
    let (alice, bob, carol) = (
        connect(&mut h, "alice"),
        connect(&mut h, "bob"),
        connect(&mut h, "carol"),
    );
    join(&mut h, alice);
    join(&mut h, bob);
    assert_eq!(
        presences(&mut h, alice),
        [json!({"type": "presence", "room": "lobby", "joins": ["bob"], "leaves": []})],
        "a quiet room announces at once"
    );
    join(&mut h, carol);
    h.handle_text(carol, r#"{"type":"leave","room":"lobby"}"#)
        .expect("websocket");
    h.handle_text(bob, r#"{"type":"leave","room":"lobby"}"#)
        .expect("websocket");
    assert_eq!(presences(&mut h, alice), Vec::<Value>::new(), "the window");
    assert_eq!(h.poll_timeout(), Some(h.now() + WINDOW));
    h.advance(WINDOW);
    assert_eq!(
        presences(&mut h, alice),
        [json!({"type": "presence", "room": "lobby", "joins": [], "leaves": ["bob"]})]
    );
    check(&h);
}

#[test]
fn a_join_reply_lists_what_the_members_hold_so_the_next_frame_applies_to_it() {
    let mut h = harness(1000);
    let (alice, bob, carol, dave) = (
        connect(&mut h, "alice"),
        connect(&mut h, "bob"),
        connect(&mut h, "carol"),
        connect(&mut h, "dave"),
    );
    join(&mut h, alice);
    join(&mut h, bob); // announced at once: the window opens
    presences(&mut h, alice);
    join(&mut h, carol); // waits for the window
    let reply = join(&mut h, dave);
    // Carol is not in what alice and bob hold yet: nor in dave's list.
    assert_eq!(reply["members"], json!(["alice", "bob", "dave"]));
    h.handle_text(carol, r#"{"type":"leave","room":"lobby"}"#)
        .expect("websocket");
    h.advance(WINDOW);
    let frame = json!({"type": "presence", "room": "lobby", "joins": ["dave"], "leaves": []});
    assert_eq!(presences(&mut h, alice), std::slice::from_ref(&frame));
    assert_eq!(
        presences(&mut h, dave),
        [frame],
        "dave's own join is a set insert"
    );
    check(&h);
}

#[test]
fn above_the_size_a_room_gets_counts_then_the_list_again_below_it() {
    let mut h = harness(4);
    let watcher = connect(&mut h, "w");
    join(&mut h, watcher);
    let others: Vec<SessionId> = ["a", "b", "c"].iter().map(|u| connect(&mut h, u)).collect();
    for &s in &others {
        let reply = join(&mut h, s);
        assert!(reply.get("members").is_some() && reply.get("count").is_none());
    }
    h.advance(WINDOW);
    presences(&mut h, watcher);
    h.advance(WINDOW); // quiet
    // The fifth user: above 4 present, so counts only.
    let d = connect(&mut h, "d");
    let reply = join(&mut h, d);
    assert_eq!(reply["count"], json!(5), "{reply}");
    assert!(reply.get("members").is_none(), "{reply}");
    assert_eq!(
        presences(&mut h, watcher),
        [json!({"type": "presence", "room": "lobby", "count": 5})]
    );
    // Counts go out at most once a second, and only when they moved.
    let e = connect(&mut h, "e");
    join(&mut h, e);
    h.advance(WINDOW);
    assert_eq!(presences(&mut h, watcher), Vec::<Value>::new());
    h.advance(Duration::from_secs(1));
    assert_eq!(
        presences(&mut h, watcher),
        [json!({"type": "presence", "room": "lobby", "count": 6})]
    );
    // Back to 3: the whole list replaces the count, then diffs again.
    for s in [d, e, others[2]] {
        h.handle_text(s, r#"{"type":"leave","room":"lobby"}"#)
            .expect("websocket");
    }
    h.advance(Duration::from_secs(1));
    assert_eq!(
        presences(&mut h, watcher),
        [json!({"type": "presence", "room": "lobby", "members": ["a", "b", "w"]})]
    );
    h.handle_text(others[1], r#"{"type":"leave","room":"lobby"}"#)
        .expect("websocket");
    h.advance(WINDOW);
    assert_eq!(
        presences(&mut h, watcher),
        [json!({"type": "presence", "room": "lobby", "joins": [], "leaves": ["b"]})]
    );
    check(&h);
}

/// What a member holds of the room's presence, from its join reply and the frames since.
#[derive(Default)]
struct View {
    members: BTreeSet<String>,
    count: Option<u64>,
}

impl View {
    fn apply(&mut self, frame: &Value) {
        let names = |key: &str| -> Vec<String> {
            frame[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|u| u.as_str().expect("a name").to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(count) = frame["count"].as_u64() {
            self.count = Some(count);
            self.members.clear();
        } else if frame.get("members").is_some() {
            self.count = None;
            self.members = names("members").into_iter().collect();
        } else {
            self.count = None;
            for user in names("leaves") {
                self.members.remove(&user);
            }
            self.members.extend(names("joins"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Whatever users join, leave and disconnect, and however time passes, once the room's
    /// frames have gone out every member holds exactly the room's presence: the list, or the
    /// count above the size.
    #[test]
    fn every_member_converges_on_the_rooms_presence(
        ops in prop::collection::vec(
            (prop::sample::select(vec![0u8, 0, 1, 1, 1, 2, 2, 3]), 0usize..5, prop::sample::select(vec![0u64, 0, 50, 150, 250, 1200])),
            1..80,
        ),
        counts_above in 2usize..8,
    ) {
        converges(&ops, counts_above)?;
    }
}

/// The property's body: `Err` names the member whose view is not the room's presence.
fn converges(ops: &[(u8, usize, u64)], counts_above: usize) -> Result<(), TestCaseError> {
    let mut h = harness(counts_above);
    let mut sessions: BTreeMap<usize, SessionId> = BTreeMap::new();
    let mut views: BTreeMap<SessionId, View> = BTreeMap::new();
    let mut joined: BTreeSet<SessionId> = BTreeSet::new();
    let take = |h: &mut Harness, views: &mut BTreeMap<SessionId, View>| {
        for (session, view) in views.iter_mut() {
            for frame in presences(h, *session) {
                view.apply(&frame);
            }
        }
    };
    for &(op, who, ms) in ops {
        match op {
            0 if !sessions.contains_key(&who) => {
                let s = connect(&mut h, &format!("u{who}"));
                sessions.insert(who, s);
            }
            1 => {
                if let Some(&s) = sessions.get(&who)
                    && joined.insert(s)
                {
                    take(&mut h, &mut views);
                    let reply = join(&mut h, s);
                    let mut view = View::default();
                    view.apply(&reply);
                    views.insert(s, view);
                }
            }
            2 => {
                if let Some(&s) = sessions.get(&who)
                    && joined.remove(&s)
                {
                    h.handle_text(s, r#"{"type":"leave","room":"lobby"}"#)
                        .expect("websocket");
                    views.remove(&s);
                    h.take_json(s);
                }
            }
            3 => {
                if let Some(s) = sessions.remove(&who) {
                    joined.remove(&s);
                    views.remove(&s);
                    h.remove(s);
                }
            }
            _ => {}
        }
        h.advance(Duration::from_millis(ms));
        check(&h);
        take(&mut h, &mut views);
    }
    // Past every grace period and window.
    h.advance(Duration::from_secs(7));
    take(&mut h, &mut views);
    let lobby = RoomName::new("lobby").expect("valid");
    let present: BTreeSet<String> = h
        .hub()
        .members(&lobby)
        .iter()
        .map(|u| u.to_string())
        .collect();
    for view in views.values() {
        if present.len() > counts_above {
            prop_assert_eq!(view.count, Some(present.len() as u64));
        } else {
            prop_assert_eq!(view.count, None);
            prop_assert_eq!(&view.members, &present);
        }
    }
    Ok(())
}
