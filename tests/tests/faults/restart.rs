//! A server restart during traffic.

use futures_util::SinkExt;
use roomcast_core::hub::HubConfig;
use roomcast_core::names::RoomName;
use roomcast_core::session::SessionConfig;
use roomcast_hyper::Options;
use roomcast_tests::http::get;
use roomcast_tests::{
    Client, Flavor, Read, Server, listen_on, on_every_runtime, stream_entry, within,
};
use serde_json::{Value, json};

use crate::common::{expect_close, join, ms, position, publish, request, serve_with, sleep};

/// A hub seed far from the first server's (7): epochs are `mix(seed + counter)`, so two seeds a
/// few apart would give some streams the same epoch. `roomcast serve` seeds from the clock.
const RESTART_SEED: u64 = 7 + (1 << 31);

fn restart_options() -> Options {
    serve_with(SessionConfig {
        shutdown_grace: ms(300),
        ..SessionConfig::default()
    })
}

/// Alice publishes, one at a time, until the server tells her it is going away; after the
/// `shutdown` message she reads until the close. Returns her acknowledged ids, the notice and
/// the close code.
async fn publish_until_shutdown(
    mut alice: Client,
    acked: async_channel::Sender<()>,
) -> (Vec<Value>, Value, Option<u16>) {
    let mut ids = Vec::new();
    for seq in 1..=5000u64 {
        alice
            .send_json(
                json!({"type": "publish", "ref": seq, "room": "lobby", "data": {"seq": seq}}),
            )
            .await;
        // Its answer, unless the shutdown comes first.
        for _ in 0..100 {
            let value = alice.next_json().await;
            match value["type"].as_str() {
                Some("reply") if value["ref"] == seq => {
                    ids.push(value["id"].clone());
                    let _ = acked.try_send(());
                    break;
                }
                Some("shutdown") => {
                    let code = expect_close(&mut alice).await;
                    return (ids, value, code);
                }
                _ => {}
            }
        }
        sleep(ms(2)).await; // a chat, not a load test: about 300 messages a second
    }
    panic!("no shutdown after 5000 messages");
}

/// Bob reads the room until the server goes away; returns the messages, the notice and the code.
async fn read_until_shutdown(mut bob: Client) -> (Vec<Value>, Value, Option<u16>) {
    let mut messages = Vec::new();
    for _ in 0..10_000 {
        let value = bob.next_json().await;
        match value["type"].as_str() {
            Some("message") => messages.push(value),
            Some("shutdown") => {
                // Messages may still come in the grace period, before the close.
                for _ in 0..10_000 {
                    match bob.read().await {
                        Read::Json(value) if value["type"] == "message" => messages.push(value),
                        Read::Close(frame) => {
                            let _ = within("flush", bob.ws.flush()).await;
                            return (messages, value, frame.map(|f| f.code.into()));
                        }
                        Read::Gone(why) => panic!("no close frame: {why}"),
                        _ => {}
                    }
                }
                panic!("no close after the shutdown");
            }
            _ => {}
        }
    }
    panic!("no shutdown in 10,000 messages");
}

/// Asserts `messages` are the room's messages from offset 1 with no gap, all in `epoch`.
fn assert_gapless(who: &str, messages: &[Value], epoch: &str) {
    for (i, message) in messages.iter().enumerate() {
        let (e, offset) = position(&message["id"]);
        assert_eq!(
            (e.as_str(), offset),
            (epoch, i as u64 + 1),
            "{who}: {message}"
        );
        assert_eq!(message["data"]["seq"], offset, "{who}: {message}");
    }
}

/// Clients chat in a room (Alice publishing, Bob and an SSE client reading, each keeping its
/// position) when the server shuts down: each is told `shutdown` with the reconnect hint, the
/// WebSockets close with 1001 and the SSE stream ends, each having seen a gapless prefix. A new
/// server with a fresh hub starts on the same port, and already holds more messages in that
/// room than the old one did. Everyone resumes from its old position: each is told
/// `recovered: false` (another epoch) and given nothing from the new history (which a same-epoch
/// resume would have replayed as if it were the missed part); the SSE client's `streams` says so
/// for every stream of its `Last-Event-ID`, and its cursor moves to the new epochs. Live
/// messages then flow as usual.
fn restart_on_the_same_port_is_never_a_silent_gap(flavor: Flavor) {
    smol::block_on(async {
        let first = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = first.local_addr().expect("address").port();
        let server = Server::start_on(
            flavor,
            first,
            HubConfig::default(),
            restart_options(),
            64,
            7,
        )
        .await;
        let (mut alice, _, streams) = server.connect("user=alice").await;
        let alice_user = stream_entry(&streams, "user")["id"].clone();
        let mut bob = server.client("bob").await;
        join(&mut alice, "lobby").await;
        join(&mut bob, "lobby").await;
        let mut carol = get(server.addr, "/events?user=carol&rooms=lobby", &[])
            .await
            .events();
        carol.next_of("streams").await;

        // Traffic, then the shutdown in the middle of it.
        let (acked, acks) = async_channel::unbounded();
        let alice = smol::spawn(publish_until_shutdown(alice, acked));
        let bob = smol::spawn(read_until_shutdown(bob));
        // Carol's stream: its messages, whether the notice came, and the last id (the cursor).
        let carol = smol::spawn(async move {
            let (mut messages, mut notice, mut last_id) = (Vec::new(), None, String::new());
            for _ in 0..10_000 {
                let Some(event) = carol.next().await else {
                    return (messages, notice, last_id);
                };
                if !event.id.is_empty() {
                    last_id = event.id.clone();
                }
                let data = || serde_json::from_str::<Value>(&event.data).expect("JSON");
                match event.event.as_str() {
                    "message" => messages.push(data()),
                    "shutdown" => notice = Some(data()),
                    _ => {}
                }
            }
            panic!("10,000 events and no end");
        });
        for _ in 0..20 {
            within("Alice's acks", acks.recv()).await.expect("acked");
        }
        server.shutdown.trigger(250);

        let (ids, notice, code) = within("Alice", alice).await;
        roomcast_tests::assert_reconnect_hint(&notice, 250);
        assert_eq!(code, Some(1001));
        let (epoch, _) = position(&ids[0]);
        let offsets: Vec<u64> = ids.iter().map(|id| position(id).1).collect();
        assert_eq!(offsets, (1..=ids.len() as u64).collect::<Vec<_>>());
        let (seen, notice, code) = within("Bob", bob).await;
        assert_eq!(notice["type"], "shutdown");
        assert_eq!(code, Some(1001));
        assert_gapless("bob", &seen, &epoch);
        let (carol_seen, notice, carol_cursor) = within("Carol", carol).await;
        let notice = notice.expect("the SSE stream got the notice before it ended");
        roomcast_tests::assert_reconnect_hint(&notice, 250);
        assert_gapless("carol", &carol_seen, &epoch);
        eprintln!(
            "restart: {} published, Bob saw {}, Carol {}",
            ids.len(),
            seen.len(),
            carol_seen.len()
        );
        within("drained", server.shutdown.drained()).await;

        // A new server on the same port, with a fresh hub that already has more messages in the
        // room than the old one had.
        let listener = listen_on(port).await;
        let server = Server::start_on(
            flavor,
            listener,
            HubConfig::default(),
            restart_options(),
            64,
            RESTART_SEED,
        )
        .await;
        assert_eq!(server.addr.port(), port);
        let lobby: RoomName = "lobby".parse().expect("a room");
        let ahead = ids.len().max(seen.len()) as u64 + 5;
        let mut new_last = None;
        for n in 1..=ahead {
            let data = roomcast_core::envelope::Payload::from_json(&format!(r#"{{"new":{n}}}"#))
                .expect("JSON");
            new_last = Some(
                server
                    .hub
                    .publish(lobby.clone(), data)
                    .await
                    .expect("hub")
                    .expect("stored")
                    .id,
            );
        }
        let new_last = json!(new_last.expect("published").to_string());
        let (new_epoch, _) = position(&new_last);
        assert_ne!(new_epoch, epoch, "the new hub's epoch");

        // Bob resumes from his last message: not recovered, nothing replayed.
        let mut bob = server.client("bob").await;
        let since = seen.last().map(|m| m["id"].clone()).expect("Bob saw some");
        let reply = request(
            &mut bob,
            json!({"type": "join", "ref": "resume", "room": "lobby", "since": since}),
        )
        .await;
        assert_eq!(
            (&reply["recovered"], &reply["replayed"], &reply["id"]),
            (&json!(false), &json!(0), &new_last),
            "{reply}"
        );
        let extra = bob.barrier().await;
        assert!(
            extra.is_empty(),
            "replayed after recovered: false: {extra:?}"
        );

        // Alice, with her user stream's old position at connect and her last id on join.
        let cursor = format!("user%3D{}", alice_user.as_str().expect("an id"));
        let (mut alice, _, streams) = server.connect(&format!("user=alice&cursor={cursor}")).await;
        let user = stream_entry(&streams, "user");
        assert_eq!(user["recovered"], false, "{streams}");
        assert_ne!(
            position(&user["id"]).0,
            position(&alice_user).0,
            "{streams}"
        );
        let reply = request(
            &mut alice,
            json!({"type": "join", "ref": "resume", "room": "lobby", "since": ids.last()}),
        )
        .await;
        assert_eq!(reply["recovered"], false, "{reply}");
        assert_eq!(reply["replayed"], 0, "{reply}");
        let extra = alice.barrier().await;
        let replayed: Vec<&Value> = extra.iter().filter(|v| v["type"] == "message").collect();
        assert!(replayed.is_empty(), "replayed: {replayed:?}");

        // Carol reconnects as a browser does, with Last-Event-ID: every stream of her cursor is
        // reported not recovered, and her cursor moves to the new epochs.
        let events = get(
            server.addr,
            "/events?user=carol&rooms=lobby",
            &[("last-event-id", &carol_cursor)],
        )
        .await;
        assert_eq!(events.status, 200);
        let mut carol = events.events();
        let open = carol.next().await.expect("open");
        assert_eq!(
            (open.event.as_str(), open.id.as_str()),
            ("open", carol_cursor.as_str())
        );
        let (streams, cursor) = carol.next_of("streams").await;
        for stream in ["room:lobby", "user", "all"] {
            let entry = stream_entry(&streams, stream);
            assert_eq!(entry["recovered"], false, "{stream}: {streams}");
            assert_eq!(entry["replayed"], 0, "{stream}: {streams}");
            let old = carol_cursor
                .split(',')
                .find_map(|e| e.strip_prefix(&format!("{stream}=")))
                .unwrap_or_else(|| panic!("{stream} not in {carol_cursor}"));
            assert_ne!(
                position(&entry["id"]).0,
                position(&json!(old)).0,
                "{stream}"
            );
        }
        assert!(
            cursor.contains(&format!("room:lobby={}", new_last.as_str().expect("text"))),
            "{cursor}"
        );

        // Live: Alice's next message reaches Bob and Carol, next after the new history.
        let id = publish(&mut alice, "lobby", 1, json!({"seq": "live"})).await;
        assert_eq!(position(&id), (new_epoch.clone(), ahead + 1));
        assert_eq!(bob.next_of("message").await["id"], id);
        let (message, _) = carol.next_of("message").await;
        assert_eq!(
            message["id"], id,
            "nothing replayed before the live message"
        );
    });
}

on_every_runtime!(restart_on_the_same_port_is_never_a_silent_gap);
