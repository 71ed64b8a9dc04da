//! The demo page (`assets/index.html` with `clients/js/roomcast.js`) in headless Chromium, against
//! the real `roomcast serve` binary: `tests/browser/demo.mjs` drives two pages (presence, typing,
//! chat, a direct message with its receipt, notifications, a network drop) while this test owns
//! the server: it starts it on a free port, and on the script's request sends SIGTERM, checks
//! that the process drains and exits 0, and starts a new one on the same port.
//!
//! Without node, Chromium or `tests/browser/node_modules` the test is ignored, with what to
//! install (this crate's `build.rs` probes for them); `ROOMCAST_REQUIRE_BROWSER=1` runs it
//! anyway, so anything missing fails it (for CI).
//!
//! The script and this test talk over the script's stdio: it writes `@@sigterm`, `@@wait-exit`,
//! `@@start` or `@@done` on a line of its stdout, and this test answers `ok ...` or `fail ...` on
//! its stdin. The script writes its progress to stderr, shown with `--nocapture` or on failure.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use roomcast_tests::browser::{browser_dir, chromium};

/// The whole browser run, whatever hangs.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the server may take to start answering, and to exit after SIGTERM.
const SERVER_TIMEOUT: Duration = Duration::from_secs(10);
/// `--shutdown-grace` of the server: how long clients keep the connection after the notice.
const SHUTDOWN_GRACE: &str = "1s";

/// The data directory of this test run's servers: made empty once, kept across the restart.
fn data_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("roomcast-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    })
    .clone()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// One `roomcast serve` process, killed when dropped; its log goes to a file.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(port: u16, generation: u32) -> Server {
        // The artifacts go to the workspace's target/, which a CARGO_TARGET_DIR elsewhere
        // leaves uncreated.
        std::fs::create_dir_all(workspace_root().join("target")).expect("create target/");
        let log = workspace_root().join(format!("target/demo-server-{generation}.log"));
        let file = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            // Each test run stores in a directory of its own, kept across the restart.
            .args(["--data-dir", &data_dir().display().to_string()])
            .args(["--shutdown-grace", SHUTDOWN_GRACE])
            .args(["--log", "info"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start roomcast serve");
        let mut server = Server { child, log };
        server.wait_healthy(port);
        server
    }

    /// Polls `/healthz` until it answers 200.
    fn wait_healthy(&mut self, port: u16) {
        let deadline = Instant::now() + SERVER_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                panic!(
                    "roomcast serve exited at start ({status}):\n{}",
                    self.log_text()
                );
            }
            if healthz(port).is_some_and(|status| status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "roomcast serve did not answer /healthz on port {port} within {SERVER_TIMEOUT:?}:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn sigterm(&self) -> Result<(), String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("run kill: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -TERM failed: {status}"))
        }
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of `GET /healthz`, if the server answers at all.
fn healthz(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split(' ').nth(1)?.parse().ok()
}

fn answer(stdin: &mut ChildStdin, line: &str) {
    // The script may have died already; its exit status tells why.
    let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
}

/// Kills the node script when dropped (on a panic of this test).
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node, Chromium and tests/browser/node_modules: apt-get install chromium nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn demo_page_chats_resumes_and_survives_a_restart() {
    let chromium = chromium();

    let port = free_port();
    let mut generation = 1;
    let mut server = Server::start(port, generation);
    let url = format!("http://127.0.0.1:{port}");
    let screenshot = workspace_root().join("target/demo-screenshot.png");
    let _ = std::fs::remove_file(&screenshot);

    let mut script = Script(
        Command::new("node")
            .arg(browser_dir().join("demo.mjs"))
            .arg(&url)
            .arg(&screenshot)
            .env("CHROMIUM", &chromium)
            .current_dir(browser_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run node"),
    );
    let mut stdin = script.0.stdin.take().expect("the script's stdin");

    // The script's stderr: shown as it comes (captured by the test harness) and kept for failures.
    let stderr_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = script.0.stderr.take().expect("the script's stderr");
    let kept = stderr_lines.clone();
    let stderr_thread = thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            kept.lock().unwrap().push(line);
        }
    });
    let (tx, rx) = mpsc::channel();
    let stdout = script.0.stdout.take().expect("the script's stdout");
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let script_failed = |why: &str| -> ! {
        thread::sleep(Duration::from_millis(300)); // the rest of its stderr
        let stderr = stderr_lines.lock().unwrap().join("\n");
        let logs = workspace_root().join("target/demo-server-*.log");
        panic!(
            "the demo browser run failed: {why}\n--- its output:\n{stderr}\n--- server logs: {}",
            logs.display()
        );
    };

    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut done = false;
    let mut restarted = false;
    let mut drain_checked = false;
    while !done {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                script_failed(&format!("no end within {RUN_TIMEOUT:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => break, // it exited; its status says how
        };
        match line.trim() {
            "@@sigterm" => match server.sigterm() {
                Ok(()) => answer(&mut stdin, "ok SIGTERM sent"),
                Err(e) => answer(&mut stdin, &format!("fail {e}")),
            },
            "@@wait-exit" => match server.wait_exit(SERVER_TIMEOUT) {
                Some(status) if status.success() => {
                    let log = server.log_text();
                    drain_checked = log.contains("drained: every session closed");
                    answer(&mut stdin, &format!("ok exited with {status}"));
                }
                Some(status) => {
                    answer(&mut stdin, &format!("fail the server exited with {status}"));
                    script_failed(&format!(
                        "after SIGTERM the server exited with {status}, not 0:\n{}",
                        server.log_text()
                    ));
                }
                None => {
                    answer(&mut stdin, "fail the server did not exit");
                    script_failed(&format!(
                        "the server did not exit within {SERVER_TIMEOUT:?} of SIGTERM:\n{}",
                        server.log_text()
                    ));
                }
            },
            "@@start" => {
                generation += 1;
                server = Server::start(port, generation);
                restarted = true;
                answer(&mut stdin, &format!("ok serving again on port {port}"));
            }
            "@@done" => done = true,
            other => eprintln!("demo stdout: {other}"),
        }
    }

    let status = loop {
        if let Some(status) = script.0.try_wait().expect("poll node") {
            break status;
        }
        if Instant::now() >= deadline {
            script_failed("the script did not exit");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = stderr_thread.join();
    if !status.success() || !done {
        script_failed(&format!("node exited with {status}"));
    }
    assert!(restarted, "the scenario never restarted the server");
    assert!(
        drain_checked,
        "the first server exited 0 but did not log that every session drained"
    );
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
    eprintln!("demo screenshot: {}", screenshot.display());
    drop(server);
}
