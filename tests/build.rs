//! Probes for what the tests that drive outside programs need, so that on a machine without
//! them those tests show as ignored, with what to install, instead of passing without running:
//!
//! - the browser tests: `roomcast_browser` (see `src/browser.rs`, which this includes);
//! - the Python client test: `roomcast_python` (see `python/probe.rs`, which this includes).

use std::path::Path;

// Compiled here as well as in the library: `std` only.
#[allow(dead_code, unreachable_pub)]
#[path = "src/browser.rs"]
mod browser;

// Shared with the server's build script.
#[allow(unreachable_pub)]
#[path = "python/probe.rs"]
mod python;

fn main() {
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    browser::emit_build_cfg(tests_dir);
    python::emit_build_cfg(tests_dir);
}
