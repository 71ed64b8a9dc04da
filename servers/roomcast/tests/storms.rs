//! Storms over real sockets: a join storm costs the first member a presence frame per window,
//! not one per arrival, and above `--presence-counts-above` the room gets counts; a storm of
//! new sessions past `--max-new-sessions` is refused 429 with a `Retry-After` that spreads it;
//! a SIGTERM spreads the clients' return over the sessions / that rate.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use roomcast_tests::http::{get, request};
use roomcast_tests::{Client, within};
use serde_json::{Value, json};

use common::Running;

/// A client of `user`, welcomed; returns it with its join reply to `room`.
async fn join(server: &Running, user: &str, room: &str) -> (Client, Value) {
    let url = server.ws(&format!("user={user}"));
    let mut client = within("connect", Client::connect(&url))
        .await
        .expect("connects");
    client.next_of("welcome").await;
    client
        .send_json(json!({"type": "join", "ref": "j", "room": room}))
        .await;
    let (reply, _) = within("the join reply", client.answer(&json!("j"))).await;
    assert_eq!(reply["type"], "reply", "{reply}");
    (client, reply)
}

/// The presence frames that came before a barrier (the hub's round trip).
async fn presences(client: &mut Client) -> Vec<Value> {
    let before = within("a barrier", client.barrier()).await;
    before
        .into_iter()
        .filter(|m| m["type"] == "presence")
        .collect()
}

#[test]
fn a_join_storm_costs_the_first_member_a_frame_per_window() {
    let server = Running::start(&["--memory", "--presence-window", "250ms"]);
    smol::block_on(async {
        let (mut first, _) = join(&server, "first", "storm").await;
        let started = Instant::now();
        let mut others = Vec::new();
        for i in 0..60 {
            others.push(join(&server, &format!("u{i}"), "storm").await.0);
        }
        let took = started.elapsed();
        smol::Timer::after(Duration::from_millis(300)).await; // the last window
        let frames = presences(&mut first).await;
        let joined: BTreeSet<&str> = frames
            .iter()
            .flat_map(|f| f["joins"].as_array().expect("a diff"))
            .map(|u| u.as_str().expect("a name"))
            .collect();
        assert_eq!(joined.len(), 60, "every arrival once: {frames:?}");
        // One at once (the room was quiet), then at most one per window.
        let windows = took.as_millis() / 250 + 2;
        assert!(
            frames.len() as u128 <= windows,
            "{} frames for 60 arrivals in {took:?}",
            frames.len()
        );
        assert!(frames.len() < 30, "{} frames: not coalesced", frames.len());
        let metrics = get(server.addr, "/metrics", &[]).await.text().await;
        let sent = metrics
            .lines()
            .find_map(|l| l.strip_prefix("roomcast_presence_frames_total "))
            .map(|n| n.trim().parse::<u64>().expect("a count"))
            .expect("the metric");
        assert!(sent >= frames.len() as u64, "{sent}");
        drop(others);
    });
}

#[test]
fn above_the_size_the_room_gets_counts_and_the_join_reply_a_count() {
    let server = Running::start(&[
        "--memory",
        "--presence-counts-above",
        "2",
        "--presence-window",
        "100ms",
        "--presence-count-every",
        "300ms",
    ]);
    smol::block_on(async {
        let (mut alice, reply) = join(&server, "alice", "hall").await;
        assert_eq!(reply["members"], json!(["alice"]));
        let (_bob, reply) = join(&server, "bob", "hall").await;
        assert_eq!(reply["members"], json!(["alice", "bob"]));
        let diff = json!({"type": "presence", "room": "hall", "joins": ["bob"], "leaves": []});
        assert_eq!(presences(&mut alice).await, [diff]);
        smol::Timer::after(Duration::from_millis(150)).await; // quiet again
        // Carol makes three: above two, so counts only, at once in a quiet room.
        let (_carol, _) = join(&server, "carol", "hall").await;
        let count = json!({"type": "presence", "room": "hall", "count": 3});
        assert_eq!(presences(&mut alice).await, [count]);
        let (_dave, reply) = join(&server, "dave", "hall").await;
        assert_eq!(reply["count"], json!(3), "what the members hold: {reply}");
        assert!(reply.get("members").is_none(), "{reply}");
        smol::Timer::after(Duration::from_millis(400)).await;
        let count = json!({"type": "presence", "room": "hall", "count": 4});
        assert_eq!(presences(&mut alice).await, [count]);
    });
}

#[test]
fn new_sessions_past_the_rate_are_refused_429_with_a_retry_after_that_spreads_them() {
    let server = Running::start(&[
        "--memory",
        "--max-new-sessions",
        "1",
        "--new-sessions-burst",
        "4",
    ]);
    smol::block_on(async {
        let mut held = Vec::new();
        for i in 0..4 {
            let url = server.ws(&format!("user=u{i}"));
            held.push(
                within("connect", Client::connect(&url))
                    .await
                    .expect("within the burst"),
            );
        }
        // Past the burst: the WebSocket handshake and an SSE stream alike.
        let mut told = Vec::new();
        for i in 0..8 {
            let path = format!("/events?user=v{i}");
            let response = request("GET", server.addr, &path, &[]).await;
            assert_eq!(response.status, 429, "{i}");
            let seconds: u64 = response
                .header("retry-after")
                .parse()
                .expect("Retry-After, seconds");
            told.push(seconds);
            let body: Value = serde_json::from_str(&response.text().await).expect("JSON");
            assert_eq!(body["code"], "rate_limited", "{body}");
        }
        // One a second: each refused is told a later second than the one before it (a slow
        // machine may have let a little of the bucket refill meanwhile).
        assert!(told.windows(2).all(|w| w[0] <= w[1]), "{told:?}");
        assert!(
            told[7] - told[0] >= 5,
            "spread over the seconds ahead: {told:?}"
        );
        let refused = Client::connect(&server.ws("user=w")).await;
        assert!(refused.is_err(), "the WebSocket handshake too");
        let metrics = get(server.addr, "/metrics", &[]).await.text().await;
        assert!(
            metrics
                .lines()
                .any(|l| l == "roomcast_admission_refusals_total 9"),
            "{metrics}"
        );
        // A second later the bucket has room again.
        smol::Timer::after(Duration::from_millis(1100)).await;
        let url = server.ws("user=later");
        within("connect", Client::connect(&url))
            .await
            .expect("admitted again");
        drop(held);
    });
}

#[test]
fn a_sigterm_spreads_the_clients_return_over_the_sessions_at_the_admitted_rate() {
    // 20 sessions, a successor admitting 10 a second: the return spreads over 2 s after the
    // hint (the grace, 0 s, and a second more).
    let server = Running::start(&[
        "--memory",
        "--max-new-sessions",
        "10",
        "--new-sessions-burst",
        "20",
        "--shutdown-grace",
        "0s",
    ]);
    smol::block_on(async {
        let mut clients = Vec::new();
        for i in 0..20 {
            let url = server.ws(&format!("user=u{i}"));
            let mut client = within("connect", Client::connect(&url))
                .await
                .expect("connects");
            client.next_of("welcome").await;
            clients.push(client);
        }
        let killed = Command::new("kill")
            .args(["-TERM", &server.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let mut hints = Vec::new();
        for client in &mut clients {
            let notice = within("the shutdown notice", client.next_of("shutdown")).await;
            hints.push(notice["reconnect_ms"].as_u64().expect("reconnect_ms"));
        }
        assert!(hints.iter().all(|h| (1000..=3000).contains(h)), "{hints:?}");
        let (low, high) = (
            hints.iter().min().expect("some"),
            hints.iter().max().expect("some"),
        );
        assert!(
            high - low >= 1000,
            "spread over the window, not half the hint: {hints:?}"
        );
    });
}

#[test]
fn a_stomp_session_admitted_by_its_connect_passcode_takes_one_token() {
    // One new session a second, none in reserve: a STOMP session whose credential comes in
    // `CONNECT` is refused by its handshake's authentication first, then admitted without a
    // credential, then checked at `CONNECT`; it must take one token, not three.
    const SECRET: &str = "storm-secret";
    let server = Running::start(&[
        "--memory",
        "--jwt-secret",
        SECRET,
        "--max-new-sessions",
        "1",
        "--new-sessions-burst",
        "1",
    ]);
    let minted = Command::new(common::BIN)
        .args(["token", "--user", "alice", "--secret", SECRET])
        .output()
        .expect("run roomcast token");
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).expect("UTF-8");
    smol::block_on(async {
        let url = format!("ws://127.0.0.1:{}/stomp", server.addr.port());
        let mut request = url.into_client_request().expect("a request");
        let protocol = HeaderValue::from_static("v12.stomp");
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol);
        let (mut client, _) = within("the handshake", Client::connect_request(request))
            .await
            .expect("admitted with the one token");
        let connect = format!(
            "CONNECT\naccept-version:1.2\nhost:x\npasscode:{}\n\n\0",
            token.trim()
        );
        client.send_text(connect).await;
        let answer = client
            .next_message()
            .await
            .expect("an answer")
            .expect("read");
        let text = answer.into_text().expect("text");
        assert!(text.starts_with("CONNECTED\n"), "{text}");
    });
}
