//! STOMP and SockJS against real clients: `@stomp/stompjs` 7 in Node with `ws`
//! (`stomp_node.mjs`), sockjs-client on each of its transports and a room shared by every kind of
//! client, both in Chromium (`sockjs_transports.mjs`, `mixed_room.mjs`).

mod common;

use std::process::Command;

use common::{BIN, Running};
use roomcast_tests::browser::browser_dir;

/// Runs `stomp_node.mjs` with `args`: the steps it passed.
fn node(args: &[&str]) -> serde_json::Value {
    run(
        Command::new("node").arg(browser_dir().join("stomp_node.mjs")),
        args,
    )
}

/// Runs `tests/browser/{name}`, a script that drives Chromium, with `args`.
fn script(name: &str, args: &[&str]) -> serde_json::Value {
    let mut command = Command::new("node");
    command
        .arg(browser_dir().join(name))
        .env("CHROMIUM", roomcast_tests::browser::chromium());
    run(&mut command, args)
}

/// Runs `command` with `args`: the JSON line it printed.
fn run(command: &mut Command, args: &[&str]) -> serde_json::Value {
    let output = command.args(args).output().expect("run node");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node and tests/browser/node_modules: apt-get install nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn stompjs_connects_subscribes_sends_resumes_and_is_refused_what_roomcast_does_not_do() {
    let server = Running::start(&["--memory"]);
    let url = format!("ws://127.0.0.1:{}/stomp", server.addr.port());
    let steps = node(&[&url]);
    assert_eq!(
        steps,
        serde_json::json!([
            "connect",
            "subscribe",
            "send with a receipt",
            "message",
            "direct to a user queue",
            "resume after a disconnect",
            "error on what roomcast refuses",
            "disconnect"
        ]),
    );
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node and tests/browser/node_modules: apt-get install nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn stompjs_heart_beats_kept_up_hold_the_connection_and_missed_ones_close_it() {
    let server = Running::start(&["--memory", "--ping-interval", "1s", "--ping-timeout", "1s"]);
    let url = format!("ws://127.0.0.1:{}/stomp", server.addr.port());
    let steps = node(&[&url, "heartbeats"]);
    assert_eq!(
        steps,
        serde_json::json!(["heart-beats kept up", "heart-beats missed"])
    );
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node and tests/browser/node_modules: apt-get install nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn a_token_in_connects_passcode_admits_when_the_url_carries_none() {
    const SECRET: &str = "stomp-secret";
    let server = Running::start(&["--memory", "--jwt-secret", SECRET]);
    let minted = Command::new(BIN)
        .args(["token", "--user", "alice", "--secret", SECRET])
        .output()
        .expect("run roomcast token");
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).expect("UTF-8");
    let url = format!("ws://127.0.0.1:{}/stomp", server.addr.port());
    let steps = node(&[&url, "passcode", token.trim()]);
    assert_eq!(
        steps,
        serde_json::json!(["connect with a passcode", "refused with a wrong passcode"])
    );
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node, Chromium and tests/browser/node_modules: apt-get install chromium nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn sockjs_client_carries_stomp_and_roomcast_v1_in_chromium_over_each_transport() {
    let server = Running::start(&["--memory"]);
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let results = script("sockjs_transports.mjs", &[base.as_str()]);
    for transport in ["websocket", "xhr-streaming", "xhr-polling", "eventsource"] {
        let result = &results[transport];
        assert_eq!(
            result["stomp"]["steps"],
            serde_json::json!([
                "connect over SockJS",
                "subscribe",
                "send and receive",
                "direct"
            ]),
            "STOMP over {transport}: {result}"
        );
        assert_eq!(
            result["v1"]["steps"],
            serde_json::json!(["welcome", "join", "publish", "ping"]),
            "roomcast.v1 over {transport}: {result}"
        );
        for carried in ["stomp", "v1"] {
            assert_eq!(
                result[carried]["transports"],
                serde_json::json!([transport, transport]),
                "{carried}: the transport forced is the one used"
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node, Chromium and tests/browser/node_modules: apt-get install chromium nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn stomp_sockjs_v1_sse_and_long_poll_see_one_room_alike_across_a_cut_and_a_resume() {
    const KEY: &str = "mixed-room-key";
    let server = Running::start(&["--memory", "--api-key", KEY]);
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let result = script("mixed_room.mjs", &[base.as_str(), KEY]);
    let published = &result["published"];
    assert_eq!(published.as_array().map(Vec::len), Some(12), "{result}");
    for client in ["stomp", "sockjs", "websocket", "sse", "poll"] {
        assert_eq!(
            &result["seen"][client], published,
            "{client}: every message, in order, each once"
        );
        assert_eq!(
            result["recovered"][client], true,
            "{client}'s resume is whole: {result}"
        );
    }
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node, Chromium and tests/browser/node_modules: apt-get install chromium nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn a_spring_chat_and_notification_client_ported_to_roomcast_run_in_chromium() {
    const KEY: &str = "stomp-apps-key";
    let server = Running::start(&["--memory", "--api-key", KEY]);
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let steps = script("stomp_apps.mjs", &[base.as_str(), KEY]);
    assert_eq!(
        steps,
        serde_json::json!([
            "join",
            "typing",
            "chat",
            "private",
            "leave",
            "notifications sent while away arrive",
            "marked read, then only the unread after a reconnect",
            "a live notification"
        ])
    );
}
