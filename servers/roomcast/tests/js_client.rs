//! The JavaScript client package (`clients/js`) against `roomcast serve` on 127.0.0.1: its own
//! tests under Node's test runner, with `ws` as the WebSocket (join, publish, presence, the `ref`
//! promises, a dropped connection resumed exactly, direct messages and receipts, the offline
//! queue, the declarations against the exports), then its TypeScript declarations type-checked
//! with `tsc --strict` over a typed use of them. The demo page's test runs the same module in
//! Chromium.
//!
//! Needs node and `clients/js/node_modules` (`npm ci` there: `ws` and `typescript`); gated
//! with the browser tests (`roomcast_browser`), and failing, not skipped, in CI.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Running, run_node};

const KEY: &str = "test-api-key";

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/js")
}

/// Runs `node args...` in the package, within 120 s.
fn node(args: &[&str], env: &[(&str, String)]) {
    let dir = package_dir();
    assert!(
        dir.join("node_modules/ws").is_dir() && dir.join("node_modules/typescript").is_dir(),
        "clients/js/node_modules is missing: run `npm ci` in clients/js (.ci/run does)"
    );
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
    run_node(&dir, &args, &env, Duration::from_secs(120));
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node and clients/js/node_modules (npm ci in clients/js); .ci/run does both"
)]
fn the_package_tests_pass_under_node_against_a_real_server() {
    let server = Running::start(&["--memory", "--api-key", KEY]);
    let env = [
        ("ROOMCAST_URL", format!("http://{}", server.addr)),
        ("ROOMCAST_API_KEY", KEY.to_owned()),
    ];
    node(&["--test", "test/client.test.mjs"], &env);
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node and clients/js/node_modules (npm ci in clients/js); .ci/run does both"
)]
fn the_typescript_declarations_type_check_a_typed_use() {
    node(
        &[
            "node_modules/typescript/bin/tsc",
            "-p",
            "test/tsconfig.json",
        ],
        &[],
    );
}
