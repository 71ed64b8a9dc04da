//! What the browser tests need (node, Chromium, npm `playwright-core` in tests/browser), and the
//! one rule for when it is missing: the test is ignored, with what to install, never passed.
//!
//! The probe runs twice. At build time, the build scripts of this crate and of the `roomcast`
//! server (whose `build.rs` files include this file, so it uses `std` alone) call
//! [`emit_build_cfg`]: with everything present, or with `ROOMCAST_REQUIRE_BROWSER=1` (CI), they
//! set the cfg `roomcast_browser`, and a browser test is marked
//! `#[cfg_attr(not(roomcast_browser), ignore = "...")]`. When a test runs, [`chromium`] checks
//! again and fails naming what is missing, so CI, which requires the tests, fails on a missing
//! piece instead of skipping it.

use std::path::{Path, PathBuf};

/// The cfg a build script sets when the browser tests can run (or are required to).
pub const CFG: &str = "roomcast_browser";
/// Set to `1`, the browser tests run whatever the build found, and fail on a missing piece.
pub const REQUIRE: &str = "ROOMCAST_REQUIRE_BROWSER";
/// The Chromium to drive, instead of Debian's `/usr/bin/chromium`.
pub const CHROMIUM: &str = "CHROMIUM";

/// tests/browser, where the node scripts and their `node_modules` live.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// The Chromium to drive: `$CHROMIUM`, else Debian's `/usr/bin/chromium`.
///
/// # Panics
/// If anything the browser tests need is missing, naming it and how to install it.
pub fn chromium() -> PathBuf {
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let missing = missing_pieces(tests_dir);
    assert!(
        missing.is_empty(),
        "a browser test cannot run: {}",
        missing.join("; ")
    );
    chromium_path()
}

/// For a build script of a package with browser tests: declares the cfg [`CFG`], sets it when
/// the tests can run or `ROOMCAST_REQUIRE_BROWSER=1`, and names what to watch, so the probe runs
/// again when a piece is installed. `tests_dir` is the roomcast-tests package (`tests/`).
///
/// Only paths that exist are watched: cargo reruns a build script on every build while a
/// watched path is missing, and rebuilds its package each time. So a missing piece is watched
/// through the directory it would appear in.
pub fn emit_build_cfg(tests_dir: &Path) {
    println!("cargo::rustc-check-cfg=cfg({CFG})");
    println!("cargo::rerun-if-env-changed={REQUIRE}");
    println!("cargo::rerun-if-env-changed={CHROMIUM}");
    for path in watched(tests_dir) {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    let required = std::env::var(REQUIRE).as_deref() == Ok("1");
    if required || missing_pieces(tests_dir).is_empty() {
        println!("cargo::rustc-cfg={CFG}");
    }
}

/// What the browser tests need and do not have, each with how to get it.
fn missing_pieces(tests_dir: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if on_path("node").is_none() {
        missing.push("`node` is not on PATH (apt-get install nodejs npm)".to_owned());
    }
    let chromium = chromium_path();
    if !chromium.exists() {
        missing.push(format!(
            "no Chromium at {} (apt-get install chromium, or set CHROMIUM)",
            chromium.display()
        ));
    }
    if !playwright(tests_dir).exists() {
        missing.push(
            "tests/browser/node_modules is missing (run `npm ci` in tests/browser)".to_owned(),
        );
    }
    missing
}

/// The paths whose change may change [`missing_pieces`]: each piece where it is, or the
/// directory it would appear in.
fn watched(tests_dir: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    match on_path("node") {
        Some(node) => paths.push(node),
        None => paths.extend(path_dirs().filter(|dir| dir.is_dir())),
    }
    let chromium = chromium_path();
    if chromium.exists() {
        paths.push(chromium);
    } else if let Some(dir) = chromium.parent().filter(|dir| dir.is_dir()) {
        paths.push(dir.to_owned());
    }
    let playwright = playwright(tests_dir);
    if playwright.exists() {
        paths.push(playwright);
    } else {
        paths.push(tests_dir.join("browser"));
    }
    paths
}

fn chromium_path() -> PathBuf {
    PathBuf::from(std::env::var_os(CHROMIUM).unwrap_or_else(|| "/usr/bin/chromium".into()))
}

/// A file of the npm package, present once `npm ci` has run.
fn playwright(tests_dir: &Path) -> PathBuf {
    tests_dir.join("browser/node_modules/playwright-core/package.json")
}

/// The first `name` in a directory of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    path_dirs()
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn path_dirs() -> impl Iterator<Item = PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).collect::<Vec<_>>().into_iter()
}
