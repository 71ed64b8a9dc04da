//! The demo page's notification centre in headless Chromium against `roomcast serve`: the bell
//! counts what is unread in the user's outbox (direct messages and notifications), a click marks
//! read through the engine's read mark on every device, the sender's receipt turns to "read",
//! desktop notifications are raised once allowed, and a reload shows the server's count. The
//! script is `tests/browser/notifications.mjs`.
//!
//! Without node, Chromium or `tests/browser/node_modules` the test is ignored, with what to
//! install; CI (`ROOMCAST_REQUIRE_BROWSER=1`) runs it and fails on a missing piece.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Running;
use roomcast_tests::browser::{browser_dir, chromium};

const KEY: &str = "test-api-key";

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node, Chromium and tests/browser/node_modules: apt-get install chromium nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn the_bell_counts_unread_and_a_click_marks_read_with_a_receipt_to_the_sender() {
    let chromium = chromium();
    let server = Running::start(&["--memory", "--api-key", KEY]);
    let mut child = Command::new("node")
        .arg(browser_dir().join("notifications.mjs"))
        .arg(format!("http://{}", server.addr))
        .arg(KEY)
        .current_dir(browser_dir())
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    // The script bounds itself at 60 s; this bounds it too.
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("notifications.mjs ran over 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("its output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("notifications: ok"),
        "notifications.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
