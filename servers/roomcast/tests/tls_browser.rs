//! Many tabs, one connection: a page in headless Chromium opens 10 `EventSource`s and a
//! WebSocket to one origin (`tests/browser/h2_tabs.mjs`). Over plain HTTP/1.1 the seventh
//! stream stalls (6 connections per origin); over TLS the browser negotiates HTTP/2 and all ten
//! streams and the WebSocket (RFC 8441) get every message, and two more WebSockets on it play the
//! roomcast.v1 scenario.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{Running, fresh_dir};
use roomcast_tests::browser::{browser_dir, chromium};
use serde_json::Value;

/// Runs the page against `base`; when it asks, `publish` publishes (3 broadcasts), and `count`
/// looks at the connections while the scenario's WebSockets are open.
fn run_page(base: &str, mut publish: impl FnMut(), mut count: impl FnMut()) -> Value {
    let mut node = Command::new("node")
        .arg(browser_dir().join("h2_tabs.mjs"))
        .arg(base)
        .env("CHROMIUM", chromium())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run node");
    let mut stdin = node.stdin.take().expect("stdin");
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let mut seen = Value::Null;
    for line in lines.by_ref() {
        let line = line.expect("a line");
        if line == "@@publish" {
            publish();
            writeln!(stdin, "ok").expect("answer");
        } else if line == "@@count" {
            count();
            writeln!(stdin, "ok").expect("answer");
        } else if line.starts_with('{') {
            seen = serde_json::from_str(&line).expect("JSON");
        }
    }
    assert!(node.wait().expect("node ends").success(), "the page failed");
    seen
}

/// `POST /api/broadcast` with curl (over TLS: trusting nothing, `-k`).
fn curl_broadcast(base: &str, n: u32) {
    let status = Command::new("curl")
        .args([
            "-k",
            "-s",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
        ])
        .args(["--data", &format!(r#"{{"data":{n}}}"#)])
        .arg(format!("{base}/api/broadcast"))
        .status()
        .expect("curl");
    assert!(status.success());
}

/// TCP connections established to `port` of this machine (IPv4), from `/proc/net/tcp`.
fn established(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|local| local.rsplit(':').next())
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            local_port == Some(port) && fields.get(3) == Some(&"01")
        })
        .count()
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node, Chromium and tests/browser/node_modules: apt-get install chromium nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn over_http2_ten_tabs_of_streams_and_a_websocket_share_one_connection() {
    // The problem: over HTTP/1.1, the seventh stream waits for a connection.
    let plain = Running::start(&["--memory"]);
    let base = format!("http://127.0.0.1:{}", plain.addr.port());
    let seen = run_page(
        &base,
        || (0..3).for_each(|n| curl_broadcast(&base, n)),
        || {},
    );
    assert_eq!(
        seen["opened"], 6,
        "HTTP/1.1: six connections per origin: {seen}"
    );

    // The fix: TLS, HTTP/2.
    let dir = fresh_dir("tls-browser");
    std::fs::create_dir_all(&dir).expect("dir");
    let names = vec!["localhost".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).expect("a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let tls = Running::start(&["--memory", "--tls-cert", &cert, "--tls-key", &key]);
    let base = format!("https://localhost:{}", tls.addr.port());
    let direct = base.replace("localhost", "127.0.0.1");
    let (mut connections, mut with_scenario) = (0, 0);
    let seen = run_page(
        &base,
        || {
            connections = established(tls.addr.port());
            (0..3).for_each(|n| curl_broadcast(&direct, n));
        },
        || with_scenario = established(tls.addr.port()),
    );
    // The roomcast.v1 scenario over two more WebSockets, carried by the same HTTP/2 connection.
    assert_eq!(
        seen["v1"],
        serde_json::json!([
            "welcome", "join", "presence", "publish", "direct", "ping", "leave"
        ]),
        "{seen}"
    );
    assert_eq!(
        with_scenario, 1,
        "the scenario's WebSockets ride the same connection: {seen}"
    );
    assert_eq!(
        connections, 1,
        "ten streams and a WebSocket on one connection: {seen}"
    );
    assert_eq!(seen["opened"], 10, "HTTP/2: every stream opens: {seen}");
    assert_eq!(
        seen["messages"],
        serde_json::json!([3, 3, 3, 3, 3, 3, 3, 3, 3, 3]),
        "{seen}"
    );
    assert_eq!(seen["ws"], "open", "{seen}");
    assert_eq!(seen["wsMessages"], 3, "{seen}");
    let protocols = seen["protocols"].as_array().expect("protocols");
    assert!(protocols.iter().all(|p| p == "h2"), "{seen}");
}
