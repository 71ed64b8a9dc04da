//! Nothing leaks over many connections.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roomcast_core::hub::{HistoryLimit, HubConfig};
use roomcast_hyper::Options;
use roomcast_tests::{Flavor, Server, within};
use serde_json::json;

use crate::common::{join, ms, request};

/// Set in the child process that runs the cycles alone.
const LEAK_CHILD: &str = "ROOMCAST_WS_LEAK_CHILD";

const LEAK_TEST: &str = "nothing_leaks_over_1000_connections";

const BATCH: usize = 50;

/// One client's life: connect, join a room, publish once, close.
async fn cycle(server: Arc<Server>, n: usize) {
    let mut client = server.client(&format!("u{n}")).await;
    join(&mut client, &format!("r{}", n % 10)).await;
    let reply = request(
        &mut client,
        json!({"type": "publish", "ref": "p", "room": format!("r{}", n % 10), "data": n}),
    )
    .await;
    assert_eq!(reply["type"], "reply", "{reply}");
    client.close_and_wait().await;
}

/// Clients `range`, `BATCH` at a time, concurrently within a batch.
async fn cycles(server: &Arc<Server>, range: std::ops::Range<usize>) {
    let starts: Vec<usize> = range.clone().step_by(BATCH).collect();
    for start in starts {
        let tasks: Vec<_> = (start..(start + BATCH).min(range.end))
            .map(|n| smol::spawn(cycle(Arc::clone(server), n)))
            .collect();
        within("a batch of cycles", async {
            for task in tasks {
                task.await;
            }
        })
        .await;
    }
}

/// Waits until the hub holds nothing: no session, room, user or stored message.
async fn settled(server: &Server) {
    server
        .wait_for_stats("the hub empties", |s| {
            s.sessions == 0 && s.rooms == 0 && s.users == 0 && s.stored_messages == 0
        })
        .await;
}

/// The cycles, in the child process: 100 to warm up, then 1,000 measured. Presence grace, room
/// history and outbox history (for which offline users are remembered) are short so that the
/// hub must end up empty.
async fn leak_cycles(flavor: Flavor) {
    let config = HubConfig {
        presence_grace: ms(50),
        room_history: HistoryLimit {
            max_messages: 1000,
            max_bytes: 1 << 20,
            max_age: ms(200),
        },
        outbox_history: HistoryLimit {
            max_messages: 1000,
            max_bytes: 1 << 20,
            max_age: ms(200),
        },
        // The engine drops what aged out at its sweep: often, so the hub empties soon.
        expire_every: ms(100),
        ..HubConfig::default()
    };
    let server = Arc::new(Server::start(flavor, config, Options::default(), 64).await);
    cycles(&server, 0..100).await;
    settled(&server).await;
    let before = rss_kib();
    let started = Instant::now();
    cycles(&server, 100..1100).await;
    let took = started.elapsed();
    settled(&server).await;
    let after = rss_kib();
    let grown = after.saturating_sub(before);
    eprintln!(
        "leak check: 1000 cycles in {took:?}; VmRSS before {before} KiB, after {after} KiB, \
         grown {grown} KiB ({} bytes per cycle)",
        grown * 1024 / 1000
    );
    assert!(grown < 8 * 1024, "RSS grew by {grown} KiB over 1000 cycles");
}

/// The process's resident set size, in KiB (`VmRSS` of `/proc/self/status`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// 1,000 connect/join/publish/disconnect cycles leave the hub empty and the RSS about where it
/// was. Run in a child process of this test binary, alone, so that the other tests' servers and
/// buffers (the slow consumer's megabytes) do not move the figures.
pub(crate) fn nothing_leaks_over_1000_connections(flavor: Flavor) {
    if std::env::var_os(LEAK_CHILD).is_some() {
        smol::block_on(leak_cycles(flavor));
        return;
    }
    let name = match flavor {
        Flavor::Smol => format!("on_smol::{LEAK_TEST}"),
        Flavor::Tokio => format!("on_tokio::{LEAK_TEST}"),
    };
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(LEAK_CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the leak check in a child process");
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let limit = Duration::from_secs(60);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the leak check took over {limit:?}");
        }
        std::thread::sleep(ms(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    eprint!("{stderr}");
    assert!(
        status.success(),
        "the leak check failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("leak check:"),
        "the child ran no leak check:\n{stdout}\n{stderr}"
    );
}
