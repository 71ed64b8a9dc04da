//! `roomcast-bench`'s hooks for tools: `--server-wrapper` runs each server under a command and
//! `--before-run` runs a command with the server's process id before each timed run, which is
//! how callgrind counts one run apart from the set-up (docs/performance.md); and how it finds
//! the server it measures.
//!
//! The server is the `roomcast` binary of this workspace. Cargo cannot make a test depend on
//! another package's binary. Under `cargo test --workspace` (the README's command, and CI's)
//! the `roomcast` binary beside `roomcast-bench` is built in the same invocation, for the
//! server's own tests, and is used as it is. When it is missing (`cargo test -p
//! roomcast-bench` on a fresh tree), the first test to need it runs `cargo build -p roomcast`
//! with this test's profile and target directory. It is not rebuilt when present: a build of
//! one package resolves other features than the workspace's test build and would rebuild
//! (and replace) every shared dependency, minutes of a CI run and of the tests' timings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_roomcast-bench");

/// The `roomcast` binary beside `roomcast-bench`, built if it is missing (once per test
/// process).
fn server() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let bench = Path::new(BENCH);
        let profile_dir = bench.parent().expect("the bench's directory");
        let server = profile_dir.join("roomcast");
        if server.is_file() {
            return server;
        }
        let target_dir = profile_dir.parent().expect("the target directory");
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
        build.args(["build", "--quiet", "-p", "roomcast", "--target-dir"]);
        build.arg(target_dir);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "cargo build -p roomcast: {status}");
        assert!(server.is_file(), "{} was built", server.display());
        server
    })
}

/// Runs `roomcast-bench fanout-ws --short --json` with `args` (the server beside the tool
/// unless `args` give `--server`): whether it succeeded, its report, and its standard error.
fn bench(args: &[&str]) -> (bool, Value, String) {
    server();
    let output = Command::new(BENCH)
        .args(["fanout-ws", "--short", "--json"])
        .args(args)
        .output()
        .expect("roomcast-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no JSON line: {stderr}"));
    let report = serde_json::from_str(last).expect("the JSON line");
    (output.status.success(), report, stderr)
}

#[test]
fn every_server_runs_under_the_wrapper_and_each_timed_run_is_announced_with_its_pid() {
    let dir = std::env::temp_dir().join(format!("roomcast-bench-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let pids = dir.join("pids");
    // The pid, and whether that process has the wrapper's variable: it ran under `env`.
    let hook = format!(
        "--before-run=echo $ROOMCAST_BENCH_PID \
         $(tr '\\0' '\\n' < /proc/$ROOMCAST_BENCH_PID/environ | grep -c ROOMCAST_WRAPPED=1) \
         >> {}",
        pids.display()
    );
    let (ok, report, stderr) = bench(&[
        "-c",
        "20",
        "-k",
        "5",
        "--repeats",
        "2",
        "--paced-messages",
        "2",
        // `env` runs the server in its own process, as valgrind and taskset do.
        "--server-wrapper=env ROOMCAST_WRAPPED=1",
        &hook,
    ]);
    assert!(ok, "bench failed: {report}\n{stderr}");
    for (server, program) in [
        ("roomcast_command", "roomcast serve "),
        ("baseline_command", "roomcast-bench baseline ws "),
    ] {
        let command = report["params"][server].as_str().expect("the command");
        let wrapped = format!("env ROOMCAST_WRAPPED=1 {program}");
        assert!(command.contains(&wrapped), "{command}");
    }
    // One paced run and two bursts for each server, each announced with that server's pid.
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(&pids)
        .expect("the hook ran")
        .lines()
    {
        let (pid, wrapped) = line.split_once(' ').expect("a pid and a count");
        assert_eq!(wrapped, "1", "the server ran under the wrapper: {line}");
        *runs.entry(pid.to_owned()).or_default() += 1;
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(runs.len(), 2, "two servers: {runs:?}");
    assert!(runs.values().all(|&n| n == 3), "three runs each: {runs:?}");
}

#[test]
fn a_hook_that_fails_or_outlasts_its_limit_fails_the_run() {
    for (hook, says) in [
        ("--before-run=exit 3", "failed"),
        ("--before-run=sleep 30", "still ran after 300ms"),
    ] {
        // The server by its path this time, the one found beside the tool in the other test;
        // found (or built) before the clock starts.
        let server = format!("--server={}", server().display());
        let started = std::time::Instant::now();
        let (ok, report, _) = bench(&["-c", "5", "--before-run-limit=300ms", hook, &server]);
        assert!(!ok, "{hook}: the run must fail");
        let errors = report["errors"].to_string();
        assert!(errors.contains(says), "{hook}: {errors}");
        let command = report["params"]["roomcast_command"]
            .as_str()
            .expect("the command");
        assert!(
            command.starts_with("SMOL_THREADS=1 roomcast serve "),
            "{command}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{hook}: the hook was not cut off"
        );
    }
}

#[test]
fn the_server_is_the_binary_given_or_the_one_beside_the_tool() {
    // A given path that is not there: the error names it, and nothing is started.
    let missing = std::env::temp_dir().join("roomcast-bench-no-such-server");
    let output = Command::new(BENCH)
        .args(["idle", "-c", "1", "--server"])
        .arg(&missing)
        .output()
        .expect("roomcast-bench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("--server {}: no such file", missing.display())),
        "{stderr}"
    );

    // The tool alone in a release directory: the error says how to build the server.
    let dir = std::env::temp_dir().join(format!("roomcast-bench-alone-{}", std::process::id()));
    let alone = dir.join("release").join("roomcast-bench");
    std::fs::create_dir_all(dir.join("release")).expect("a temporary directory");
    std::fs::copy(BENCH, &alone).expect("a copy of the tool");
    let output = Command::new(&alone)
        .args(["idle", "-c", "1"])
        .output()
        .expect("the copy runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("build it with `cargo build --release -p roomcast`"),
        "{stderr}"
    );
}
