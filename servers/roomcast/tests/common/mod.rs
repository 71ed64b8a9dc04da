//! `roomcast serve` as a process on 127.0.0.1, for the tests of this crate.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use roomcast_tests::{Client, within};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_roomcast");

/// A directory of its own for one server of this test process, made empty.
pub(crate) fn fresh_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("roomcast-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A server process, killed when dropped.
pub(crate) struct Running {
    child: Child,
    pub(crate) addr: SocketAddr,
    log: mpsc::Receiver<String>,
    /// The lines read while waiting for the address.
    started: Vec<String>,
}

impl Running {
    /// Starts `roomcast serve` with these extra arguments and waits for its address.
    pub(crate) fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// As [`start`](Self::start), with these environment variables set for the server.
    pub(crate) fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        // A data directory of its own, fresh, unless the test names the storage.
        let data = fresh_dir("serve");
        let storage: Vec<String> = if args
            .iter()
            .any(|a| matches!(*a, "--memory" | "--data-dir" | "--redis"))
        {
            Vec::new()
        } else {
            vec!["--data-dir".into(), data.display().to_string()]
        };
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&storage)
            .args(args)
            .env_remove("ROOMCAST_JWT_SECRET")
            .env_remove("ROOMCAST_API_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start roomcast serve");
        let stderr = child.stderr.take().expect("piped");
        let (lines, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        // Owned by `Running` from here, so a failure below still kills the process.
        let mut running = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            started: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = running
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the server logs its address within 10 s");
            running.started.push(line.clone());
            let rest = line.split("demo page http://").nth(1);
            if let Some(rest) = rest.or_else(|| line.split("demo page https://").nth(1)) {
                let addr = rest.split('/').next().expect("an address");
                running.addr = addr.parse().expect("a socket address");
                return running;
            }
        }
    }

    pub(crate) fn ws(&self, query: &str) -> String {
        format!("ws://{}/ws?{query}", self.addr)
    }

    /// Sends SIGTERM and waits (10 s at most) for the exit; returns the status and the log.
    pub(crate) fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "still running 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let log: Vec<String> = self.log.try_iter().collect();
        (status, log.join("\n"))
    }
}

impl Running {
    /// A server on `dir`, its data directory.
    pub(crate) fn start_in(dir: &Path, args: &[&str]) -> Self {
        let dir = dir.display().to_string();
        let mut all = vec!["--data-dir", dir.as_str()];
        all.extend_from_slice(args);
        Self::start(&all)
    }

    /// SIGKILL: the process ends at once, whatever it was doing.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its process id, for signals.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far.
    pub(crate) fn log(&self) -> Vec<String> {
        let mut lines = self.started.clone();
        lines.extend(self.log.try_iter());
        lines
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket client at `url` (`ws://.../ws?user=...`), welcomed and joined to `room`.
pub(crate) async fn joined(url: &str, room: &str) -> Client {
    let mut client = within("connect", Client::connect(url))
        .await
        .expect("connects");
    client.next_of("welcome").await;
    let join = serde_json::json!({"type": "join", "ref": "j", "room": room});
    client.send_json(join).await;
    client.answer(&serde_json::json!("j")).await;
    client
}

impl Running {
    /// A WebSocket client of `user` on this server, joined to `room`.
    pub(crate) async fn member(&self, user: &str, room: &str) -> Client {
        joined(&self.ws(&format!("user={user}")), room).await
    }
}

/// Runs `node` with `args` in `dir` (and these environment variables) for at most `limit`;
/// returns its stdout, or panics with its output when it fails or runs over.
pub(crate) fn run_node(
    dir: &Path,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
    limit: Duration,
) -> String {
    let mut child = Command::new("node")
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait for node").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("its output");
            panic!(
                "node {args:?} ran over {limit:?}:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("its output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "node {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
