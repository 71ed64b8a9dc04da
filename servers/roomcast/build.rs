//! Probes for what the demo page's browser test (`tests/demo_browser.rs`) needs, so that on a
//! machine without node, Chromium or `tests/browser/node_modules` it shows as ignored, with what
//! to install, instead of passing without running. The probe is the roomcast-tests crate's
//! (`tests/src/browser.rs`, `std` only), shared with its build script.

use std::path::Path;

#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/src/browser.rs"]
mod browser;

// And for `redis-server`, for the tests of nodes sharing Redis (`tests/redis_nodes.rs`).
#[allow(unreachable_pub)]
#[path = "../../engines/redis/probe.rs"]
mod probe;

fn main() {
    browser::emit_build_cfg(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests"));
    probe::emit_build_cfg();
}
