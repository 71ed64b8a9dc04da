//! What the browser tests need (node, Chromium, npm `playwright-core` in tests/browser), and the
//! one rule for when it is missing: skip loudly, or fail under `ROOMCAST_REQUIRE_BROWSER=1` (CI).

use std::path::{Path, PathBuf};
use std::process::Command;

/// tests/browser, where the node scripts and their `node_modules` live.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// The Chromium to drive: `$CHROMIUM`, else Debian's `/usr/bin/chromium`, if everything the
/// browser tests need is there. `None` means skip: the test `what` is reported skipped, or, with
/// `ROOMCAST_REQUIRE_BROWSER=1`, this panics naming what is missing.
pub fn chromium_or_skip(what: &str) -> Option<PathBuf> {
    let chromium =
        PathBuf::from(std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    let missing = missing_pieces(&chromium);
    if missing.is_empty() {
        return Some(chromium);
    }
    let why = missing.join("; ");
    if std::env::var("ROOMCAST_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!("ROOMCAST_REQUIRE_BROWSER=1 but {what} cannot run: {why}");
    }
    eprintln!("\n!!!! SKIPPING {what}: {why}");
    eprintln!("!!!! set ROOMCAST_REQUIRE_BROWSER=1 to make this a failure\n");
    None
}

/// What the browser tests need and do not have.
fn missing_pieces(chromium: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        missing.push("`node` is not on PATH".to_owned());
    }
    if !chromium.exists() {
        missing.push(format!(
            "no Chromium at {} (apt-get install chromium, or set CHROMIUM)",
            chromium.display()
        ));
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        missing.push(
            "tests/browser/node_modules is missing (run `npm ci` in tests/browser)".to_owned(),
        );
    }
    missing
}
