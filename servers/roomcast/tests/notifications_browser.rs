//! The demo page's notification centre in headless Chromium against `roomcast serve`: the bell
//! counts what is unread in the user's outbox (direct messages and notifications), a click marks
//! read through the engine's read mark on every device, the sender's receipt turns to "read",
//! desktop notifications are raised once allowed, and a reload shows the server's count. The
//! script is `tests/browser/notifications.mjs`.
//!
//! Without node, Chromium or `tests/browser/node_modules` the test is ignored, with what to
//! install; CI (`ROOMCAST_REQUIRE_BROWSER=1`) runs it and fails on a missing piece.

mod common;

use std::time::Duration;

use common::{Running, run_node};
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
    let script = browser_dir().join("notifications.mjs");
    let base = format!("http://{}", server.addr);
    // The script bounds itself at 60 s.
    let stdout = run_node(
        &browser_dir(),
        &[script.as_os_str(), base.as_ref(), KEY.as_ref()],
        &[("CHROMIUM", chromium.as_os_str())],
        Duration::from_secs(90),
    );
    assert!(stdout.contains("notifications: ok"), "{stdout}");
}
