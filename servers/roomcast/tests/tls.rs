//! `roomcast serve --tls-cert --tls-key` against Debian's curl (HTTP/2 by nghttp2): 50 SSE
//! streams multiplexed on one TLS connection all receive every message, the API answers over
//! HTTP/2, and a certificate swapped under a running server reaches new connections while an
//! open stream goes on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, fresh_dir};

/// A certificate for `localhost` and its key, written into `dir` as `name.pem`, `name.key`.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let names = vec!["localhost".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).expect("a certificate");
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, certified.cert.pem()).expect("write");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write");
    (cert, key)
}

/// curl for `https://localhost:PORT`, trusting `ca`, over HTTP/2, quiet.
fn curl(server: &Running, ca: &Path) -> Command {
    let port = server.addr.port();
    let mut command = Command::new("curl");
    command
        .args(["--http2", "--silent", "--show-error", "--no-buffer"])
        .arg("--cacert")
        .arg(ca)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
    command
}

fn url(server: &Running, target: &str) -> String {
    format!("https://localhost:{}{target}", server.addr.port())
}

/// Publishes a broadcast over HTTP/2; returns curl's `%{http_version} %{http_code}`.
fn broadcast(server: &Running, ca: &Path, n: u32) -> String {
    let output = curl(server, ca)
        .args(["-X", "POST", "-H", "content-type: application/json"])
        .args(["--data", &format!(r#"{{"data":{{"n":{n}}}}}"#)])
        .args([
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_version} %{http_code}",
        ])
        .arg(url(server, "/api/broadcast"))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until `/api/status` counts `n` SSE connections.
fn wait_for_streams(server: &Running, ca: &Path, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let output = curl(server, ca)
            .arg(url(server, "/api/status"))
            .output()
            .expect("curl");
        let status: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        if status["connections"]["sse"].as_u64() == Some(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} streams never opened: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A curl run, killed if the test ends first.
struct Killed(Option<Child>);

impl Killed {
    /// Waits for it to end (at its `--max-time`); its output.
    fn output(mut self) -> std::process::Output {
        let child = self.0.take().expect("running");
        child.wait_with_output().expect("curl ends at its max time")
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn fifty_sse_streams_share_one_http2_connection_and_get_every_message() {
    let dir = fresh_dir("tls-streams");
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = certificate(&dir, "server");
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let server = Running::start(&["--memory", "--tls-cert", &cert_arg, "--tls-key", &key_arg]);

    // One curl, 50 transfers in parallel: multiplexed on one connection.
    let mut streams = curl(&server, &cert);
    streams.args(["--parallel", "--parallel-max", "50", "--max-time", "8"]);
    streams.args(["--write-out", "%{http_version} %{num_connects}\\n"]);
    for n in 0..50 {
        streams
            .arg(url(&server, &format!("/events?user=u{n}")))
            .arg("--output")
            .arg(dir.join(format!("stream-{n}.txt")));
    }
    // Each transfer ends at the max time, which curl reports on stderr: expected here.
    streams.stdout(Stdio::piped()).stderr(Stdio::null());
    let streams = Killed(Some(streams.spawn().expect("run curl")));
    wait_for_streams(&server, &cert, 50);
    for n in 0..5 {
        assert_eq!(broadcast(&server, &cert, n), "2 200", "the API over HTTP/2");
    }
    let output = streams.output();
    let report = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 50, "{report}");
    assert!(
        lines.iter().all(|l| l.starts_with("2 ")),
        "every stream over HTTP/2: {report}"
    );
    let connects: u32 = lines
        .iter()
        .filter_map(|l| l.split(' ').nth(1)?.parse::<u32>().ok())
        .sum();
    assert_eq!(connects, 1, "one connection for the 50 streams: {report}");
    for n in 0..50 {
        let text = std::fs::read_to_string(dir.join(format!("stream-{n}.txt"))).expect("read");
        for m in 0..5 {
            assert!(
                text.contains(&format!(r#""data":{{"n":{m}}}"#)),
                "stream {n} lacks {m}:\n{text}"
            );
        }
    }
}

#[test]
fn a_certificate_swapped_under_a_running_server_reaches_new_connections() {
    let dir = fresh_dir("tls-swap");
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = certificate(&dir, "server");
    let old_ca = dir.join("old.pem");
    std::fs::copy(&cert, &old_ca).expect("copy");
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let server = Running::start(&["--memory", "--tls-cert", &cert_arg, "--tls-key", &key_arg]);

    let stream_file = dir.join("stream.txt");
    let stream = Killed(Some(
        curl(&server, &old_ca)
            .args(["--max-time", "12", "--output"])
            .arg(&stream_file)
            .arg(url(&server, "/events?user=kept"))
            .stderr(Stdio::null())
            .spawn()
            .expect("run curl"),
    ));
    wait_for_streams(&server, &old_ca, 1);

    // The renewal: a new pair written over the old files, then SIGHUP.
    let (new_cert, new_key) = certificate(&dir, "renewed");
    std::fs::copy(&new_key, &key).expect("copy");
    std::fs::copy(&new_cert, &cert).expect("copy");
    let pid = server.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while broadcast(&server, &new_cert, 0) != "2 200" {
        assert!(
            Instant::now() < deadline,
            "the new certificate is never served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(
        broadcast(&server, &old_ca, 1),
        "2 200",
        "the old one is gone for new connections"
    );
    // The stream opened before the swap goes on.
    assert_eq!(broadcast(&server, &new_cert, 2), "2 200");
    stream.output();
    let text = std::fs::read_to_string(&stream_file).expect("read");
    assert!(
        text.contains(r#""data":{"n":2}"#),
        "the open stream went on:\n{text}"
    );
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.contains("TLS certificate reloaded"))
    );
}

#[test]
fn a_certificate_that_cannot_serve_is_refused_at_start() {
    let dir = fresh_dir("tls-bad");
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, _) = certificate(&dir, "a");
    let (_, other_key) = certificate(&dir, "b");
    let output = Command::new(common::BIN)
        .args(["serve", "--memory", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&other_key)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not the key of the certificate"),
        "{stderr}"
    );
}

#[test]
fn h2c_by_prior_knowledge_is_served_behind_its_flag() {
    let prior = |server: &Running| {
        let output = Command::new("curl")
            .args(["--http2-prior-knowledge", "--silent", "--max-time", "5"])
            .args([
                "--output",
                "/dev/null",
                "--write-out",
                "%{http_version} %{http_code}",
            ])
            .arg(format!("http://127.0.0.1:{}/healthz", server.addr.port()))
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for runtime in ["tokio", "smol"] {
        let on = Running::start(&["--memory", "--h2c", "--runtime", runtime]);
        assert_eq!(prior(&on), "2 200", "{runtime}");
    }
    let on = Running::start(&["--memory", "--h2c"]);
    let off = Running::start(&["--memory"]);
    assert_ne!(
        prior(&off),
        "2 200",
        "without the flag the preface is not HTTP/1.1"
    );
    // HTTP/1.1 goes on as before beside it.
    let plain = Command::new("curl")
        .args([
            "--silent",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_version} %{http_code}",
        ])
        .arg(format!("http://127.0.0.1:{}/healthz", on.addr.port()))
        .output()
        .expect("run curl");
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "1.1 200");
}

#[test]
fn an_unfinished_tls_handshake_counts_against_the_per_ip_limit() {
    let dir = fresh_dir("tls-per-ip");
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = certificate(&dir, "server");
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let healthz = |server: &Running| {
        let output = curl(server, &cert)
            .args(["--max-time", "5", "--output", "/dev/null"])
            .args(["--write-out", "%{http_version} %{http_code}"])
            .arg(url(server, "/healthz"))
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for runtime in ["tokio", "smol"] {
        let server = Running::start(&[
            "--memory",
            "--runtime",
            runtime,
            "--max-connections-per-ip",
            "2",
            "--tls-cert",
            &cert_arg,
            "--tls-key",
            &key_arg,
        ]);
        assert_eq!(healthz(&server), "2 200", "{runtime}: a free address");
        // Two connections that never start their handshakes hold the address's two places...
        let stalled: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(server.addr).expect("connect"))
            .collect();
        // The server counts them once it has accepted them, which a loaded machine may delay: ask
        // until a third is refused, for at most 5 s.
        assert_eq!(
            answer_within(Duration::from_secs(5), "0 000", || healthz(&server)),
            "0 000",
            "{runtime}: a third is closed without a handshake"
        );
        // ...until one of them goes.
        drop(stalled);
        assert_eq!(
            answer_within(Duration::from_secs(5), "2 200", || healthz(&server)),
            "2 200",
            "{runtime}: the places are free"
        );
    }
}

#[test]
fn the_demo_page_and_long_poll_are_served_over_http2() {
    let dir = fresh_dir("tls-page-poll");
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = certificate(&dir, "server");
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let server = Running::start(&["--memory", "--tls-cert", &cert_arg, "--tls-key", &key_arg]);
    // Answers `%{http_version} %{http_code}` and then the body.
    let get = |target: &str| {
        let output = curl(&server, &cert)
            .args([
                "--max-time",
                "10",
                "--write-out",
                "\n%{http_version} %{http_code}",
            ])
            .arg(url(&server, target))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').expect("a status line");
        (status.to_owned(), body.to_owned())
    };
    let (status, page) = get("/");
    assert_eq!(status, "2 200", "the demo page over HTTP/2");
    assert!(page.contains("roomcast.js"), "{page}");
    let (status, script) = get("/roomcast.js");
    assert_eq!(status, "2 200", "its script over HTTP/2");
    assert!(script.contains("WebSocket"), "{script}");

    // Long-poll: a first poll gives the cursor of now; a message, then the next poll has it.
    let (status, first) = get("/poll?user=poller&timeout=1");
    assert_eq!(status, "2 200", "{first}");
    let first: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    let cursor: String = first["cursor"]
        .as_str()
        .expect("a cursor")
        .chars()
        .map(|c| match c {
            ':' => "%3A".to_owned(),
            '=' => "%3D".to_owned(),
            ',' => "%2C".to_owned(),
            c => c.to_string(),
        })
        .collect();
    assert_eq!(broadcast(&server, &cert, 7), "2 200");
    let (status, second) = get(&format!("/poll?user=poller&timeout=5&cursor={cursor}"));
    assert_eq!(status, "2 200", "{second}");
    let second: serde_json::Value = serde_json::from_str(&second).expect("JSON");
    assert_eq!(second["recovered"], true, "{second}");
    assert_eq!(second["events"][0]["data"]["n"], 7, "{second}");
}

/// Asks `ask` until it answers `want` or `limit` has passed, 50 ms apart; returns the last answer.
fn answer_within(limit: Duration, want: &str, mut ask: impl FnMut() -> String) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let answer = ask();
        if answer == want || Instant::now() >= deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
