//! Probes for what the tests that drive outside programs need, so that on a machine without
//! them those tests show as ignored, with what to install, instead of passing without running:
//!
//! - the browser tests: `roomcast_browser` (see `src/browser.rs`, which this includes);
//! - the Python client test: `roomcast_python` when its interpreter is there, or with
//!   `ROOMCAST_REQUIRE_PYTHON=1` (CI), which runs it whatever the probe found, so a missing
//!   interpreter fails there. The interpreter is `$ROOMCAST_PYTHON`, else the venv
//!   `tests/python/.venv` that `.ci/run` makes; its path reaches the test as
//!   `ROOMCAST_TEST_PYTHON`.

use std::path::{Path, PathBuf};

// Compiled here as well as in the library: `std` only.
#[allow(dead_code, unreachable_pub)]
#[path = "src/browser.rs"]
mod browser;

fn main() {
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    browser::emit_build_cfg(tests_dir);

    println!("cargo::rustc-check-cfg=cfg(roomcast_python)");
    println!("cargo::rerun-if-env-changed=ROOMCAST_PYTHON");
    println!("cargo::rerun-if-env-changed=ROOMCAST_REQUIRE_PYTHON");
    let python = std::env::var_os("ROOMCAST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| tests_dir.join("python/.venv/bin/python"));
    println!("cargo::rustc-env=ROOMCAST_TEST_PYTHON={}", python.display());
    // Only a path that exists is watched (a missing one would rerun this on every build): the
    // interpreter, or the directory its venv would appear in.
    let watched = if python.exists() {
        Some(python.clone())
    } else {
        python
            .ancestors()
            .skip(1)
            .find(|dir| dir.is_dir())
            .map(Path::to_owned)
    };
    if let Some(path) = watched {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    let required = std::env::var("ROOMCAST_REQUIRE_PYTHON").as_deref() == Ok("1");
    if required || python.exists() {
        println!("cargo::rustc-cfg=roomcast_python");
    }
}
