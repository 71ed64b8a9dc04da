//! The API and the other doors: a forged cross-site call, an origin not listed, keys on
//! `/metrics`, `/api/status` and `/ws/echo`, slow bodies, and a listener on every address
//! without keys.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use roomcast_tests::http::{get, post};
use roomcast_tests::{Client, within};
use serde_json::json;

use super::common::BIN;
use super::{KEY, server, token};

#[test]
fn the_api_cannot_be_forged_from_a_page() {
    let server = server("", &["--allowed-origins", "https://app.example"]);
    smol::block_on(async {
        let bearer = format!("Bearer {KEY}");
        let body = r#"{"data":{"text":"forged"}}"#;
        // What a page may send without a preflight: a "simple" content type.
        let forged = post(
            server.addr,
            "/api/broadcast",
            &[("authorization", &bearer), ("content-type", "text/plain")],
            body,
        )
        .await;
        assert_eq!(forged.status, 415);
        let elsewhere = post(
            server.addr,
            "/api/broadcast",
            &[
                ("authorization", &bearer),
                ("origin", "https://evil.example"),
            ],
            body,
        )
        .await;
        assert_eq!(elsewhere.status, 403);
        let ok = post(
            server.addr,
            "/api/broadcast",
            &[("authorization", &bearer)],
            body,
        )
        .await;
        assert_eq!(ok.status, 200);

        // /metrics and /api/status take the (API) key; /ws/echo a token.
        for path in ["/metrics", "/api/status"] {
            assert_eq!(get(server.addr, path, &[]).await.status, 401, "{path}");
            assert_eq!(
                get(server.addr, path, &[("authorization", &bearer)])
                    .await
                    .status,
                200
            );
        }
        let echo = format!("ws://{}/ws/echo", server.addr);
        assert!(
            Client::connect(&echo).await.is_err(),
            "the echo wants a token"
        );
        let alice = token("alice", &[]);
        let echo = format!("ws://{}/ws/echo?token={alice}", server.addr);
        assert!(within("echo", Client::connect(&echo)).await.is_ok());

        // The default origin policy: `null` is never reflected; credentials only to listed.
        let open = server_open_origins();
        let target = "/poll?user=a&timeout=0";
        let null = get(open.addr, target, &[("origin", "null")]).await;
        assert_eq!(null.status, 403);
        let other = get(open.addr, target, &[("origin", "https://any.example")]).await;
        assert_eq!(
            other.header("access-control-allow-origin"),
            "https://any.example"
        );
        assert_eq!(other.header("access-control-allow-credentials"), "");
    });
}

fn server_open_origins() -> super::common::Running {
    super::common::Running::start(&["--memory"])
}

#[test]
fn a_slow_body_is_cut_off() {
    let server = server("", &[]);
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "POST /api/broadcast HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).expect("write");
    let started = std::time::Instant::now();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn an_open_server_is_refused_on_a_public_address() {
    for (args, why) in [
        (vec!["--jwt-secret", "s"], "--api-key"),
        (vec!["--api-key", "k"], "--jwt-secret"),
    ] {
        let output = std::process::Command::new(BIN)
            .args(["serve", "--memory", "--listen", "0.0.0.0:0"])
            .args(&args)
            .env_remove("ROOMCAST_JWT_SECRET")
            .env_remove("ROOMCAST_API_KEY")
            .output()
            .expect("run");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(why) && stderr.contains("--insecure-dev"),
            "{stderr}"
        );
    }
    let _ = json!(null);
}

#[test]
fn every_connection_counts_against_its_address() {
    let server = super::common::Running::start(&["--memory", "--max-connections-per-ip", "4"]);
    // Four connections that say nothing hold the address's four places...
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = TcpStream::connect(server.addr).expect("connect");
    fifth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    let _ = fifth.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    // ... until they go.
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    smol::block_on(async {
        assert_eq!(get(server.addr, "/healthz", &[]).await.status, 200);
    });
}

#[test]
fn metrics_count_what_happens() {
    let server = super::common::Running::start(&[
        "--memory",
        "--queue-bytes",
        "65536",
        "--max-frame",
        "65536",
    ]);
    smol::block_on(async {
        let mut pinger = within("connect", Client::connect(&server.ws("user=p")))
            .await
            .expect("connects");
        pinger.send_json(json!({"type":"ping","ref":1})).await;
        pinger.answer(&json!(1)).await;

        // A client that stops reading: the server closes it as a slow consumer (4000).
        let mut slow = TcpStream::connect(server.addr).expect("connect");
        slow.write_all(
            b"GET /ws?user=slow HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
              sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
        )
        .expect("handshake");
        let text = "x".repeat(60_000);
        let body = json!({"data": text}).to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        let closes = loop {
            for _ in 0..20 {
                post(server.addr, "/api/broadcast", &[], &body).await;
            }
            let metrics = get(server.addr, "/metrics", &[]).await.text().await;
            let value = |name: &str| -> f64 {
                metrics
                    .lines()
                    .find(|line| line.starts_with(name))
                    .and_then(|line| line.rsplit(' ').next()?.parse().ok())
                    .unwrap_or(0.0)
            };
            let closes = value("roomcast_slow_consumer_closes_total");
            if closes >= 1.0 || std::time::Instant::now() > deadline {
                let pings =
                    value("roomcast_messages_in_total{transport=\"websocket\",type=\"ping\"}");
                assert_eq!(pings, 1.0, "the ping is counted");
                assert!(
                    metrics.contains("# TYPE roomcast_hub_slow_consumers counter"),
                    "{metrics}"
                );
                break closes;
            }
            smol::Timer::after(Duration::from_millis(500)).await;
        };
        assert!(closes >= 1.0, "the slow consumer's close is counted");
        drop(slow);
    });
}
