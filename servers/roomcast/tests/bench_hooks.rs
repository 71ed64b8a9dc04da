//! `roomcast bench`'s hooks for tools: `--server-wrapper` runs each server under a command and
//! `--before-run` runs a command with the server's process id before each timed run, which is
//! how callgrind counts one run apart from the set-up (docs/performance.md).

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

#[test]
fn every_server_runs_under_the_wrapper_and_each_timed_run_is_announced_with_its_pid() {
    let dir = std::env::temp_dir().join(format!("roomcast-bench-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let pids = dir.join("pids");
    let output = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args([
            "bench",
            "fanout-ws",
            "--short",
            "--json",
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
        ])
        // The pid, and whether that process has the wrapper's variable: it ran under `env`.
        .arg(format!(
            "--before-run=echo $ROOMCAST_BENCH_PID \
             $(tr '\\0' '\\n' < /proc/$ROOMCAST_BENCH_PID/environ | grep -c ROOMCAST_WRAPPED=1) \
             >> {}",
            pids.display()
        ))
        .output()
        .expect("roomcast bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_str(stdout.lines().last().expect("a JSON line")).expect("the JSON line");
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
        let output = Command::new(env!("CARGO_BIN_EXE_roomcast"))
            .args([
                "bench",
                "fanout-ws",
                "--short",
                "--json",
                "-c",
                "5",
                "--before-run-limit=300ms",
                hook,
            ])
            .output()
            .expect("roomcast bench runs");
        assert!(!output.status.success(), "{hook}: the run must fail");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report: Value = serde_json::from_str(stdout.lines().last().expect("a JSON line"))
            .expect("the JSON line");
        let errors = report["errors"].to_string();
        assert!(errors.contains(says), "{hook}: {errors}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{hook}: the hook was not cut off"
        );
    }
}
