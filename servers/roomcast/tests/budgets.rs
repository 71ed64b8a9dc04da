//! Each storage budget of `roomcast serve` at its limit, over real sockets: a room's history
//! and a user's outbox keep their newest messages within their count and bytes (a reader who
//! needed the dropped ones is told `recovered: false`); past the number of offline outboxes or
//! the total bytes, a new stream is refused with `limit_reached` (HTTP 507) while the streams
//! already kept go on; `/api/status` shows the figures. On disk (the default) and in memory.

mod common;

use common::Running;
use roomcast_tests::http::{get, post};
use roomcast_tests::{Client, stream_entry, within};
use serde_json::{Value, json};

const JSON: [(&str, &str); 1] = [("content-type", "application/json")];

/// The storage settings under test: on disk, or `--memory`.
const STORAGES: [&[&str]; 2] = [&[], &["--memory"]];

fn start(storage: &[&str], args: &[&str]) -> Running {
    let mut all = storage.to_vec();
    all.extend_from_slice(args);
    Running::start(&all)
}

async fn status(server: &Running) -> Value {
    get(server.addr, "/api/status", &[]).await.json().await
}

/// A publish through the API: its status and body.
async fn publish(server: &Running, room: &str, data: Value) -> (u16, Value) {
    let body = json!({ "data": data }).to_string();
    let response = post(
        server.addr,
        &format!("/api/rooms/{room}/publish"),
        &JSON,
        &body,
    )
    .await;
    (response.status, response.json().await)
}

async fn notify(server: &Running, user: &str, data: Value) -> (u16, Value) {
    let body = json!({ "user": user, "data": data }).to_string();
    let response = post(server.addr, "/api/notify", &JSON, &body).await;
    (response.status, response.json().await)
}

async fn client(server: &Running, user: &str) -> Client {
    let mut client = within(
        "connect",
        Client::connect(&server.ws(&format!("user={user}"))),
    )
    .await
    .expect("connects");
    client.next_of("welcome").await;
    client
}

/// A join with `since`: the reply, and the data of the messages replayed.
async fn join_since(client: &mut Client, room: &str, since: &str) -> (Value, Vec<Value>) {
    let reference = json!(format!("join-{since}"));
    client
        .send_json(json!({"type": "join", "ref": reference, "room": room, "since": since}))
        .await;
    let (reply, _) = client.answer(&reference).await;
    let mut data = Vec::new();
    for _ in 0..reply["replayed"].as_u64().unwrap_or(0) {
        data.push(client.next_of("message").await["data"].clone());
    }
    (reply, data)
}

fn epoch_start(id: &Value) -> String {
    let id = id.as_str().expect("an id");
    format!("{}.0", id.split_once('.').expect("epoch.offset").0)
}

#[test]
fn a_room_history_keeps_its_newest_within_its_count() {
    for storage in STORAGES {
        let server = start(storage, &["--history", "5"]);
        smol::block_on(async {
            let mut ids = Vec::new();
            for n in 1..=8 {
                let (code, body) = publish(&server, "lobby", json!(n)).await;
                assert_eq!(code, 200, "{body}");
                ids.push(body["id"].clone());
            }
            let mut reader = client(&server, "reader").await;
            // From the start: three are gone, and the reader is told so.
            let (reply, data) = join_since(&mut reader, "lobby", &epoch_start(&ids[0])).await;
            assert_eq!(reply["recovered"], false, "{storage:?}: {reply}");
            assert!(data.is_empty(), "{data:?}");
            // From the third: the five kept follow it.
            let mut second = client(&server, "second").await;
            let since = ids[2].as_str().expect("id");
            let (reply, data) = join_since(&mut second, "lobby", since).await;
            assert_eq!(reply["recovered"], true, "{storage:?}: {reply}");
            assert_eq!(data, (4..=8).map(|n| json!(n)).collect::<Vec<_>>());
            let status = status(&server).await;
            assert_eq!(status["stored_messages"], 5, "{storage:?}: {status}");
        });
    }
}

#[test]
fn a_room_history_keeps_its_newest_within_its_bytes() {
    for storage in STORAGES {
        // Each message is about 140 bytes as counted (payload, names, 32 of overhead).
        let server = start(storage, &["--history", "100", "--history-bytes", "400"]);
        smol::block_on(async {
            let text = "x".repeat(100);
            let mut ids = Vec::new();
            for n in 0..10 {
                let (code, body) = publish(&server, "big", json!(format!("{n}{text}"))).await;
                assert_eq!(code, 200, "{body}");
                ids.push(body["id"].clone());
            }
            let status = status(&server).await;
            assert_eq!(status["stored_messages"], 2, "{storage:?}: {status}");
            assert!(
                status["stored_bytes"].as_u64().expect("bytes") <= 400,
                "{status}"
            );
            let mut reader = client(&server, "reader").await;
            let since = ids[7].as_str().expect("id");
            let (reply, data) = join_since(&mut reader, "big", since).await;
            assert_eq!(reply["recovered"], true, "{reply}");
            assert_eq!(data, [json!(format!("8{text}")), json!(format!("9{text}"))]);
            let mut late = client(&server, "late").await;
            let since = ids[6].as_str().expect("id");
            let (reply, _) = join_since(&mut late, "big", since).await;
            assert_eq!(reply["recovered"], false, "the eighth is gone: {reply}");
        });
    }
}

#[test]
fn an_outbox_keeps_its_newest_within_its_count_and_bytes() {
    for storage in STORAGES {
        let server = start(storage, &["--outbox", "3", "--outbox-bytes", "100000"]);
        let small = start(storage, &["--outbox", "100", "--outbox-bytes", "300"]);
        smol::block_on(async {
            for n in 1..=5 {
                let (code, body) = notify(&server, "bob", json!(n)).await;
                assert_eq!(code, 200, "{body}");
            }
            let mut bob = client(&server, "bob").await;
            let streams = bob.next_of("streams").await;
            let user = stream_entry(&streams, "user");
            assert_eq!(user["unread"], 3, "{storage:?}: {streams}");
            assert_eq!(user["replayed"], 3, "{streams}");
            let mut data = Vec::new();
            for _ in 0..3 {
                data.push(bob.next_of("notify").await["data"].clone());
            }
            assert_eq!(data, [json!(3), json!(4), json!(5)]);

            // By bytes: about 130 each as counted, so two fit in 300.
            let text = "y".repeat(90);
            for n in 0..6 {
                let (code, body) = notify(&small, "carol", json!(format!("{n}{text}"))).await;
                assert_eq!(code, 200, "{body}");
            }
            let status = status(&small).await;
            assert_eq!(status["stored_messages"], 2, "{storage:?}: {status}");
            let mut carol = client(&small, "carol").await;
            let streams = carol.next_of("streams").await;
            assert_eq!(stream_entry(&streams, "user")["unread"], 2, "{streams}");
        });
    }
}

#[test]
fn past_the_offline_outboxes_a_new_one_is_refused_and_the_kept_ones_go_on() {
    for storage in STORAGES {
        let server = start(storage, &["--max-offline-outboxes", "3"]);
        smol::block_on(async {
            for user in ["u1", "u2", "u3"] {
                let (code, body) = notify(&server, user, json!(user)).await;
                assert_eq!(code, 200, "{storage:?}: {body}");
            }
            let (code, body) = notify(&server, "u4", json!("no room")).await;
            assert_eq!(code, 507, "{storage:?}: {body}");
            assert_eq!(body["type"], "error", "{body}");
            assert_eq!(body["code"], "limit_reached", "{body}");
            // A direct to a fifth user over the WebSocket: the same refusal.
            let mut alice = client(&server, "alice").await;
            alice
                .send_json(json!({"type": "direct", "ref": 1, "to": "u5", "data": 1}))
                .await;
            let (error, _) = alice.answer(&json!(1)).await;
            assert_eq!(error["type"], "error", "{error}");
            assert_eq!(error["code"], "limit_reached", "{error}");
            // The outboxes kept take more.
            let (code, body) = notify(&server, "u1", json!("more")).await;
            assert_eq!(code, 200, "{body}");
            let status = status(&server).await;
            assert_eq!(status["outboxes"], 3, "{storage:?}: {status}");
        });
    }
}

#[test]
fn past_the_total_bytes_a_new_stream_is_refused_and_an_old_one_makes_room() {
    for storage in STORAGES {
        let server = start(storage, &["--store-max-bytes", "2000", "--history", "1000"]);
        smol::block_on(async {
            let text = "z".repeat(200);
            // Rooms of one message each until the total refuses a new one.
            let mut refused = None;
            for n in 0..20 {
                let (code, body) = publish(&server, &format!("r{n}"), json!(text)).await;
                if code != 200 {
                    refused = Some((n, code, body));
                    break;
                }
            }
            let (n, code, body) = refused.expect("refused before 20 rooms of 240 bytes");
            assert!(n >= 5, "{storage:?}: refused at room {n}");
            assert_eq!(code, 507, "{body}");
            assert_eq!(body["code"], "limit_reached", "{body}");
            let status = status(&server).await;
            let bytes = status["stored_bytes"].as_u64().expect("bytes");
            assert!(bytes <= 2000, "{storage:?}: {status}");
            // A room kept already takes more: its oldest make room.
            for _ in 0..5 {
                let (code, body) = publish(&server, "r0", json!(text)).await;
                assert_eq!(code, 200, "{storage:?}: {body}");
            }
            let after = status_bytes(&server).await;
            assert!(after <= 2000, "{storage:?}: {after}");
            // Over the WebSocket, a new room's publish: limit_reached.
            let mut alice = client(&server, "alice").await;
            alice
                .send_json(json!({"type": "join", "ref": "j", "room": "fresh"}))
                .await;
            alice.answer(&json!("j")).await;
            alice
                .send_json(json!({"type": "publish", "ref": 2, "room": "fresh", "data": text}))
                .await;
            let (error, _) = alice.answer(&json!(2)).await;
            assert_eq!(error["code"], "limit_reached", "{storage:?}: {error}");
        });
    }
}

async fn status_bytes(server: &Running) -> u64 {
    status(server).await["stored_bytes"]
        .as_u64()
        .expect("bytes")
}
