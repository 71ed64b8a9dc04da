//! RabbitMQ with its Web-STOMP plugin (Debian `rabbitmq-server`), the relay the seeds' Spring
//! applications use, as a peer of roomcast's STOMP: started by the tool in a fresh directory on
//! free loopback ports, its Erlang VM held to one scheduler (`+S 1:1`, one dirty CPU and one
//! dirty I/O scheduler), as roomcast runs one thread; stopped with its `epmd`, the directory
//! removed. Clients speak STOMP 1.2 over WebSocket at `/ws` as `guest`, on `/topic/<room>`
//! (the `amq.topic` exchange).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::procs::{ServerProc, ServerSpec, free_addr};

/// The server script Debian installs (`/usr/sbin/rabbitmq-server` switches to the `rabbitmq`
/// user and its directories; this one runs as the caller, with the directories given).
const PROGRAM: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// The WebSocket path of Web-STOMP, and the `CONNECT` headers it needs: its default virtual
/// host (`host` names one), and its default user.
pub(crate) const PATH: &str = "/ws";
pub(crate) const CONNECT_HEADERS: &str = "host:/\nlogin:guest\npasscode:guest\n";

/// A running RabbitMQ: the server, and what to clean up once it is stopped.
pub(crate) struct RabbitMq {
    pub(crate) server: ServerProc,
    pub(crate) cleanup: Cleanup,
}

/// Stops the `epmd` the node started (a daemon, not the server's child) and removes the
/// directory, once the server is gone.
pub(crate) struct Cleanup {
    dir: PathBuf,
    epmd_port: u16,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // epmd refuses while it still lists the node: it notices the node's end shortly.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let killed = Command::new("epmd")
                .arg("-kill")
                .env("ERL_EPMD_PORT", self.epmd_port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if killed {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts RabbitMQ with Web-STOMP on a free port, as `label`; waits until it accepts.
pub(crate) async fn start(label: &'static str) -> Result<RabbitMq, String> {
    if !Path::new(PROGRAM).exists() {
        return Err(format!(
            "{PROGRAM} not found: apt-get install rabbitmq-server to run RabbitMQ as a peer"
        ));
    }
    let web: SocketAddr = free_addr()?;
    let [amqp, stomp, dist, epmd] = [free_addr()?, free_addr()?, free_addr()?, free_addr()?];
    let dir = std::env::temp_dir().join(format!(
        "roomcast-bench-rabbitmq-{}-{}",
        std::process::id(),
        web.port()
    ));
    let cleanup = Cleanup {
        dir: dir.clone(),
        epmd_port: epmd.port(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = format!(
        "listeners.tcp.default = {amqp}\nstomp.listeners.tcp.1 = {stomp}\n\
         web_stomp.tcp.ip = 127.0.0.1\nweb_stomp.tcp.port = {}\nloopback_users = none\n\
         log.file.level = warning\n",
        web.port()
    );
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("rabbitmq.conf", &config)?;
    write("enabled_plugins", "[rabbitmq_web_stomp].\n")?;
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let env = [
        ("HOME", path("")),
        ("RABBITMQ_CONFIG_FILE", path("rabbitmq")),
        ("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins")),
        ("RABBITMQ_MNESIA_BASE", path("mnesia")),
        ("RABBITMQ_LOG_BASE", path("log")),
        (
            "RABBITMQ_NODENAME",
            format!("bench{}@localhost", web.port()),
        ),
        ("RABBITMQ_DIST_PORT", dist.port().to_string()),
        ("ERL_EPMD_PORT", epmd.port().to_string()),
        (
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "+S 1:1 +SDcpu 1:1 +SDio 1".to_owned(),
        ),
    ];
    let spec = ServerSpec {
        label,
        program: PROGRAM.into(),
        args: Vec::new(),
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        wrapper: Vec::new(),
    };
    // The script's shell stays the child; the Erlang VM below it is the server measured.
    let mut server = ServerProc::start(spec, web).await?;
    server.measure_descendant("beam.smp")?;
    Ok(RabbitMq { server, cleanup })
}
