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
        let (port, dir) = fresh("redis");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = spawn(program, addr, &dir, args);
        Self { child, addr, dir }
    }

    /// Starts `program` serving TLS only, with this certificate and key (PEM) and clients not
    /// asked for theirs; `ca` is written beside them for a client to trust. Waits as
    /// [`start`](Self::start).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_tls(program: &str, cert: &str, key: &str, ca: &str) -> Self {
        let (port, dir) = fresh("redis");
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("a PEM file");
            path.display().to_string()
        };
        let (cert, key, ca) = (
            file("server.crt", cert),
            file("server.key", key),
            file("ca.crt", ca),
        );
        let port_text = port.to_string();
        let args = [
            "--port",
            "0",
            "--tls-port",
            &port_text,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ];
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = spawn(program, addr, &dir, &args);
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

/// A free loopback port, and a fresh directory named after it.
fn fresh(what: &str) -> (u16, PathBuf) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let dir = std::env::temp_dir().join(format!("roomcast-{what}-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a fresh directory");
    (port, dir)
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

/// A `redis-sentinel` watching one master as `name`, on a free loopback port with a fresh
/// directory (its config file is written there: Sentinel rewrites it); killed when dropped.
pub struct RedisSentinel {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl RedisSentinel {
    /// Starts Sentinel next to `server` (its `redis-sentinel`, else `server --sentinel`),
    /// watching `master` with a quorum of 1 and a down-after of 1 s.
    ///
    /// # Panics
    /// If it cannot be started or does not listen in time.
    pub fn start(server: &str, master: SocketAddr, name: &str) -> Self {
        let (port, dir) = fresh("sentinel");
        let config = dir.join("sentinel.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor {name} {} {} 1\n\
             sentinel down-after-milliseconds {name} 1000\n\
             sentinel failover-timeout {name} 5000\n",
            dir.display(),
            master.ip(),
            master.port()
        );
        std::fs::write(&config, text).expect("the sentinel's config");
        let sentinel = Path::new(server).with_file_name("redis-sentinel");
        let mut command = if sentinel.exists() {
            Command::new(sentinel)
        } else {
            Command::new(server)
        };
        command.arg(&config);
        if !Path::new(server).with_file_name("redis-sentinel").exists() {
            command.arg("--sentinel");
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-sentinel: {e} (apt-get install redis-sentinel)"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "sentinel did not listen in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, addr, dir }
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends one inline command (`SENTINEL FAILOVER main`) to the server at `addr` and returns
/// its raw RESP reply, read until the server is quiet for 100 ms (2 s at most).
///
/// # Panics
/// If the server cannot be reached.
pub fn command(addr: SocketAddr, line: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .expect("sends");
    let mut reply = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 4096];
    loop {
        let wait = if reply.is_empty() {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(100)
        };
        if wait.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(wait)).expect("a timeout");
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

/// A Redis Cluster of `redis-server`s on loopback ports, each a master with a fresh directory,
/// its slots assigned by `redis-cli --cluster create`; stopped when dropped.
pub struct RedisCluster {
    /// The masters.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes of `server` and makes them one cluster, ready (every node's
    /// `cluster_state:ok`) within 20 s.
    ///
    /// # Panics
    /// If a node cannot be started, `redis-cli` is missing, or the cluster is not ready in time.
    pub fn start(server: &str, masters: usize) -> Self {
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| {
                RedisServer::start(
                    server,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let cli = Path::new(server).with_file_name("redis-cli");
        let cli = if cli.exists() {
            cli
        } else {
            PathBuf::from("redis-cli")
        };
        let status = Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|node| node.addr.to_string()))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{}: {e} (apt-get install redis-tools)", cli.display()));
        assert!(status.success(), "redis-cli --cluster create: {status}");
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            while !command(node.addr, "CLUSTER INFO").contains("cluster_state:ok") {
                assert!(
                    Instant::now() < deadline,
                    "the cluster was not ready in 20 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { nodes }
    }

    /// `redis+cluster://` and every node.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| n.addr.to_string()).collect();
        format!("redis+cluster://{}/", nodes.join(","))
    }
}
