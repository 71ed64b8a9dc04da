//! STOMP over WebSocket at `/stomp` against real clients: `@stomp/stompjs` 7 in Node with `ws`
//! (`tests/browser/stomp_node.mjs`).

mod common;

use std::process::Command;

use common::Running;
use roomcast_tests::browser::browser_dir;

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node and tests/browser/node_modules: apt-get install nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn stompjs_connects_subscribes_sends_resumes_and_is_refused_what_roomcast_does_not_do() {
    let server = Running::start(&["--memory"]);
    let url = format!("ws://127.0.0.1:{}/stomp", server.addr.port());
    let output = Command::new("node")
        .arg(browser_dir().join("stomp_node.mjs"))
        .arg(&url)
        .output()
        .expect("run node");
    assert!(output.status.success(), "{output:?}");
    let steps: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
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
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
