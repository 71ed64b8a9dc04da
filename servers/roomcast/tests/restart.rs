//! `roomcast serve` killed mid-traffic, then started again on the same data directory: every
//! message it acknowledged (a publish's reply `id`, a direct's, an HTTP 200) is there exactly
//! once, in order, at its acknowledged position, and clients resume from cursors taken before
//! the kill with `recovered: true`. With SIGKILL and with SIGTERM.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Running, fresh_dir};
use roomcast_tests::http::{get, post};
use roomcast_tests::{Client, stream_entry, within};
use serde_json::{Value, json};

/// How the first server ends.
#[derive(Clone, Copy)]
enum End {
    Kill,
    Term,
}

/// What the clients were told was stored, per stream: acknowledged position -> data.
#[derive(Default)]
struct Acknowledged {
    /// Room `a` and room `b`.
    rooms: BTreeMap<&'static str, BTreeMap<String, Value>>,
    /// bob's outbox (directs from alice), carol's (notifications through the API).
    outboxes: BTreeMap<&'static str, BTreeMap<String, Value>>,
}

/// The offset of a position's text, `<epoch>.<offset>`.
fn offset(id: &str) -> u64 {
    id.split_once('.')
        .expect("epoch.offset")
        .1
        .parse()
        .expect("a number")
}

fn epoch(id: &str) -> &str {
    id.split_once('.').expect("epoch.offset").0
}

#[test]
fn what_was_acknowledged_survives_sigkill_and_resumes_exactly() {
    survives(End::Kill);
}

#[test]
fn what_was_acknowledged_survives_sigterm_and_resumes_exactly() {
    survives(End::Term);
}

fn survives(end: End) {
    let dir = fresh_dir("restart");
    let server = Running::start_in(&dir, &[]);
    let addr = server.addr;
    let mut acked = Acknowledged::default();
    let (sse_last, join_since) = smol::block_on(async {
        // An SSE reader of room `a`, whose last event id is its cursor from before the end.
        let mut sse = get(addr, "/events?user=dave&rooms=a&broadcast=0", &[])
            .await
            .events();
        let mut alice = within("connect", Client::connect(&server.ws("user=alice")))
            .await
            .expect("alice");
        alice.next_of("welcome").await;
        for room in ["a", "b"] {
            alice
                .send_json(json!({"type": "join", "ref": room, "room": room}))
                .await;
            alice.answer(&json!(room)).await;
        }
        let mut sse_last = String::new();
        // Acknowledged traffic: room messages and directs over the WebSocket, notifications
        // through the API, each collected with the position it was acknowledged at.
        for n in 0..60u64 {
            let room = if n % 2 == 0 { "a" } else { "b" };
            let reference = json!(format!("p{n}"));
            alice
                .send_json(json!({"type": "publish", "ref": reference, "room": room, "data": n}))
                .await;
            let (reply, _) = alice.answer(&reference).await;
            let id = reply["id"].as_str().expect("an id").to_owned();
            acked.rooms.entry(room).or_default().insert(id, json!(n));
            if n % 3 == 0 {
                let reference = json!(format!("d{n}"));
                alice
                    .send_json(json!({"type": "direct", "ref": reference, "to": "bob", "data": n}))
                    .await;
                let (reply, _) = alice.answer(&reference).await;
                assert_eq!(reply["delivered"], false, "bob is away");
                acked
                    .outboxes
                    .entry("bob")
                    .or_default()
                    .insert(reply["id"].as_str().expect("id").to_owned(), json!(n));
            }
            if n % 5 == 0 {
                let body = json!({"user": "carol", "event": "note", "data": n}).to_string();
                let response = post(
                    addr,
                    "/api/notify",
                    &[("content-type", "application/json")],
                    &body,
                )
                .await;
                assert_eq!(response.status, 200);
                let stored = response.json().await;
                acked
                    .outboxes
                    .entry("carol")
                    .or_default()
                    .insert(stored["id"].as_str().expect("id").to_owned(), json!(n));
            }
            if n == 30 {
                // The SSE reader has read this far.
                loop {
                    let (message, id) = sse.next_of("message").await;
                    sse_last = id;
                    if message["data"] == 30 {
                        break;
                    }
                }
            }
        }
        // In flight as the server ends: sent, not acknowledged (they may or may not be kept).
        for n in 60..80u64 {
            alice
                .send_json(json!({"type": "publish", "room": "a", "data": n}))
                .await;
        }
        let join_since = acked.rooms["a"]
            .keys()
            .nth(10)
            .expect("messages in a")
            .clone();
        (sse_last, join_since)
    });
    match end {
        End::Kill => server.kill(),
        End::Term => {
            let (status, _) = server.terminate();
            assert!(status.success(), "{status}");
        }
    }

    let server = Running::start_in(&dir, &[]);
    let restored = server.log().join("\n");
    assert!(
        restored.contains("restored the stored streams"),
        "{restored}"
    );
    let addr = server.addr;
    smol::block_on(async {
        // Each room: everything from the start, contiguous, once each, every acknowledged
        // message at its position.
        let mut reader = within("connect", Client::connect(&server.ws("user=erin")))
            .await
            .expect("erin");
        reader.next_of("welcome").await;
        for (room, ours) in &acked.rooms {
            let first = ours.keys().next().expect("one at least");
            let since = format!("{}.0", epoch(first));
            reader
                .send_json(json!({"type": "join", "ref": room, "room": room, "since": since}))
                .await;
            let (reply, _) = reader.answer(&json!(room)).await;
            assert_eq!(reply["recovered"], true, "room {room}: {reply}");
            let replayed = reply["replayed"].as_u64().expect("a count");
            let mut seen = BTreeMap::new();
            for _ in 0..replayed {
                let message = reader.next_of("message").await;
                let id = message["id"].as_str().expect("id").to_owned();
                assert_eq!(epoch(&id), epoch(first), "the same epoch");
                assert!(seen.insert(id, message["data"].clone()).is_none(), "once");
            }
            let offsets: Vec<u64> = seen.keys().map(|id| offset(id)).collect();
            let mut sorted = offsets.clone();
            sorted.sort_unstable();
            assert_eq!(
                sorted,
                (1..=replayed).collect::<Vec<_>>(),
                "room {room}: contiguous from 1"
            );
            for (id, data) in ours {
                assert_eq!(
                    seen.get(id),
                    Some(data),
                    "room {room}: acknowledged {id} is there"
                );
            }
        }
        // A join with a `since` from before the end resumes exactly.
        let mut late = within("connect", Client::connect(&server.ws("user=frank")))
            .await
            .expect("frank");
        late.next_of("welcome").await;
        late.send_json(json!({"type": "join", "ref": 1, "room": "a", "since": join_since}))
            .await;
        let (reply, _) = late.answer(&json!(1)).await;
        assert_eq!(reply["recovered"], true, "{reply}");
        assert_eq!(reply["id"], join_since.as_str());
        let first = late.next_of("message").await;
        assert_eq!(
            offset(first["id"].as_str().expect("id")),
            offset(&join_since) + 1
        );

        // SSE resumes from the last event id it had.
        let mut sse = get(
            addr,
            "/events?user=dave&rooms=a&broadcast=0",
            &[("last-event-id", sse_last.as_str())],
        )
        .await
        .events();
        let (streams, _) = sse.next_of("streams").await;
        let entry = stream_entry(&streams, "room:a");
        assert_eq!(entry["recovered"], true, "{streams}");
        let (message, _) = sse.next_of("message").await;
        assert_eq!(message["data"], 32, "the message after 30 in room a");

        // The outboxes: bob and carol, away all along, get every acknowledged message once,
        // in order, without a cursor (none was read).
        for (user, ours) in &acked.outboxes {
            let mut client = within(
                "connect",
                Client::connect(&server.ws(&format!("user={user}"))),
            )
            .await
            .expect("connects");
            client.next_of("welcome").await;
            let streams = client.next_of("streams").await;
            let entry = stream_entry(&streams, "user");
            assert_eq!(
                entry["replayed"].as_u64(),
                Some(ours.len() as u64),
                "{user}: {streams}"
            );
            let kind = if *user == "bob" { "direct" } else { "notify" };
            let mut in_order: Vec<(&String, &Value)> = ours.iter().collect();
            in_order.sort_by_key(|(id, _)| offset(id));
            for (id, data) in in_order {
                let message = client.next_of(kind).await;
                assert_eq!(
                    (&message["id"], &message["data"]),
                    (&json!(id), data),
                    "{user}"
                );
            }
        }
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Duration::ZERO;
}

/// A read receipt is stored like any outbox message: a sender away when the recipient reads
/// gets it after a SIGKILL and a restart, and it is not counted as unread.
#[test]
fn a_read_receipt_for_a_sender_away_survives_sigkill() {
    let dir = fresh_dir("receipt");
    let server = Running::start_in(&dir, &[]);
    let id = smol::block_on(async {
        let mut alice = within("connect", Client::connect(&server.ws("user=alice")))
            .await
            .expect("alice");
        alice.next_of("welcome").await;
        alice
            .send_json(json!({"type": "direct", "ref": 1, "to": "bob", "data": "hi"}))
            .await;
        let (reply, _) = alice.answer(&json!(1)).await;
        let id = reply["id"].as_str().expect("an id").to_owned();
        alice.close_and_wait().await;
        let mut bob = within("connect", Client::connect(&server.ws("user=bob")))
            .await
            .expect("bob");
        bob.next_of("welcome").await;
        let direct = bob.next_of("direct").await;
        assert_eq!(direct["id"], id.as_str());
        bob.send_json(json!({"type": "read", "ref": 2, "upto": id}))
            .await;
        let (reply, _) = bob.answer(&json!(2)).await;
        assert_eq!(reply["unread"], 0, "{reply}");
        id
    });
    // The receipt is appended after the read is answered: wait until it is stored.
    smol::block_on(async {
        within("the receipt stored", async {
            loop {
                let status = get(server.addr, "/api/status", &[]).await.json().await;
                if status["stored_messages"] == 2 {
                    return;
                }
                smol::Timer::after(Duration::from_millis(20)).await;
            }
        })
        .await;
    });
    server.kill();
    let server = Running::start_in(&dir, &[]);
    smol::block_on(async {
        let mut alice = within("connect", Client::connect(&server.ws("user=alice")))
            .await
            .expect("alice");
        alice.next_of("welcome").await;
        let streams = alice.next_of("streams").await;
        let user = stream_entry(&streams, "user");
        assert_eq!(user["replayed"], 1, "{streams}");
        assert_eq!(user["unread"], 0, "{streams}");
        let receipt = alice.next_of("receipt").await;
        assert_eq!(receipt["from"], "bob", "{receipt}");
        assert_eq!(receipt["upto"], id.as_str(), "{receipt}");
    });
}

/// `roomcast compact` is refused on the directory of a running server, and compacts it once
/// the server has stopped.
#[test]
fn compact_waits_for_the_server_to_stop() {
    let dir = fresh_dir("compact");
    let server = Running::start_in(&dir, &[]);
    let compact = || {
        std::process::Command::new(common::BIN)
            .args(["compact", "--data-dir"])
            .arg(&dir)
            .output()
            .expect("runs")
    };
    let refused = compact();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("in use by another running server"),
        "{stderr}"
    );
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
    let done = compact();
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "{stdout}");
    assert!(stdout.starts_with("compacted "), "{stdout}");
}
