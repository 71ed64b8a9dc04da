//! The servers under test as child processes of the bench tool (so their memory and CPU are
//! their own), the binary they run, free ports, `/proc` readings and the open-file limit.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a server process is started with, printed so every run can be repeated by hand.
#[derive(Clone, Debug)]
pub(crate) struct ServerSpec {
    /// `roomcast` or `baseline`.
    pub(crate) label: &'static str,
    /// The executable: the `roomcast` binary, or this one for a baseline.
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// A command the server runs under (`--server-wrapper`), or empty.
    pub(crate) wrapper: Vec<String>,
}

impl ServerSpec {
    /// The command line, as a person would type it (the program by its file name, so that
    /// the line reads the same on every machine).
    pub(crate) fn command_line(&self) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={v} "));
        let wrapper = self.wrapper.iter().map(|word| format!("{word} "));
        let program = self.program.file_name().unwrap_or(self.program.as_os_str());
        format!(
            "{}{}{} {}",
            env.collect::<String>(),
            wrapper.collect::<String>(),
            program.to_string_lossy(),
            self.args.join(" ")
        )
    }
}

/// A running server; killed when dropped, so an error or a panic never leaves one behind.
pub(crate) struct ServerProc {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) spec: ServerSpec,
    log: PathBuf,
    keep_log: bool,
    /// The process measured, when not the child: the one a start script runs (RabbitMQ's
    /// Erlang VM).
    measured: Option<u32>,
}

impl ServerProc {
    /// Starts `spec` and waits until it accepts TCP on `addr`.
    pub(crate) async fn start(spec: ServerSpec, addr: SocketAddr) -> Result<Self, String> {
        let exe = &spec.program;
        let log = std::env::temp_dir().join(format!(
            "roomcast-bench-{}-{}-{}.log",
            std::process::id(),
            spec.label,
            addr.port()
        ));
        let stderr = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = match spec.wrapper.split_first() {
            Some((wrapper, args)) => {
                let mut command = Command::new(wrapper);
                command.args(args).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let child = command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", spec.command_line()))?;
        let mut server = Self {
            child,
            addr,
            spec,
            log,
            keep_log: false,
            measured: None,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "{} exited at start ({status}): {}",
                    server.spec.label,
                    server.log_tail()
                ));
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not accept on {addr} within 15 s",
                    server.spec.label
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process whose memory, CPU time and context switches are the server's.
    pub(crate) fn pid(&self) -> u32 {
        self.measured.unwrap_or_else(|| self.child.id())
    }

    /// Measures the descendant named `name` (`/proc/PID/comm`) rather than the child itself.
    pub(crate) fn measure_descendant(&mut self, name: &str) -> Result<(), String> {
        let found = descendants(self.child.id())
            .into_iter()
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == name)
            })
            .ok_or_else(|| format!("{}: no process {name} below it", self.spec.label))?;
        self.measured = Some(found);
        Ok(())
    }

    /// Resident memory in KiB (`VmRSS` of `/proc/PID/status`).
    pub(crate) fn rss_kib(&self) -> Result<u64, String> {
        let path = format!("/proc/{}/status", self.pid());
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        text.lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("{path}: no VmRSS"))
    }

    /// The most resident memory the process has had, in KiB (`VmHWM`).
    pub(crate) fn peak_rss_kib(&self) -> Result<u64, String> {
        let path = format!("/proc/{}/status", self.pid());
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        text.lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("{path}: no VmHWM"))
    }

    /// Stops the server with SIGTERM, as an operator does, and waits up to `within` for it to
    /// exit.
    pub(crate) fn terminate(&mut self, within: Duration) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("kill -TERM {pid}: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {pid}: {sent}"));
        }
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not exit within {within:?} of SIGTERM",
                    self.spec.label
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// User plus system CPU time so far (`/proc/PID/stat`, in USER_HZ = 100 ticks per second,
    /// which Linux fixes for that interface).
    pub(crate) fn cpu_time(&self) -> Duration {
        let (user, system) = self.cpu_split();
        user + system
    }

    /// User and system CPU time so far, apart: on loopback a write's system time is most of a
    /// delivery's cost, and the same for every server, so the user time says what roomcast adds.
    pub(crate) fn cpu_split(&self) -> (Duration, Duration) {
        cpu_times(&format!("/proc/{}/stat", self.pid()))
    }

    /// Context switches of all the server's threads so far: voluntary (it slept: nothing to do)
    /// and involuntary (another thread took its CPU). Each sleep is a wake-up later.
    pub(crate) fn context_switches(&self) -> (u64, u64) {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid()));
        let mut total = (0, 0);
        for task in tasks.into_iter().flatten().flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let (voluntary, involuntary) = switches(&status);
            total = (total.0 + voluntary, total.1 + involuntary);
        }
        total
    }

    /// The server's log (its stderr).
    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    /// The end of the server's log, for an error message.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join("\n");
        format!("log {}:\n{tail}", self.log.display())
    }

    /// Keeps the log file after the server is stopped, for a run that went wrong; its path.
    pub(crate) fn keep_log(&mut self) -> PathBuf {
        self.keep_log = true;
        self.log.clone()
    }

    /// Warnings and errors the server logged, counted by a short key (the log's message), so a
    /// run can report slow-consumer closes and the like.
    pub(crate) fn log_warnings(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter(|line| line.contains("WARN") || line.contains("ERROR"))
            .filter(|line| !line.contains("development mode") && !line.contains("is open"))
            .map(|line| line.chars().take(200).collect())
            .collect()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // A wrapper that forks (strace, perf record) would leave the server itself running.
        kill_descendants(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_log {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Kills every process below `pid`, the deepest first.
fn kill_descendants(pid: u32) {
    for child in descendants(pid).into_iter().rev() {
        let _ = Command::new("kill")
            .args(["-KILL", &child.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// Every process below `pid` (`/proc/PID/task/*/children`), each before its own children.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
    for task in tasks.into_iter().flatten().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            found.push(child);
            found.extend(descendants(child));
        }
    }
    found
}

/// The load clients' own CPU time: this process's.
pub(crate) fn own_cpu_time() -> Duration {
    let (user, system) = cpu_times("/proc/self/stat");
    user + system
}

/// User and system time of a `/proc/PID/stat`; zero if it cannot be read.
fn cpu_times(path: &str) -> (Duration, Duration) {
    let ticks = std::fs::read_to_string(path).ok().and_then(|text| {
        // The command name may hold spaces: the fields start after its closing parenthesis.
        let fields: Vec<&str> = text.rsplit_once(") ")?.1.split(' ').collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((utime, stime))
    });
    let (user, system) = ticks.unwrap_or((0, 0));
    (
        Duration::from_millis(user * 10),
        Duration::from_millis(system * 10),
    )
}

/// The `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` of a `/proc` status file.
fn switches(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

/// The `roomcast` binary to measure: `given` (`--server`), else `roomcast` in the directory of
/// this executable `own`, where cargo puts both when they are built together. Made absolute,
/// so a `--server-wrapper` that changes directory still finds it. A missing binary is an error
/// that names the command that builds it.
pub(crate) fn server_binary(given: Option<PathBuf>, own: &Path) -> Result<PathBuf, String> {
    let (path, given) = match given {
        Some(path) => (path, true),
        None => (own.with_file_name("roomcast"), false),
    };
    let path = std::path::absolute(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.is_file() {
        return Ok(path);
    }
    if given {
        return Err(format!("--server {}: no such file", path.display()));
    }
    Err(format!(
        "no server binary at {}: build it with `{}`, or pass --server PATH",
        path.display(),
        build_command(own)
    ))
}

/// The command that builds `roomcast` beside `own`: cargo's output directory is named after
/// the profile, `debug` for the default one.
fn build_command(own: &Path) -> &'static str {
    let profile = own.parent().and_then(Path::file_name);
    if profile.is_some_and(|name| name == "debug") {
        "cargo build -p roomcast"
    } else {
        "cargo build --release -p roomcast"
    }
}

/// A port that was free a moment ago: bind port 0, read the port, let it go.
pub(crate) fn free_addr() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener.local_addr().map_err(|e| format!("bind: {e}"))
}

/// The open-file limit after raising the soft limit to the hard one.
pub(crate) struct FdLimit {
    pub(crate) before: u64,
    pub(crate) soft: u64,
    pub(crate) hard: u64,
    pub(crate) refused: Option<String>,
}

/// Raises this process's soft RLIMIT_NOFILE to the hard limit. Children inherit it, so the
/// servers under test get it too.
pub(crate) fn raise_fd_limit() -> FdLimit {
    let (before, hard) = rlimit::Resource::NOFILE.get().unwrap_or((1024, 1024));
    match rlimit::Resource::NOFILE.set(hard, hard) {
        Ok(()) => FdLimit {
            before,
            soft: hard,
            hard,
            refused: None,
        },
        Err(e) => FdLimit {
            before,
            soft: before,
            hard,
            refused: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The children of `pid`'s threads, as the kernel lists them.
    fn children(pid: u32) -> Vec<u32> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc");
        tasks
            .flatten()
            .flat_map(|task| {
                let text =
                    std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                text.split_whitespace()
                    .filter_map(|c| c.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    #[test]
    fn what_a_wrapper_forked_is_killed_with_it() {
        // A wrapper that forks its command and waits, as strace and perf record do.
        let mut wrapper = Command::new("sh")
            .args(["-c", "sleep 60 & wait"])
            .spawn()
            .expect("sh");
        let deadline = Instant::now() + Duration::from_secs(10);
        let forked = loop {
            if let Some(&child) = children(wrapper.id()).first() {
                break child;
            }
            assert!(Instant::now() < deadline, "sh never forked");
            std::thread::sleep(Duration::from_millis(10));
        };
        kill_descendants(wrapper.id());
        // The wrapper's `wait` returns once its child is gone, and it exits.
        let status = loop {
            if let Some(status) = wrapper.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the forked command still runs");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "only the child was killed: {status}");
        assert!(!std::path::Path::new(&format!("/proc/{forked}")).exists());
    }

    #[test]
    fn the_server_binary_is_found_beside_this_one_or_the_error_says_how_to_build_it() {
        let dir = std::env::temp_dir().join(format!("roomcast-bench-procs-{}", std::process::id()));
        for profile in ["release", "debug"] {
            std::fs::create_dir_all(dir.join(profile)).expect("a temporary directory");
        }
        let own = dir.join("release/roomcast-bench");
        let missing = server_binary(None, &own).expect_err("no roomcast yet");
        assert!(
            missing.contains(&format!(
                "no server binary at {}",
                dir.join("release/roomcast").display()
            )) && missing.contains("`cargo build --release -p roomcast`"),
            "{missing}"
        );
        let debug = server_binary(None, &dir.join("debug/roomcast-bench")).expect_err("none");
        assert!(debug.contains("`cargo build -p roomcast`"), "{debug}");

        std::fs::write(dir.join("release/roomcast"), "").expect("a file");
        assert_eq!(server_binary(None, &own), Ok(dir.join("release/roomcast")));
        let given = dir.join("debug/roomcast-old");
        let error = server_binary(Some(given.clone()), &own).expect_err("not there");
        assert_eq!(error, format!("--server {}: no such file", given.display()));
        std::fs::write(&given, "").expect("a file");
        assert_eq!(server_binary(Some(given.clone()), &own), Ok(given));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_command_line_names_its_program_by_file_name() {
        let spec = ServerSpec {
            label: "roomcast",
            program: PathBuf::from("/somewhere/target/release/roomcast"),
            args: vec!["serve".into(), "--listen".into(), "ADDR".into()],
            env: vec![("SMOL_THREADS".into(), "1".into())],
            wrapper: vec!["taskset".into(), "-c".into(), "1".into()],
        };
        assert_eq!(
            spec.command_line(),
            "SMOL_THREADS=1 taskset -c 1 roomcast serve --listen ADDR"
        );
    }

    #[test]
    fn context_switches_are_read_from_a_status_file() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t1777\nnonvoluntary_ctxt_switches:\t61\n";
        assert_eq!(switches(status), (1777, 61));
        assert_eq!(switches("Name:\tx\n"), (0, 0));
        // This thread sleeps, so the kernel's own file counts a voluntary switch.
        std::thread::sleep(Duration::from_millis(2));
        let own = std::fs::read_to_string("/proc/thread-self/status").expect("/proc");
        assert!(switches(&own).0 > 0, "{own}");
    }
}
