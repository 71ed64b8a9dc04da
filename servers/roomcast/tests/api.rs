//! The server API beyond publishing, against `roomcast serve` on 127.0.0.1: batches, a room's
//! history paged either way and exported as NDJSON (100,000 messages in flat memory), and a
//! room's presence. Each test starts its own server on an ephemeral port.

mod common;

use std::time::Duration;

use roomcast_tests::http::{get, post};
use roomcast_tests::{Client, within};
use serde_json::{Value, json};

use common::{Running, fresh_dir};

const KEY: &str = "test-api-key";
const AUTH: [(&str, &str); 1] = [("authorization", "Bearer test-api-key")];

/// `GET target` with the key, as JSON, with its status.
async fn get_json(server: &Running, target: &str) -> (u16, Value) {
    let response = get(server.addr, target, &AUTH).await;
    let status = response.status;
    (status, response.json().await)
}

/// Publishes `count` messages to `room` in batches, `{"n": i}` for i from `first` (with `pad`
/// bytes of padding); returns their ids.
async fn publish_numbered(
    server: &Running,
    room: &str,
    (first, count): (usize, usize),
    pad: usize,
) -> Vec<String> {
    let pad = "x".repeat(pad);
    let mut ids = Vec::with_capacity(count);
    let mut n = first;
    while n < first + count {
        let batch: Vec<Value> = (n..(n + 1000).min(first + count))
            .map(|i| json!({"room": room, "event": "tick", "data": {"n": i, "pad": pad}}))
            .collect();
        n += batch.len();
        let body = json!({ "messages": batch }).to_string();
        let response = post(server.addr, "/api/batch", &AUTH, &body).await;
        assert_eq!(response.status, 200);
        let answer = response.json().await;
        for result in answer["results"].as_array().expect("results") {
            ids.push(result["id"].as_str().expect("an id").to_owned());
        }
    }
    ids
}

fn numbers(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["data"]["n"].as_u64().expect("n"))
        .collect()
}

#[test]
fn a_batch_answers_each_message_in_its_place_and_a_bad_one_stores_nothing() {
    let server = Running::start(&["--memory", "--api-key", KEY]);
    smol::block_on(async {
        let (mut bob, _) = connect(&server, "user=bob").await;
        bob.send_json(json!({"type": "join", "ref": 1, "room": "lobby"}))
            .await;
        bob.next_of("reply").await;
        let body = json!({"messages": [
            {"room": "lobby", "data": 1},
            {"user": "bob", "event": "invoice", "data": 2},
            {"broadcast": true, "data": 3},
            {"room": "secret:plans", "data": 4},
            {"room": "lobby", "data": 5},
        ]});
        let response = post(server.addr, "/api/batch", &AUTH, &body.to_string()).await;
        assert_eq!(response.status, 200);
        let results = response.json().await["results"].clone();
        assert_eq!(results[0]["sessions"], 1, "{results}");
        assert_eq!(results[1]["sessions"], 1, "{results}");
        assert_eq!(results[2]["sessions"], 1, "{results}");
        // A room of a namespace not configured is refused, in its place only.
        assert_eq!(results[3]["status"], 403, "{results}");
        assert_eq!(results[3]["code"], "unauthorized", "{results}");
        assert!(results[4]["id"].is_string(), "{results}");
        // Bob gets each in order.
        assert_eq!(bob.next_of("message").await["id"], results[0]["id"]);
        assert_eq!(bob.next_of("notify").await["id"], results[1]["id"]);
        assert_eq!(bob.next_of("broadcast").await["id"], results[2]["id"]);
        assert_eq!(bob.next_of("message").await["id"], results[4]["id"]);

        // One bad message refuses the call, naming it, and nothing of it is stored.
        let body = json!({"messages": [
            {"room": "lobby", "data": 6},
            {"room": "bad room", "data": 7},
        ]});
        let response = post(server.addr, "/api/batch", &AUTH, &body.to_string()).await;
        assert_eq!(response.status, 400);
        let error = response.json().await;
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("messages[1]"),
            "{error}"
        );
        let (_, page) = get_json(&server, "/api/rooms/lobby/history").await;
        assert_eq!(page["messages"].as_array().unwrap().len(), 2, "{page}");
        for (body, why) in [
            (json!({"messages": []}), "an empty batch"),
            (json!({"messages": [{"data": 1}]}), "no target"),
            (
                json!({"messages": [{"room": "a", "user": "b", "data": 1}]}),
                "two targets",
            ),
        ] {
            let response = post(server.addr, "/api/batch", &AUTH, &body.to_string()).await;
            assert_eq!(response.status, 400, "{why}");
        }
        let response = post(server.addr, "/api/batch", &[], r#"{"messages":[]}"#).await;
        assert_eq!(response.status, 401, "the key is needed");
    });
}

#[test]
fn history_pages_either_way_and_a_lost_position_is_410() {
    // 20 kept of 25 published: the first 5 are gone.
    let server = Running::start(&["--api-key", KEY, "--history", "20"]);
    smol::block_on(async {
        let ids = publish_numbered(&server, "lobby", (1, 25), 0).await;

        // Oldest first: 6..15, 16..25, then the end.
        let (status, page) = get_json(&server, "/api/rooms/lobby/history?limit=10").await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(numbers(&page), (6..=15).collect::<Vec<_>>());
        assert_eq!(page["room"], "lobby");
        assert_eq!(page["messages"][0]["id"], ids[5].as_str());
        assert_eq!(page["messages"][0]["event"], "tick");
        assert_eq!(page["next"], ids[14].as_str());
        let next = page["next"].as_str().unwrap().to_owned();
        let (_, page) = get_json(
            &server,
            &format!("/api/rooms/lobby/history?limit=10&since={next}"),
        )
        .await;
        assert_eq!(numbers(&page), (16..=25).collect::<Vec<_>>());
        assert_eq!(page["next"], Value::Null, "{page}");

        // Newest first: 25..16, 15..6, then the end.
        let (_, page) = get_json(&server, "/api/rooms/lobby/history?order=desc&limit=10").await;
        assert_eq!(numbers(&page), (16..=25).rev().collect::<Vec<_>>());
        let next = page["next"].as_str().expect("a next page").to_owned();
        assert_eq!(next, ids[15]);
        let (_, page) = get_json(
            &server,
            &format!("/api/rooms/lobby/history?order=desc&limit=10&since={next}"),
        )
        .await;
        assert_eq!(numbers(&page), (6..=15).rev().collect::<Vec<_>>());
        assert_eq!(page["next"], Value::Null, "{page}");

        // From a position whose next messages are gone: 410, never a page with a gap.
        let lost = &ids[2];
        let (status, error) =
            get_json(&server, &format!("/api/rooms/lobby/history?since={lost}")).await;
        assert_eq!(status, 410, "{error}");
        assert_eq!(error["code"], "history_lost");
        let (status, _) = get_json(&server, "/api/rooms/lobby/history?since=abc.3").await;
        assert_eq!(status, 410, "another epoch");
        // An empty room: an empty page.
        let (status, page) = get_json(&server, "/api/rooms/empty/history").await;
        assert_eq!((status, numbers(&page).len()), (200, 0), "{page}");
        assert_eq!(page["next"], Value::Null);

        for (query, why) in [
            ("limit=0", "a limit under 1"),
            ("limit=1001", "a limit over 1000"),
            ("order=sideways", "an order"),
            ("since=12", "a position"),
            ("sinse=1.2", "a misspelt parameter"),
            ("limit=1&limit=2", "a parameter twice"),
            ("format=ndjson&order=desc", "an export newest first"),
        ] {
            let (status, error) =
                get_json(&server, &format!("/api/rooms/lobby/history?{query}")).await;
            assert_eq!(status, 400, "{why}: {error}");
        }
        let response = get(server.addr, "/api/rooms/lobby/history", &[]).await;
        assert_eq!(response.status, 401, "the key is needed");
        let response = post(server.addr, "/api/rooms/lobby/history", &AUTH, "{}").await;
        assert_eq!(response.status, 405);
    });
}

#[test]
fn an_export_streams_100000_messages_in_order_in_flat_memory() {
    const COUNT: usize = 100_000;
    let dir = fresh_dir("api-export");
    let data = dir.display().to_string();
    let server = Running::start(&[
        "--api-key",
        KEY,
        "--data-dir",
        &data,
        "--history",
        "200000",
        "--history-bytes",
        "200000000",
        "--max-frame",
        "1048576",
    ]);
    smol::block_on(async {
        publish_numbered(&server, "big", (0, COUNT), 100).await;
        let before = rss_kib(server.pid());
        let mut response = get(
            server.addr,
            "/api/rooms/big/history",
            &[AUTH[0], ("accept", "application/x-ndjson")],
        )
        .await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), "application/x-ndjson");
        let mut next = 0;
        let mut partial = Vec::new();
        let mut peak = before;
        let mut chunks = 0;
        while let Some(chunk) = response.chunk().await {
            partial.extend_from_slice(&chunk);
            let end = partial
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            for line in partial[..end]
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
            {
                let message: Value = serde_json::from_slice(line).expect("a JSON line");
                assert_eq!(message["data"]["n"], next, "in order, each once: {message}");
                next += 1;
            }
            partial.drain(..end);
            chunks += 1;
            if chunks % 16 == 1 {
                peak = peak.max(rss_kib(server.pid()));
            }
            if chunks == 2 {
                // A reader that stops: the server makes no more than the socket takes.
                smol::Timer::after(Duration::from_millis(300)).await;
                peak = peak.max(rss_kib(server.pid()));
            }
        }
        assert_eq!(next, COUNT as u64, "every message exported");
        assert!(partial.is_empty(), "the export ends with a whole line");
        // The export is 15 MB: a server that held it would grow by more than that.
        let grown = peak.saturating_sub(before);
        eprintln!("export of {COUNT}: RSS {before} KiB before, peak {peak} KiB, +{grown} KiB");
        assert!(grown < 4 * 1024, "RSS grew {grown} KiB during the export");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn presence_lists_members_with_their_sessions_and_counts_them() {
    let server = Running::start(&["--memory", "--api-key", KEY]);
    smol::block_on(async {
        let mut clients = Vec::new();
        for user in ["alice", "alice", "bob"] {
            let (mut client, _) = connect(&server, &format!("user={user}")).await;
            client
                .send_json(json!({"type": "join", "ref": 1, "room": "lobby"}))
                .await;
            client.next_of("reply").await;
            clients.push(client);
        }
        let (status, presence) = get_json(&server, "/api/rooms/lobby/presence").await;
        assert_eq!(status, 200);
        assert_eq!(
            presence,
            json!({"room": "lobby", "members": [
                {"user": "alice", "sessions": 2, "nodes": []},
                {"user": "bob", "sessions": 1, "nodes": []},
            ]})
        );
        let (_, stats) = get_json(&server, "/api/rooms/lobby/presence/stats").await;
        assert_eq!(stats, json!({"room": "lobby", "users": 2, "sessions": 3}));

        // Bob leaves: gone at once (an explicit leave has no grace period).
        clients[2]
            .send_json(json!({"type": "leave", "ref": 2, "room": "lobby"}))
            .await;
        clients[2].next_of("reply").await;
        let (_, stats) = get_json(&server, "/api/rooms/lobby/presence/stats").await;
        assert_eq!(stats, json!({"room": "lobby", "users": 1, "sessions": 2}));
        let (_, presence) = get_json(&server, "/api/rooms/nobody/presence").await;
        assert_eq!(presence, json!({"room": "nobody", "members": []}));
        let response = get(server.addr, "/api/rooms/lobby/presence", &[]).await;
        assert_eq!(response.status, 401, "the key is needed");
    });
}

#[test]
fn rooms_are_listed_a_page_at_a_time_with_their_counts_and_last_message() {
    let server = Running::start(&["--memory", "--api-key", KEY]);
    smol::block_on(async {
        let mut clients = Vec::new();
        for (user, room) in [
            ("ann", "room-a"),
            ("ben", "room-b"),
            ("cat", "room-b"),
            ("ann", "room-c"),
        ] {
            let (mut client, _) = connect(&server, &format!("user={user}")).await;
            client
                .send_json(json!({"type": "join", "ref": 1, "room": room}))
                .await;
            client.next_of("reply").await;
            clients.push(client);
        }
        let ids = publish_numbered(&server, "room-b", (1, 2), 0).await;
        clients[1].next_of("message").await;
        clients[1].next_of("message").await;

        let (status, page) = get_json(&server, "/api/rooms?limit=2").await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            page,
            json!({"rooms": [
                {"room": "room-a", "users": 1, "sessions": 1, "last": null},
                {"room": "room-b", "users": 2, "sessions": 2, "last": ids[1]},
            ], "next": "room-b"})
        );
        let (_, page) = get_json(&server, "/api/rooms?limit=2&after=room-b").await;
        assert_eq!(
            page,
            json!({"rooms": [{"room": "room-c", "users": 1, "sessions": 1, "last": null}], "next": null})
        );
        for query in ["limit=0", "after=a%20b", "page=2"] {
            let (status, _) = get_json(&server, &format!("/api/rooms?{query}")).await;
            assert_eq!(status, 400, "{query}");
        }
    });
}

#[test]
fn a_user_is_looked_up_and_disconnected_with_a_code_that_says_whether_to_return() {
    let server = Running::start(&["--memory", "--api-key", KEY]);
    smol::block_on(async {
        let (mut first, welcome) = connect(&server, "user=alice").await;
        let (mut second, _) = connect(&server, "user=alice").await;
        for client in [&mut first, &mut second] {
            client
                .send_json(json!({"type": "join", "ref": 1, "room": "lobby"}))
                .await;
            client.next_of("reply").await;
        }
        let (status, alice) = get_json(&server, "/api/users/alice").await;
        assert_eq!(status, 200, "{alice}");
        assert_eq!(alice["online"], true);
        let sessions = alice["sessions"].as_array().expect("sessions");
        assert_eq!(sessions.len(), 2, "{alice}");
        assert_eq!(sessions[0]["session"], welcome["session"], "{alice}");
        assert_eq!(sessions[0]["rooms"], json!(["lobby"]));
        let (_, nobody) = get_json(&server, "/api/users/nobody").await;
        assert_eq!(
            nobody,
            json!({"user": "nobody", "online": false, "sessions": [], "unread": 0})
        );
        // Two notifications; the first is marked read from a session: one is left unread.
        for n in [1, 2] {
            let body = json!({"user": "alice", "data": n}).to_string();
            assert_eq!(
                post(server.addr, "/api/notify", &AUTH, &body).await.status,
                200
            );
        }
        assert_eq!(get_json(&server, "/api/users/alice").await.1["unread"], 2);
        let notify = first.next_of("notify").await;
        first
            .send_json(json!({"type": "read", "ref": 9, "upto": notify["id"]}))
            .await;
        assert_eq!(first.next_of("reply").await["unread"], 1);
        assert_eq!(get_json(&server, "/api/users/alice").await.1["unread"], 1);

        // One session, asked to come back: the other goes on.
        let body = json!({"session": welcome["session"], "reason": "moved"}).to_string();
        let response = post(server.addr, "/api/users/alice/disconnect", &AUTH, &body).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.json().await["sessions"], 1);
        assert_eq!(first.close_code().await, Some(4100));
        let (_, alice) = get_json(&server, "/api/users/alice").await;
        assert_eq!(
            alice["sessions"].as_array().map(Vec::len),
            Some(1),
            "{alice}"
        );
        publish_numbered(&server, "lobby", (1, 1), 0).await;
        assert_eq!(second.next_of("message").await["data"]["n"], 1);

        // Every session, asked to stay away.
        for (body, why) in [
            (
                json!({"reconnect": false, "code": 4200}),
                "a code that says return",
            ),
            (json!({"code": 4600}), "a code that says stay away"),
            (
                json!({"reason": "x".repeat(124)}),
                "a reason over 123 bytes",
            ),
            (json!({"session": "7"}), "a session id"),
            (json!({"sesion": "s7"}), "a misspelt field"),
        ] {
            let response = post(
                server.addr,
                "/api/users/alice/disconnect",
                &AUTH,
                &body.to_string(),
            )
            .await;
            assert_eq!(response.status, 400, "{why}");
        }
        let body = json!({"reconnect": false, "code": 4501, "reason": "banned"}).to_string();
        let response = post(server.addr, "/api/users/alice/disconnect", &AUTH, &body).await;
        assert_eq!(response.json().await["sessions"], 1);
        assert_eq!(second.close_code().await, Some(4501));
        let (_, alice) = get_json(&server, "/api/users/alice").await;
        assert_eq!(alice["online"], false, "{alice}");

        let response = post(server.addr, "/api/users/alice/disconnect", &[], "{}").await;
        assert_eq!(response.status, 401, "the key is needed");
        let response = get(server.addr, "/api/users/alice/disconnect", &AUTH).await;
        assert_eq!(response.status, 405);
        let response = get(server.addr, "/api/users/alice", &[]).await;
        assert_eq!(response.status, 401, "the key is needed");
    });
}

/// Connects and reads `welcome` and `streams`.
async fn connect(server: &Running, query: &str) -> (Client, Value) {
    let mut client = within("handshake", Client::connect(&server.ws(query)))
        .await
        .expect("handshake");
    let welcome = client.next_json().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    client.next_json().await;
    (client, welcome)
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
