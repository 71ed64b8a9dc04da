//! `roomcast bench`'s hooks for tools: `--server-wrapper` runs each server under a command and
//! `--before-run` runs a command with the server's process id before each timed run, which is
//! how callgrind counts one run apart from the set-up (docs/performance.md).

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

/// Runs `roomcast bench fanout-ws --short --json` with `args`: whether it succeeded, its report,
/// and its standard error.
fn bench(args: &[&str]) -> (bool, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(["bench", "fanout-ws", "--short", "--json"])
        .args(args)
        .output()
        .expect("roomcast bench runs");
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
    for server in ["roomcast_command", "baseline_command"] {
        let command = report["params"][server].as_str().expect("the command");
        assert!(
            command.contains("env ROOMCAST_WRAPPED=1 roomcast "),
            "{command}"
        );
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
        let started = std::time::Instant::now();
        let (ok, report, _) = bench(&["-c", "5", "--before-run-limit=300ms", hook]);
        assert!(!ok, "{hook}: the run must fail");
        let errors = report["errors"].to_string();
        assert!(errors.contains(says), "{hook}: {errors}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{hook}: the hook was not cut off"
        );
    }
}
