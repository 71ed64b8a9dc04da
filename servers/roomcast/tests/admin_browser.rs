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
fn the_admin_page_streams_figures_browses_rooms_and_disconnects_users() {
    let chromium = chromium();
    let server = Running::start(&["--memory", "--api-key", KEY]);
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    std::fs::create_dir_all(&target).expect("create target/");
    let screenshot = target.join("admin-screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut child = Command::new("node")
        .arg(browser_dir().join("admin.mjs"))
        .arg(format!("http://{}", server.addr))
        .arg(KEY)
        .arg(&screenshot)
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
            panic!("admin.mjs ran over 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("its output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("admin: ok"),
        "admin.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let size = std::fs::metadata(&screenshot).map_or(0, |m| m.len());
    assert!(size > 10_000, "the screenshot is {size} bytes");
}
