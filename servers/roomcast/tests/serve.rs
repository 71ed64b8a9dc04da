//! `roomcast serve` as a process on 127.0.0.1: JWT authentication before any upgrade, origins,
//! the HTTP API and its key, bad input on every endpoint, status, metrics, health, and the
//! graceful drain on SIGTERM (exit 0). Each test starts its own server on an ephemeral port.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use roomcast_tests::http::{get, post, request};
use roomcast_tests::{Client, within};
use serde_json::{Value, json};

use common::{BIN, Running};
const SECRET: &str = "test-secret";
const KEY: &str = "test-api-key";

/// A token minted by `roomcast token` with the server's secret.
fn token(user: &str, ttl: &str) -> String {
    token_signed(user, ttl, SECRET)
}

fn token_signed(user: &str, ttl: &str, secret: &str) -> String {
    let output = Command::new(BIN)
        .args(["token", "--user", user, "--secret", secret, "--ttl", ttl])
        .output()
        .expect("run roomcast token");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// A structurally valid HS256 token for `alice` whose `exp` is in the past: the header and
/// claims of a fresh token with `exp` rewritten would break the signature, so it is signed by
/// `roomcast token` with a 0 s lifetime and then waited out.
fn expired_token() -> String {
    let token = token("alice", "0s");
    std::thread::sleep(Duration::from_millis(1100));
    token
}

fn refused_status(result: Result<Client, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

#[test]
fn jwt_and_origin_are_checked_before_any_upgrade() {
    let server = Running::start(&[
        "--jwt-secret",
        SECRET,
        "--allowed-origins",
        "http://good.example",
    ]);
    smol::block_on(async {
        // No token, a wrong signature, an expired token, a `?user=` (not a credential here).
        let wrong = token_signed("alice", "1h", "not-the-secret");
        for (query, why) in [
            (String::new(), "no token"),
            ("user=alice".to_owned(), "no token"),
            (format!("token={wrong}"), "signature"),
            (format!("token={}", expired_token()), "expired"),
        ] {
            let status =
                refused_status(within("handshake", Client::connect(&server.ws(&query))).await);
            assert_eq!(status, 401, "{query}");
            let response = get(server.addr, &format!("/events?{query}"), &[]).await;
            assert_eq!(response.status, 401, "{query}");
            let error = response.json().await;
            assert_eq!(error["code"], "unauthorized");
            assert!(error["message"].as_str().unwrap().contains(why), "{error}");
        }

        // A good token, in the query or as a bearer header.
        let good = token("alice", "1h");
        let mut client = within(
            "handshake",
            Client::connect(&server.ws(&format!("token={good}"))),
        )
        .await
        .expect("accepted");
        assert_eq!(client.next_json().await["user"], "alice");
        let mut request = server.ws("").into_client_request().expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {good}").parse().expect("value"),
        );
        let (mut client, _) = within("handshake", Client::connect_request(request))
            .await
            .expect("accepted");
        assert_eq!(client.next_json().await["user"], "alice");

        // A good token from an origin not allowed.
        let mut request = server
            .ws(&format!("token={good}"))
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("origin", "http://evil.example".parse().expect("value"));
        match within("handshake", Client::connect_request(request)).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
            other => panic!("expected 403, got {:?}", other.map(|_| ())),
        }
        let events = get(
            server.addr,
            &format!("/events?token={good}"),
            &[("origin", "http://good.example")],
        )
        .await;
        assert_eq!(events.status, 200);
    });
}

#[test]
fn the_api_needs_its_key_and_answers_ids_and_counts() {
    let server = Running::start(&["--api-key", KEY]);
    smol::block_on(async {
        let body = r#"{"user":"bob","event":"invoice","data":{"amount":3}}"#;
        let bearer = format!("Bearer {KEY}");
        let auth = [("authorization", bearer.as_str())];
        let response = post(server.addr, "/api/notify", &[], body).await;
        assert_eq!(response.status, 401);
        assert_eq!(response.json().await["code"], "unauthorized");
        let response = post(
            server.addr,
            "/api/notify",
            &[("authorization", "Bearer nope")],
            body,
        )
        .await;
        assert_eq!(response.status, 401);

        // Bob is offline: the notification waits in his outbox.
        let stored = post(server.addr, "/api/notify", &auth, body).await;
        assert_eq!(stored.status, 200);
        let stored = stored.json().await;
        assert_eq!(stored["sessions"], 0, "{stored}");
        let (mut bob, _, _) = connect(&server, "user=bob").await;
        let notify = next_of(&mut bob, "notify").await;
        assert_eq!(notify["data"], json!({"amount": 3}));
        assert_eq!(notify["event"], "invoice");
        assert_eq!(notify["id"], stored["id"]);

        // Online now: one session receives it.
        let live = post(server.addr, "/api/notify", &auth, body)
            .await
            .json()
            .await;
        assert_eq!(live["sessions"], 1, "{live}");
        assert_eq!(next_of(&mut bob, "notify").await["id"], live["id"]);

        bob.send_json(json!({"type": "join", "ref": 1, "room": "lobby"}))
            .await;
        next_of(&mut bob, "reply").await;
        let published = post(
            server.addr,
            "/api/rooms/lobby/publish",
            &auth,
            r#"{"data":"hi"}"#,
        )
        .await
        .json()
        .await;
        assert_eq!(published["sessions"], 1, "{published}");
        assert_eq!(next_of(&mut bob, "message").await["data"], "hi");
        let broadcast = post(
            server.addr,
            "/api/broadcast",
            &auth,
            r#"{"event":"news","data":[1]}"#,
        )
        .await
        .json()
        .await;
        assert_eq!(broadcast["sessions"], 1, "{broadcast}");
        assert_eq!(next_of(&mut bob, "broadcast").await["data"], json!([1]));
    });
}

#[test]
fn bad_input_gets_a_clear_json_error_and_status() {
    let server = Running::start(&["--max-frame", "1024"]);
    smol::block_on(async {
        let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(2000));
        // Event names: 64 bytes is the limit.
        let longest = format!(r#"{{"event":"{}","data":1}}"#, "e".repeat(64));
        let too_long = format!(r#"{{"event":"{}","data":1}}"#, "e".repeat(65));
        let response = post(server.addr, "/api/broadcast", &[], &longest).await;
        assert_eq!(response.status, 200, "a 64-byte event name is allowed");
        for (target, body, status, code) in [
            ("/api/notify", "not json", 400, "bad_request"),
            ("/api/notify", r#"{"user":"bob"}"#, 400, "bad_request"),
            (
                "/api/notify",
                r#"{"user":"bob","data":1,"extra":2}"#,
                400,
                "bad_request",
            ),
            ("/api/notify", r#"{"user":"","data":1}"#, 400, "bad_request"),
            (
                "/api/notify",
                r#"{"user":"bob","event":"","data":1}"#,
                400,
                "bad_request",
            ),
            (
                "/api/rooms/bad%20room/publish",
                r#"{"data":1}"#,
                400,
                "bad_request",
            ),
            ("/api/rooms/lobby/publish", big.as_str(), 413, "too_large"),
            ("/api/broadcast", too_long.as_str(), 400, "bad_request"),
            ("/api/rooms/lobby", r#"{"data":1}"#, 404, "not_found"),
            ("/api/nowhere", "{}", 404, "not_found"),
        ] {
            let response = post(server.addr, target, &[], body).await;
            assert_eq!(response.status, status, "{target} {body:.40}");
            assert_eq!(response.header("content-type"), "application/json");
            let error = response.json().await;
            assert_eq!(error["code"], code, "{target}: {error}");
            assert!(
                !error["message"].as_str().unwrap_or("").is_empty(),
                "{error}"
            );
        }
        let response = request("GET", server.addr, "/api/notify", &[]).await;
        assert_eq!(response.status, 405);
        assert_eq!(response.header("allow"), "POST");
        let response = request("DELETE", server.addr, "/metrics", &[]).await;
        assert_eq!(response.status, 405);
        assert_eq!(response.header("allow"), "GET");
    });
}

/// Both runtimes `roomcast serve` runs on; tests of the whole server run on each.
const RUNTIMES: [&str; 2] = ["tokio", "smol"];

#[test]
fn status_metrics_health_and_the_page_are_served() {
    for runtime in RUNTIMES {
        status_metrics_health_and_the_page_are_served_on(runtime);
    }
}

fn status_metrics_health_and_the_page_are_served_on(runtime: &str) {
    let server = Running::start(&["--runtime", runtime]);
    smol::block_on(async {
        let page = get(server.addr, "/", &[]).await;
        assert_eq!(page.status, 200);
        assert!(page.header("content-type").starts_with("text/html"));
        let script = get(server.addr, "/roomcast.js", &[]).await;
        assert!(script.header("content-type").starts_with("text/javascript"));

        let (mut ws, _, _) = connect(&server, "user=carol").await;
        ws.send_json(json!({"type": "join", "ref": 1, "room": "lobby"}))
            .await;
        next_of(&mut ws, "reply").await;
        ws.send_json(json!({"type": "leave", "ref": 2, "room": "nowhere"}))
            .await;
        next_of(&mut ws, "error").await;
        let mut sse = get(server.addr, "/events?user=dave", &[]).await.events();
        sse.next_of("open").await;
        // A room that keeps a message, and a user away with one waiting.
        ws.send_json(json!({"type": "publish", "ref": 3, "room": "lobby", "data": 1}))
            .await;
        next_of(&mut ws, "reply").await;
        let notified = post(
            server.addr,
            "/api/notify",
            &[],
            r#"{"user":"frank","data":1}"#,
        )
        .await;
        assert_eq!(notified.status, 200);

        let status = get(server.addr, "/api/status", &[]).await.json().await;
        assert_eq!(
            status["connections"],
            json!({"websocket": 1, "sse": 1, "poll": 0, "stomp": 0, "sockjs": 0}),
            "{runtime}: {status}"
        );
        assert_eq!(status["rooms"], 1);
        assert_eq!(status["sessions"], 2);
        assert_eq!(status["rooms_with_history"], 1, "{status}");
        assert_eq!(status["outboxes"], 1, "{status}");
        assert_eq!(status["stored_messages"], 2, "{status}");
        assert_eq!(status["pending_operations"], 0, "{status}");

        let metrics = get(server.addr, "/metrics", &[]).await;
        assert_eq!(metrics.status, 200);
        assert!(
            metrics
                .header("content-type")
                .starts_with("application/openmetrics-text")
        );
        let text = metrics.text().await;
        for line in [
            r#"roomcast_connections_active{transport="websocket"} 1"#,
            r#"roomcast_connections_active{transport="sse"} 1"#,
            r#"roomcast_messages_in_total{transport="websocket",type="join"} 1"#,
            r#"roomcast_messages_out_total{transport="sse",type="welcome"} 1"#,
            r#"roomcast_errors_total{code="not_member"} 1"#,
            "roomcast_hub_rooms 1",
            "roomcast_hub_rooms_with_history 1",
            "roomcast_hub_offline_outboxes 1",
            "roomcast_hub_pending_operations 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        let health = get(server.addr, "/healthz", &[]).await.json().await;
        assert_eq!(health["status"], "ok");
    });
}

#[test]
fn sigterm_drains_clients_and_exits_0() {
    for runtime in RUNTIMES {
        sigterm_drains_clients_and_exits_0_on(runtime);
    }
}

fn sigterm_drains_clients_and_exits_0_on(runtime: &str) {
    let server = Running::start(&["--shutdown-grace", "300ms", "--runtime", runtime]);
    let mut ws = smol::block_on(async {
        let (ws, _, _) = connect(&server, "user=erin").await;
        ws
    });
    let started = Instant::now();
    let addr = server.addr;
    let terminated = std::thread::spawn(move || server.terminate());
    // The client reads and answers the close, as a real one does.
    smol::block_on(async {
        let notice = next_of(&mut ws, "shutdown").await;
        // The hint outlasts the drain (the grace and a second), with a jitter of its own.
        roomcast_tests::assert_reconnect_hint(&notice, 1300);
        // While the drain lasts, a new connection is answered: a balancer sees the drain.
        let health = get(addr, "/healthz", &[]).await;
        assert_eq!(health.status, 503, "{runtime}");
        assert_eq!(health.json().await["status"], "shutting_down");
        assert_eq!(ws.close_code().await, Some(1001));
    });
    let (status, log) = terminated.join().expect("terminate");
    assert!(status.success(), "{runtime}: exit {status}\n{log}");
    assert!(log.contains("drained"), "{runtime}: {log}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "{runtime}: the drain took {took:?} with a 300 ms grace"
    );
}

#[test]
fn settings_come_from_a_toml_file_with_flags_over_it() {
    let dir = std::env::temp_dir().join(format!("roomcast-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("roomcast.toml");
    std::fs::write(&file, format!("api_key = \"{KEY}\"\nmax_frame = 100\n")).expect("write");
    let path = file.to_str().expect("UTF-8 path");
    let server = Running::start(&["--config", path, "--max-frame", "200"]);
    smol::block_on(async {
        // The key from the file guards the API.
        let response = post(server.addr, "/api/broadcast", &[], r#"{"data":1}"#).await;
        assert_eq!(response.status, 401);
        // The flag's frame limit wins over the file's.
        let (_, welcome, _) = connect(&server, "user=f").await;
        assert_eq!(welcome["max_frame"], 200);
    });
    let bad = Command::new(BIN)
        .args(["serve", "--config", "/nonexistent/roomcast.toml"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent/roomcast.toml"));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// Connects and reads `welcome` and `streams`.
async fn connect(server: &Running, query: &str) -> (Client, Value, Value) {
    let mut client = within("handshake", Client::connect(&server.ws(query)))
        .await
        .expect("handshake");
    let welcome = client.next_json().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let streams = client.next_json().await;
    (client, welcome, streams)
}

async fn next_of(client: &mut Client, kind: &str) -> Value {
    client.next_of(kind).await
}
