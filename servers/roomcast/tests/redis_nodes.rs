//! Two `roomcast serve` nodes on one real `redis-server` (started here on a loopback port with
//! a fresh directory), one on tokio and one on smol: what a client of one node publishes reaches
//! clients of the other, over WebSocket, SSE and long-poll, with the same ids in the same order;
//! a notification through one node's API waits in Redis for a user who then connects to the
//! other; a direct crosses with its `delivered` and its read receipt; a client resumes on the
//! other node exactly; and while Redis is gone, a publish is answered `unavailable`, then works
//! again once Redis is back.
//!
//! Without `redis-server` these tests are ignored (`apt-get install redis-server`);
//! `ROOMCAST_REQUIRE_REDIS=1` runs them anyway (CI).

mod common;

use common::Running;
use roomcast_tests::http::{get, post};
use roomcast_tests::redis::RedisServer;
use roomcast_tests::{Client, stream_entry, within};
use serde_json::{Value, json};

const REDIS: &str = env!("ROOMCAST_TEST_REDIS_SERVER");

/// A node on tokio (roomcast's default), and one on smol: the driver is the same on both.
fn nodes(redis: &RedisServer) -> (Running, Running) {
    let url = redis.url();
    (
        Running::start(&["--redis", &url]),
        Running::start(&["--redis", &url, "--runtime", "smol"]),
    )
}

/// Publishes `data` to `room` and returns the reply's id.
async fn publish(client: &mut Client, reference: &str, room: &str, data: Value) -> Value {
    client
        .send_json(json!({"type": "publish", "ref": reference, "room": room, "data": data}))
        .await;
    let (reply, _) = client.answer(&json!(reference)).await;
    assert_eq!(reply["type"], "reply", "{reply}");
    reply["id"].clone()
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn nodes_on_one_redis_share_rooms_outboxes_and_the_feed() {
    let redis = RedisServer::start(REDIS, &[]);
    let (a, b) = nodes(&redis);
    smol::block_on(async {
        let mut alice = a.member("alice", "lobby").await;
        let mut bob = b.member("bob", "lobby").await;
        let mut sse = get(b.addr, "/events?user=carol&rooms=lobby&broadcast=0", &[])
            .await
            .events();
        sse.next_of("streams").await;
        // Erin long-polls on a: her first poll starts from now.
        let first = get(a.addr, "/poll?user=erin&rooms=lobby&timeout=0", &[])
            .await
            .json()
            .await;
        let cursor = first["cursor"].as_str().expect("a cursor").to_owned();
        // Bob on b publishes; alice on a, carol's SSE stream on b and erin's polls on a get
        // each, in order, with the ids bob was answered.
        let mut ids = Vec::new();
        for n in 0..20 {
            ids.push(publish(&mut bob, &format!("p{n}"), "lobby", json!(n)).await);
        }
        let encoded: String = cursor
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        let polled = get(
            a.addr,
            &format!("/poll?user=erin&rooms=lobby&cursor={encoded}&timeout=5"),
            &[],
        )
        .await
        .json()
        .await;
        let polled: Vec<&Value> = polled["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|event| &event["id"])
            .collect();
        assert_eq!(polled, ids.iter().collect::<Vec<_>>(), "long-poll on a");
        for (n, id) in ids.iter().enumerate() {
            let message = alice.next_of("message").await;
            assert_eq!(
                (&message["id"], &message["data"]),
                (id, &json!(n)),
                "{message}"
            );
            let (message, _) = sse.next_of("message").await;
            assert_eq!(&message["id"], id, "{message}");
        }
        // And back: alice on a publishes, bob on b gets it.
        let id = publish(&mut alice, "a1", "lobby", json!("from a")).await;
        let message = bob.next_of("message").await;
        assert_eq!((&message["id"], &message["data"]), (&id, &json!("from a")));
        // A notification through b's API to dave, who is away; dave connects to a.
        let body = json!({"user": "dave", "event": "note", "data": 1}).to_string();
        let response = post(
            b.addr,
            "/api/notify",
            &[("content-type", "application/json")],
            &body,
        )
        .await;
        assert_eq!(response.status, 200);
        let stored = response.json().await;
        let mut dave = within("connect", Client::connect(&a.ws("user=dave")))
            .await
            .expect("dave");
        dave.next_of("welcome").await;
        let streams = dave.next_of("streams").await;
        assert_eq!(stream_entry(&streams, "user")["unread"], 1, "{streams}");
        let note = dave.next_of("notify").await;
        assert_eq!(note["id"], stored["id"], "{note}");
        // A direct from bob on b reaches alice on a, and says so: `delivered` is true when any
        // node holds a session of the recipient. To erin, who is nowhere, it is false.
        bob.send_json(json!({"type": "direct", "ref": "d", "to": "alice", "data": "hi"}))
            .await;
        let (reply, _) = bob.answer(&json!("d")).await;
        assert_eq!(reply["delivered"], true, "{reply}");
        let direct = alice.next_of("direct").await;
        assert_eq!(direct["data"], "hi");
        // Alice reads it on a: bob, on b, gets the receipt (through his outbox in Redis).
        alice
            .send_json(json!({"type": "read", "ref": "r", "upto": direct["id"]}))
            .await;
        let (read, _) = alice.answer(&json!("r")).await;
        assert_eq!(read["type"], "reply", "{read}");
        let receipt = bob.next_of("receipt").await;
        assert_eq!(
            (&receipt["from"], &receipt["upto"]),
            (&json!("alice"), &direct["id"]),
            "{receipt}"
        );
        bob.send_json(json!({"type": "direct", "ref": "e", "to": "erin", "data": "hi"}))
            .await;
        let (reply, _) = bob.answer(&json!("e")).await;
        assert_eq!(reply["delivered"], false, "{reply}");
        let body = json!({"event": "news", "data": 2}).to_string();
        let response = post(
            a.addr,
            "/api/broadcast",
            &[("content-type", "application/json")],
            &body,
        )
        .await;
        assert_eq!(response.status, 200);
        assert_eq!(bob.next_of("broadcast").await["data"], 2);
        // Alice's last session goes: a direct to her is no longer `delivered` (her node took
        // its entry away; at worst it expires with the presence TTL).
        alice.close_and_wait().await;
        let mut delivered = true;
        for n in 0..50 {
            let reference = format!("gone{n}");
            bob.send_json(json!({"type": "direct", "ref": reference, "to": "alice", "data": n}))
                .await;
            let (reply, _) = bob.answer(&json!(reference)).await;
            delivered = reply["delivered"] == true;
            if !delivered {
                break;
            }
            smol::Timer::after(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            !delivered,
            "alice left a, but a direct to her says delivered"
        );
    });
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_client_resumes_on_another_node_exactly() {
    let redis = RedisServer::start(REDIS, &[]);
    let (a, b) = nodes(&redis);
    smol::block_on(async {
        let mut writer = b.member("bob", "lobby").await;
        let mut alice = a.member("alice", "lobby").await;
        let mut sse = get(a.addr, "/events?user=carol&rooms=lobby&broadcast=0", &[])
            .await
            .events();
        sse.next_of("streams").await;
        let mut ids = Vec::new();
        for n in 0..10 {
            ids.push(publish(&mut writer, &format!("p{n}"), "lobby", json!(n)).await);
        }
        // Alice and carol's SSE stream read five on a, then their connections end; five more
        // are published meanwhile.
        for id in &ids[..5] {
            assert_eq!(&alice.next_of("message").await["id"], id);
        }
        let mut last_event_id = String::new();
        for id in &ids[..5] {
            let (message, event_id) = sse.next_of("message").await;
            assert_eq!(&message["id"], id);
            last_event_id = event_id;
        }
        drop(sse);
        alice.close_and_wait().await;
        for n in 10..15 {
            ids.push(publish(&mut writer, &format!("p{n}"), "lobby", json!(n)).await);
        }
        // She comes back on b and resumes from the fifth.
        let mut again = within("connect", Client::connect(&b.ws("user=alice")))
            .await
            .expect("alice again");
        again.next_of("welcome").await;
        let since = ids[4].clone();
        again
            .send_json(json!({"type": "join", "ref": "r", "room": "lobby", "since": since}))
            .await;
        let (reply, _) = again.answer(&json!("r")).await;
        assert_eq!(reply["recovered"], true, "{reply}");
        assert_eq!(reply["replayed"], 10, "{reply}");
        for id in &ids[5..] {
            assert_eq!(&again.next_of("message").await["id"], id);
        }
        // Carol's browser reconnects to b with the last `id:` it had as `Last-Event-ID`.
        let mut resumed = get(
            b.addr,
            "/events?user=carol&rooms=lobby&broadcast=0",
            &[("last-event-id", &last_event_id)],
        )
        .await
        .events();
        let (streams, _) = resumed.next_of("streams").await;
        let lobby = stream_entry(&streams, "room:lobby");
        assert_eq!(lobby["recovered"], true, "{streams}");
        assert_eq!(lobby["replayed"], 10, "{streams}");
        for id in &ids[5..] {
            let (message, _) = resumed.next_of("message").await;
            assert_eq!(&message["id"], id, "SSE resumed on the other node");
        }
    });
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn while_redis_is_gone_a_publish_is_unavailable_and_then_works_again() {
    let mut redis = RedisServer::start(REDIS, &[]);
    let (a, b) = nodes(&redis);
    smol::block_on(async {
        let mut members = [
            a.member("alice", "lobby").await,
            b.member("bob", "lobby").await,
        ];
        for client in &mut members {
            publish(client, "before", "lobby", json!(0)).await;
        }
        redis.kill();
        // The first publish finds the link gone; those after it are refused at once, and
        // /healthz says why.
        for client in &mut members {
            for n in 0..3 {
                let reference = json!(format!("gone{n}"));
                client
                    .send_json(
                        json!({"type": "publish", "ref": reference, "room": "lobby", "data": n}),
                    )
                    .await;
                let (answer, _) = client.answer(&reference).await;
                assert_eq!(answer["code"], "unavailable", "{answer}");
            }
        }
        for node in [&a, &b] {
            let health = get(node.addr, "/healthz", &[]).await;
            assert_eq!(health.status, 503);
            let body = health.json().await;
            assert_eq!(body["status"], "engine_unreachable", "{body}");
            let metrics = get(node.addr, "/metrics", &[]).await.text().await;
            assert!(metrics.contains("roomcast_engine_link_up 0"), "{metrics}");
        }
        // Redis comes back empty (no persistence): each node reconnects by itself, and the
        // room starts on a new epoch.
        redis.restart(REDIS, &[]);
        for client in &mut members {
            let mut n = 0;
            let id = within("a publish that works again", async {
                loop {
                    n += 1;
                    let reference = json!(format!("back{n}"));
                    client
                        .send_json(
                            json!({"type": "publish", "ref": reference, "room": "lobby", "data": n}),
                        )
                        .await;
                    let (answer, _) = client.answer(&reference).await;
                    if answer["type"] == "reply" {
                        return answer["id"].clone();
                    }
                    smol::Timer::after(std::time::Duration::from_millis(200)).await;
                }
            })
            .await;
            let offset = id
                .as_str()
                .and_then(|id| id.split_once('.'))
                .map(|(_, o)| o);
            assert!(matches!(offset, Some("1" | "2")), "a new epoch: {id}");
        }
        for node in [&a, &b] {
            assert_eq!(get(node.addr, "/healthz", &[]).await.status, 200);
        }
    });
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_pub_sub_link_that_redis_drops_is_found_and_what_it_missed_delivered() {
    let redis = RedisServer::start(REDIS, &[]);
    let (a, b) = nodes(&redis);
    smol::block_on(async {
        let mut alice = a.member("alice", "lobby").await;
        let mut bob = b.member("bob", "lobby").await;
        // Redis drops every pub/sub connection (both nodes'); the calls stay.
        let killed = std::process::Command::new("redis-cli")
            .args(["-p", &redis.addr.port().to_string()])
            .args(["CLIENT", "KILL", "TYPE", "pubsub"])
            .output()
            .expect("redis-cli");
        assert!(killed.status.success(), "{killed:?}");
        let started = std::time::Instant::now();
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(publish(&mut bob, &format!("p{n}"), "lobby", json!(n)).await);
        }
        for id in &ids {
            assert_eq!(&alice.next_of("message").await["id"], id);
        }
        // Found by the listener's end, not by the hub's heads check every 5 s.
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(4), "{took:?}");
    });
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_redis_that_may_evict_is_refused_with_the_reason() {
    let redis = RedisServer::start(REDIS, &["--maxmemory-policy", "allkeys-lru"]);
    let output = std::process::Command::new(common::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--redis", &redis.url()])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("maxmemory-policy is allkeys-lru") && stderr.contains("noeviction"),
        "{stderr}"
    );
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_full_redis_answers_limit_reached() {
    let redis = RedisServer::start(REDIS, &["--maxmemory", "3mb"]);
    let (a, _b) = nodes(&redis);
    smol::block_on(async {
        let mut alice = within("connect", Client::connect(&a.ws("user=alice")))
            .await
            .expect("alice");
        alice.next_of("welcome").await;
        // Rooms of one 32 KB message each until Redis is full: bounded by its 3 MB.
        let text = "x".repeat(32 * 1024);
        let mut refused = None;
        for n in 0..400 {
            let room = format!("r{n}");
            alice
                .send_json(json!({"type": "join", "ref": format!("j{n}"), "room": room}))
                .await;
            alice.answer(&json!(format!("j{n}"))).await;
            let reference = json!(format!("p{n}"));
            alice
                .send_json(json!({"type": "publish", "ref": reference, "room": room, "data": text}))
                .await;
            let (answer, _) = alice.answer(&reference).await;
            if answer["type"] == "error" {
                refused = Some(answer);
                break;
            }
            alice
                .send_json(json!({"type": "leave", "ref": format!("l{n}"), "room": room}))
                .await;
            alice.answer(&json!(format!("l{n}"))).await;
        }
        let refused = refused.expect("refused before 400 messages of 32 KB");
        assert_eq!(refused["code"], "limit_reached", "{refused}");
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(message.contains("out of memory"), "{refused}");
    });
}

/// Reads `client`'s frames until `done` holds of the room's members as the client sees them
/// (a join reply's `members`, then `presence` diffs), within 5 s.
async fn members_until(
    client: &mut Client,
    members: &mut std::collections::BTreeSet<String>,
    done: impl Fn(&std::collections::BTreeSet<String>) -> bool,
) {
    within("presence", async {
        while !done(members) {
            let frame = client.next_json().await;
            if frame["type"] == "presence" {
                for user in frame["joins"].as_array().into_iter().flatten() {
                    members.insert(user.as_str().unwrap_or_default().to_owned());
                }
                for user in frame["leaves"].as_array().into_iter().flatten() {
                    members.remove(user.as_str().unwrap_or_default());
                }
            }
        }
    })
    .await;
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn presence_is_shared_by_the_nodes_and_a_user_on_two_is_one_member() {
    use std::collections::BTreeSet;
    let redis = RedisServer::start(REDIS, &[]);
    let (a, b) = nodes(&redis);
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<_>>()
    };
    smol::block_on(async {
        let mut alice = within("connect", Client::connect(&a.ws("user=alice")))
            .await
            .expect("alice");
        alice.next_of("welcome").await;
        alice
            .send_json(json!({"type": "join", "ref": "j", "room": "lobby"}))
            .await;
        let (reply, _) = alice.answer(&json!("j")).await;
        let mut seen_by_alice: BTreeSet<String> = reply["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| u.as_str().unwrap_or_default().to_owned())
            .collect();
        // Bob joins on the other node: alice sees him, and he sees her.
        let mut bob = within("connect", Client::connect(&b.ws("user=bob")))
            .await
            .expect("bob");
        bob.next_of("welcome").await;
        bob.send_json(json!({"type": "join", "ref": "j", "room": "lobby"}))
            .await;
        let (reply, _) = bob.answer(&json!("j")).await;
        let mut seen_by_bob: BTreeSet<String> = reply["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| u.as_str().unwrap_or_default().to_owned())
            .collect();
        members_until(&mut alice, &mut seen_by_alice, |m| {
            *m == set(&["alice", "bob"])
        })
        .await;
        members_until(&mut bob, &mut seen_by_bob, |m| *m == set(&["alice", "bob"])).await;
        // Carol on both nodes is one member; her leaving one node is no leave.
        let mut carols = Vec::new();
        for node in [&a, &b] {
            carols.push(node.member("carol", "lobby").await);
        }
        members_until(&mut alice, &mut seen_by_alice, |m| m.contains("carol")).await;
        // Node a hears of carol on b through Redis: no client of a can show that it has (she
        // is a member already), so the test gives the loopback ample time.
        smol::Timer::after(std::time::Duration::from_millis(500)).await;
        let mut carol_on_a = carols.remove(0);
        carol_on_a
            .send_json(json!({"type": "leave", "ref": "l", "room": "lobby"}))
            .await;
        carol_on_a.answer(&json!("l")).await;
        // Bob leaves on b: alice sees that leave, and no leave of carol came before it.
        bob.send_json(json!({"type": "leave", "ref": "l", "room": "lobby"}))
            .await;
        bob.answer(&json!("l")).await;
        members_until(&mut alice, &mut seen_by_alice, |m| !m.contains("bob")).await;
        assert_eq!(
            seen_by_alice,
            set(&["alice", "carol"]),
            "carol stayed a member"
        );
    });
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn typing_on_one_node_reaches_the_room_on_the_other() {
    let redis = RedisServer::start(REDIS, &[]);
    let (a, b) = nodes(&redis);
    smol::block_on(async {
        let mut alice = a.member("alice", "lobby").await;
        let mut bob = b.member("bob", "lobby").await;
        alice
            .send_json(json!({"type": "typing", "ref": "t", "room": "lobby", "typing": true}))
            .await;
        alice.answer(&json!("t")).await;
        let typing = bob.next_of("typing").await;
        assert_eq!(typing["user"], "alice", "{typing}");
        assert_eq!(typing["typing"], true, "{typing}");
    });
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_killed_nodes_users_leave_within_the_ttl_and_resume_on_another_node() {
    use std::collections::BTreeSet;
    let redis = RedisServer::start(REDIS, &[]);
    let url = redis.url();
    let node = || Running::start(&["--redis", &url, "--redis-presence-ttl", "2s"]);
    let (a, b) = (node(), node());
    smol::block_on(async {
        let mut bob = b.member("bob", "lobby").await;
        let mut alice = a.member("alice", "lobby").await;
        let mut seen_by_bob = BTreeSet::new();
        members_until(&mut bob, &mut seen_by_bob, |m| m.contains("alice")).await;
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(publish(&mut alice, &format!("p{n}"), "lobby", json!(n)).await);
        }
        // Node a dies without a word (SIGKILL): nobody takes its entries away.
        drop(a);
        for n in 3..8 {
            ids.push(publish(&mut bob, &format!("p{n}"), "lobby", json!(n)).await);
        }
        // Its entries expire: bob sees alice leave, and a direct to her is not delivered.
        members_until(&mut bob, &mut seen_by_bob, |m| !m.contains("alice")).await;
        bob.send_json(json!({"type": "direct", "ref": "d", "to": "alice", "data": 1}))
            .await;
        let (reply, _) = bob.answer(&json!("d")).await;
        assert_eq!(reply["delivered"], false, "{reply}");
        // Alice's client reconnects to b and resumes from the last message it had.
        let mut again = within("connect", Client::connect(&b.ws("user=alice")))
            .await
            .expect("alice again");
        again.next_of("welcome").await;
        let since = ids[2].clone();
        again
            .send_json(json!({"type": "join", "ref": "r", "room": "lobby", "since": since}))
            .await;
        let (reply, _) = again.answer(&json!("r")).await;
        assert_eq!(reply["recovered"], true, "{reply}");
        assert_eq!(reply["replayed"], 5, "{reply}");
        for id in &ids[3..] {
            assert_eq!(&again.next_of("message").await["id"], id);
        }
    });
}

#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn api_status_on_any_node_has_every_nodes_figures() {
    let redis = RedisServer::start(REDIS, &[]);
    let url = redis.url();
    let node = |name: &str| {
        Running::start(&[
            "--redis",
            &url,
            "--node-name",
            name,
            "--redis-presence-ttl",
            "3s",
        ])
    };
    let (a, b) = (node("node-a"), node("node-b"));
    smol::block_on(async {
        let _alice = a.member("alice", "lobby").await;
        let _bob = b.member("bob", "lobby").await;
        let _carol = b.member("carol", "lobby").await;
        // Each node's WebSocket connections, as node a's status lists them.
        let websockets = |status: &Value| -> Vec<(String, u64)> {
            status["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|node| {
                    (
                        node["node"].as_str().unwrap_or_default().to_owned(),
                        node["connections"]["websocket"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        };
        let until = |want: Vec<(&'static str, u64)>| {
            let addr = a.addr;
            async move {
                let want: Vec<(String, u64)> =
                    want.into_iter().map(|(n, c)| (n.to_owned(), c)).collect();
                let mut status = Value::Null;
                for _ in 0..100 {
                    status = get(addr, "/api/status", &[]).await.json().await;
                    if websockets(&status) == want {
                        return status;
                    }
                    smol::Timer::after(std::time::Duration::from_millis(100)).await;
                }
                panic!("node a's status never listed {want:?}: {status}");
            }
        };
        let status = until(vec![("node-a", 1), ("node-b", 2)]).await;
        assert_eq!(status["node"], "node-a", "{status}");
        assert_eq!(status["nodes"][1]["users"], 2, "{status}");
        // Node b dies: it leaves the list within the presence TTL.
        drop(b);
        until(vec![("node-a", 1)]).await;
    });
}

/// What a Redis crash may cost is said at start: without AOF, a warning that a restart loses
/// every stream; with AOF `appendfsync always`, none.
#[test]
#[cfg_attr(
    not(roomcast_redis),
    ignore = "needs redis-server: apt-get install redis-server (or ROOMCAST_REDIS_SERVER=path)"
)]
fn a_node_says_what_redis_persistence_may_lose() {
    for (args, warned) in [
        (&[][..], true),
        (
            &["--appendonly", "yes", "--appendfsync", "always"][..],
            false,
        ),
    ] {
        let redis = RedisServer::start(REDIS, args);
        let node = Running::start(&["--redis", &redis.url()]);
        let log = node.log().join("\n");
        assert_eq!(log.contains("appendonly is no"), warned, "{args:?}: {log}");
        assert!(log.contains("roomcast serving"), "{log}");
    }
}
