//! The admin dashboard (`/admin`) in headless Chromium against `roomcast serve`: the figures
//! stream in and the charts move while the script publishes, the room browser lists a room, its
//! member and messages and publishes a test message, and the user lookup finds and disconnects
//! a user. The script is `tests/browser/admin.mjs`; the screenshot is kept as
//! `target/admin-screenshot.png`, a CI artifact.
//!
//! Without node, Chromium or `tests/browser/node_modules` the test is ignored, with what to
//! install; CI (`ROOMCAST_REQUIRE_BROWSER=1`) runs it and fails on a missing piece.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Running, run_node};
use roomcast_tests::browser::{browser_dir, chromium};

const KEY: &str = "test-api-key";

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node, Chromium and tests/browser/node_modules: apt-get install chromium nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn the_admin_page_streams_figures_browses_rooms_and_disconnects_users() {
    let chromium = chromium();
    let server = Running::start(&["--memory", "--api-key", KEY]);
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    std::fs::create_dir_all(&target).expect("create target/");
    let screenshot = target.join("admin-screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    let script = browser_dir().join("admin.mjs");
    let base = format!("http://{}", server.addr);
    // The script bounds itself at 60 s.
    let stdout = run_node(
        &browser_dir(),
        &[
            script.as_os_str(),
            base.as_ref(),
            KEY.as_ref(),
            screenshot.as_os_str(),
        ],
        &[("CHROMIUM", chromium.as_os_str())],
        Duration::from_secs(90),
    );
    assert!(stdout.contains("admin: ok"), "{stdout}");
    let size = std::fs::metadata(&screenshot).map_or(0, |m| m.len());
    assert!(size > 10_000, "the screenshot is {size} bytes");
}
