//! A `redis-server` for one test: on a free loopback port, in a fresh directory, without
//! persistence unless asked; killed (and its directory removed) when dropped. The program is
//! the one the build script of the test's crate found (`ROOMCAST_TEST_REDIS_SERVER`, see
//! `engines/redis/probe.rs`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts `program` with these extra arguments (`--appendonly yes`, ...) and waits (10 s
    /// at most) until it accepts connections.
    ///
    /// # Panics
    /// If it cannot be started or does not listen in time.
    pub fn start(program: &str, args: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("roomcast-redis-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a fresh directory");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = spawn(program, addr, &dir, args);
        Self { child, addr, dir }
    }

    /// Its URL, `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Stops it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and directory, with these extra arguments (after a
    /// [`kill`](Self::kill), or killing it first).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn restart(&mut self, program: &str, args: &[&str]) {
        self.kill();
        self.child = spawn(program, self.addr, &self.dir, args);
    }
}

/// Starts the server and waits until it listens.
fn spawn(program: &str, addr: SocketAddr, dir: &Path, args: &[&str]) -> Child {
    let child = Command::new(program)
        .args(["--port", &addr.port().to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} (apt-get install redis-server)"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not listen in 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
