//! The roomcast protocol driven from another language: one scenario (tests/python/scenario.py)
//! runs against a server on 127.0.0.1, with two PyPI clients on the server's one port:
//!
//! - `websockets` on `/ws`: joins, presence, a publish relayed unchanged, a direct message, a
//!   malformed frame answered `bad_frame`;
//! - `httpx` on `/events`, read as a stream by a small WHATWG SSE parser of the script's own:
//!   `retry: 3000` and the `open` event first, room messages published over WebSocket arriving
//!   in order, each under a new `id:` (the cursor), then a resume with `Last-Event-ID` (and with
//!   `?lastEventId=`) whose `streams` event says `recovered` with the right `replayed`, followed
//!   by exactly the missed messages;
//! - `httpx` on `/poll`: a starting cursor, exactly the messages after it, a poll that waits and
//!   is answered by the next message well before its timeout, and 400 for a bad cursor;
//! - `/events` without `?user=`: 401 with a JSON `unauthorized` error.
//!
//! The script gets the `ws://` address and derives the `http://` one from it. Every wait in it is
//! bounded, the whole within 20 s; this test also gives up on it after [`DEADLINE`].
//!
//! The interpreter is `$ROOMCAST_PYTHON`, else the venv `tests/python/.venv` (made by `.ci/run`
//! from tests/python/requirements.txt), as this crate's `build.rs` found it. Without it the test
//! is ignored, with how to make the venv; `ROOMCAST_REQUIRE_PYTHON=1` runs it anyway, so a
//! missing interpreter fails it (for CI).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use std::sync::Arc;

use roomcast_core::access::{Namespace, Namespaces};
use roomcast_core::hub::HubConfig;
use roomcast_hyper::Options;
use roomcast_tests::Server;

/// How long the script may run before it is killed and the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// The interpreter the build script settled on.
///
/// # Panics
/// If it is not there, naming it.
fn python() -> PathBuf {
    let python = PathBuf::from(env!("ROOMCAST_TEST_PYTHON"));
    assert!(
        python.exists(),
        "no Python interpreter at {}: make the venv (python3 -m venv tests/python/.venv && \
         tests/python/.venv/bin/pip install -r tests/python/requirements.txt) or set ROOMCAST_PYTHON",
        python.display()
    );
    python
}

/// Reads a child's pipe to the end on a thread of its own, so neither pipe can fill and block it.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error leaves what was read; the exit status tells the rest.
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[test]
#[cfg_attr(
    not(roomcast_python),
    ignore = "needs the venv tests/python/.venv: python3 -m venv tests/python/.venv && tests/python/.venv/bin/pip install -r tests/python/requirements.txt; .ci/run does it"
)]
fn python_websockets_and_httpx_clients_run_the_scenario() {
    let server = smol::block_on(Server::default(roomcast_tests::Flavor::Smol));
    let stdout = run_script("python/scenario.py", &format!("ws://{}", server.addr));
    assert!(
        stdout.lines().any(|line| line == "scenario: ok"),
        "no final `scenario: ok`:\n{stdout}"
    );
}

/// Runs the script at `script` (under this crate) with `url`, within [`DEADLINE`]; its stdout.
///
/// # Panics
/// If it fails or runs over, with what it printed.
fn run_script(script: &str, url: &str) -> String {
    let python = python();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script);
    // The server runs on smol's global executor threads while Python drives it.
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let Some(status) = status else {
        panic!("the Python scenario ran over {DEADLINE:?} and was killed:\n{stdout}\n{stderr}");
    };
    assert!(
        status.success(),
        "the Python scenario failed ({status}):\n{stdout}\n{stderr}"
    );
    eprint!("{stdout}");
    stdout
}

#[test]
#[cfg_attr(
    not(roomcast_python),
    ignore = "needs the venv tests/python/.venv: python3 -m venv tests/python/.venv && tests/python/.venv/bin/pip install -r tests/python/requirements.txt; .ci/run does it"
)]
fn stomp_py_over_websocket_sends_subscribes_gets_receipts_and_escaped_headers() {
    // A namespace, so that a room name holds a `:`, which STOMP headers carry escaped.
    let namespaces = Namespaces::new(Namespace::default())
        .with("chat", Namespace::default())
        .expect("a namespace");
    let config = HubConfig {
        namespaces: Arc::new(namespaces),
        ..HubConfig::default()
    };
    let server = smol::block_on(Server::start(
        roomcast_tests::Flavor::Smol,
        config,
        Options::default(),
        64,
    ));
    let stdout = run_script("python/stomp_scenario.py", &format!("ws://{}", server.addr));
    assert!(
        stdout.lines().any(|line| line == "scenario: ok"),
        "no final `scenario: ok`:\n{stdout}"
    );
}
