//! SockJS's HTTP transports (the SockJS protocol 0.3.3) against the `roomcast` binary, one test
//! per rule, over real sockets: `info` and CORS, `xhr` + `xhr_send`, `xhr_streaming` and
//! `eventsource` framing, one receiver at a time (`c[2010,...]`), a receiver broken off
//! (`c[1002,...]`), the 5 s expiry, the 128 KiB streaming limit, heartbeats, sessions bound to
//! their client's address, and STOMP admitted by its `CONNECT`. sockjs-client itself, on each
//! transport, is in `stomp.rs`.

mod common;

use std::time::Duration;

use common::{BIN, Running};
use roomcast_tests::http::{Response, get, post, request};
use serde_json::{Value, json};

/// A receiving response read line by line (`\n` for `xhr` and `xhr_streaming`, `\r\n\r\n` for
/// `eventsource`), whatever its chunks.
struct Lines {
    response: Response,
    buffer: String,
    end: &'static str,
}

impl Lines {
    fn new(response: Response, end: &'static str) -> Self {
        assert_eq!(response.status, 200);
        Self {
            response,
            buffer: String::new(),
            end,
        }
    }

    /// The next line, without its end; `None` once the response ended.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.buffer.find(self.end) {
                let line = self.buffer[..at].to_owned();
                self.buffer.drain(..at + self.end.len());
                return Some(line);
            }
            let chunk = self.response.chunk().await?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The messages of the next frame, which must be `a[...]`.
    async fn messages(&mut self) -> Vec<Value> {
        let line = self.next().await.expect("a frame");
        array(&line)
    }
}

/// The roomcast.v1 messages of an `a[...]` frame.
fn array(frame: &str) -> Vec<Value> {
    let items: Vec<String> = frame
        .strip_prefix('a')
        .and_then(|array| serde_json::from_str(array).ok())
        .unwrap_or_else(|| panic!("not an a[...] frame: {frame}"));
    items
        .iter()
        .map(|item| serde_json::from_str(item).expect("roomcast.v1 JSON"))
        .collect()
}

async fn xhr(server: &Running, path: &str) -> String {
    let response = request("POST", server.addr, path, &[]).await;
    assert_eq!(response.status, 200, "{path}");
    response.text().await
}

async fn xhr_send(server: &Running, path: &str, messages: &[Value]) -> u16 {
    let texts: Vec<String> = messages.iter().map(Value::to_string).collect();
    let body = serde_json::to_string(&texts).expect("JSON");
    post(server.addr, path, &[("content-type", "text/plain")], &body)
        .await
        .status
}

#[test]
fn info_and_its_preflight_answer_as_the_protocol_says() {
    let server = Running::start(&["--memory"]);
    smol::block_on(async {
        for base in ["/sockjs", "/stomp"] {
            let info = get(server.addr, &format!("{base}/info"), &[]).await;
            assert_eq!(info.status, 200);
            assert_eq!(
                info.header("content-type"),
                "application/json; charset=UTF-8"
            );
            assert!(info.header("cache-control").contains("no-store"));
            let info = info.json().await;
            assert_eq!(info["websocket"], true);
            assert_eq!(info["cookie_needed"], false);
            assert_eq!(info["origins"], json!(["*:*"]));
            assert!(info["entropy"].is_u64(), "{info}");

            let origin = [("origin", "http://app.test")];
            let preflight = request("OPTIONS", server.addr, &format!("{base}/info"), &origin).await;
            assert_eq!(preflight.status, 204);
            assert_eq!(
                preflight.header("access-control-allow-methods"),
                "OPTIONS, GET"
            );
            assert_eq!(
                preflight.header("access-control-allow-origin"),
                "http://app.test"
            );
            assert_eq!(preflight.header("access-control-max-age"), "31536000");
            assert!(
                preflight
                    .header("cache-control")
                    .contains("max-age=31536000")
            );
            assert!(!preflight.header("expires").is_empty());
        }
        let asked = [
            ("origin", "http://app.test"),
            ("access-control-request-headers", "content-type"),
        ];
        let preflight = request("OPTIONS", server.addr, "/sockjs/1/a/xhr_send", &asked).await;
        assert_eq!(preflight.status, 204);
        assert_eq!(
            preflight.header("access-control-allow-methods"),
            "OPTIONS, POST"
        );
        assert_eq!(
            preflight.header("access-control-allow-headers"),
            "content-type"
        );
        assert_eq!(get(server.addr, "/sockjs/1/a/xhr", &[]).await.status, 405);
        assert_eq!(
            get(server.addr, "/sockjs/1/a/htmlfile", &[]).await.status,
            404
        );
        assert_eq!(get(server.addr, "/sockjs/1/a.b/xhr", &[]).await.status, 404);
    });
}

#[test]
fn xhr_polls_open_the_session_and_carry_roomcast_v1_both_ways() {
    let server = Running::start(&["--memory"]);
    smol::block_on(async {
        let base = "/sockjs/000/poller";
        assert_eq!(xhr(&server, &format!("{base}/xhr?user=alice")).await, "o\n");
        let first = xhr(&server, &format!("{base}/xhr")).await;
        let welcome = array(first.trim_end());
        assert_eq!(welcome[0]["type"], "welcome");
        assert_eq!(
            welcome[0]["user"], "alice",
            "the session is the first request's"
        );

        let join = json!({"type": "join", "room": "lobby", "ref": "j"});
        assert_eq!(
            xhr_send(&server, &format!("{base}/xhr_send"), &[join]).await,
            204
        );
        let reply = xhr(&server, &format!("{base}/xhr")).await;
        let reply = array(reply.trim_end());
        assert_eq!(reply[0]["type"], "reply");
        assert_eq!(reply[0]["members"], json!(["alice"]));

        // What `xhr_send` refuses, in the protocol's words.
        let send = format!("{base}/xhr_send");
        let empty = post(server.addr, &send, &[("content-type", "text/plain")], "").await;
        assert_eq!(empty.status, 500);
        assert_eq!(empty.text().await, "Payload expected.");
        let broken = post(server.addr, &send, &[("content-type", "text/plain")], "[1").await;
        assert_eq!(broken.status, 500);
        assert_eq!(broken.text().await, "Broken JSON encoding.");
        let unknown = post(server.addr, "/sockjs/000/nobody/xhr_send", &[], "[]").await;
        assert_eq!(unknown.status, 404);
    });
}

#[test]
fn streaming_receivers_write_their_framing_and_a_second_one_gets_2010() {
    let server = Running::start(&["--memory"]);
    smol::block_on(async {
        let base = "/sockjs/000/streamer";
        let first = request(
            "POST",
            server.addr,
            &format!("{base}/xhr_streaming?user=bob"),
            &[],
        )
        .await;
        let mut first = Lines::new(first, "\n");
        assert_eq!(
            first.response.header("content-type"),
            "application/javascript; charset=UTF-8"
        );
        assert_eq!(
            first.next().await.as_deref(),
            Some("h".repeat(2048).as_str())
        );
        assert_eq!(first.next().await.as_deref(), Some("o"));
        assert_eq!(first.messages().await[0]["type"], "welcome");

        let second = request("POST", server.addr, &format!("{base}/xhr_streaming"), &[]).await;
        let mut second = Lines::new(second, "\n");
        assert_eq!(
            second.next().await.as_deref(),
            Some("h".repeat(2048).as_str())
        );
        assert_eq!(
            second.next().await.as_deref(),
            Some(r#"c[2010,"Another connection still open"]"#)
        );
        assert_eq!(second.next().await, None, "the second response ends");

        let ping = json!({"type": "ping", "ref": "p"});
        assert_eq!(
            xhr_send(&server, &format!("{base}/xhr_send"), &[ping]).await,
            204
        );
        let reply = first.messages().await;
        assert_eq!(
            reply[0],
            json!({"type": "reply", "ref": "p"}),
            "the first goes on"
        );

        let events = get(server.addr, "/sockjs/000/evs/eventsource?user=carol", &[]).await;
        assert_eq!(
            events.header("content-type"),
            "text/event-stream; charset=UTF-8"
        );
        let mut events = Lines::new(events, "\r\n\r\n");
        let open = events.next().await;
        assert_eq!(open.as_deref(), Some("\r\ndata: o"), "the prelude, then o");
        let welcome = events.next().await.expect("a frame");
        let welcome = array(welcome.strip_prefix("data: ").expect("a data line"));
        assert_eq!(welcome[0]["user"], "carol");
    });
}

#[test]
fn a_receiver_broken_off_interrupts_the_session_and_a_lone_one_expires_in_5_s() {
    let server = Running::start(&["--memory"]);
    smol::block_on(async {
        let base = "/sockjs/000/cut";
        let stream = request(
            "POST",
            server.addr,
            &format!("{base}/xhr_streaming?user=dan"),
            &[],
        )
        .await;
        let mut stream = Lines::new(stream, "\n");
        stream.next().await; // the prelude
        assert_eq!(stream.next().await.as_deref(), Some("o"));
        drop(stream);
        // The server learns of the cut as soon as hyper does.
        let mut told = String::new();
        for _ in 0..50 {
            told = xhr(&server, &format!("{base}/xhr")).await;
            if told.starts_with("c[1002") {
                break;
            }
            smol::Timer::after(Duration::from_millis(100)).await;
        }
        assert_eq!(told, "c[1002,\"Connection interrupted\"]\n");

        // A session whose receiver finished and did not come back expires 5 s later: its id
        // then opens a new session.
        let base = "/sockjs/000/lone";
        assert_eq!(xhr(&server, &format!("{base}/xhr?user=erin")).await, "o\n");
        smol::Timer::after(Duration::from_millis(5_500)).await;
        assert_eq!(xhr(&server, &format!("{base}/xhr?user=erin")).await, "o\n");
        let metrics = get(server.addr, "/metrics", &[]).await.text().await;
        assert!(
            metrics.contains("roomcast_sockjs_sessions 1"),
            "the new one; the interrupted one expired too: {metrics}"
        );
    });
}

#[test]
fn a_streaming_response_ends_after_128_kib_and_the_next_carries_the_rest_once() {
    const KEY: &str = "sockjs-api-key";
    let server = Running::start(&["--memory", "--api-key", KEY]);
    smol::block_on(async {
        let base = "/sockjs/000/big";
        let stream = request(
            "POST",
            server.addr,
            &format!("{base}/xhr_streaming?user=fay"),
            &[],
        )
        .await;
        let mut stream = Lines::new(stream, "\n");
        stream.next().await; // the prelude
        assert_eq!(stream.next().await.as_deref(), Some("o"));
        stream.messages().await; // welcome and streams
        let bearer = format!("Bearer {KEY}");
        let auth = [("authorization", bearer.as_str())];
        let data = format!(r#"{{"data":"{}"}}"#, "x".repeat(20 * 1024));
        let mut ids = Vec::new();
        for _ in 0..9 {
            let stored = post(server.addr, "/api/broadcast", &auth, &data).await;
            assert_eq!(stored.status, 200);
            ids.push(stored.json().await["id"].clone());
        }
        // 9 x 20 KiB: the first response ends past 128 KiB, the next carries the rest.
        let mut seen = Vec::new();
        while let Some(line) = stream.next().await {
            seen.extend(array(&line).into_iter().map(|m| m["id"].clone()));
        }
        assert!(seen.len() < ids.len(), "the first response ended early");
        let next = request("POST", server.addr, &format!("{base}/xhr_streaming"), &[]).await;
        let mut next = Lines::new(next, "\n");
        next.next().await; // the prelude
        while seen.len() < ids.len() {
            let line = next.next().await.expect("the rest");
            seen.extend(array(&line).into_iter().map(|m| m["id"].clone()));
        }
        assert_eq!(seen, ids, "each once, in order");
    });
}

#[test]
fn heartbeats_answer_a_poll_and_sessions_are_their_client_s_only() {
    let server = Running::start(&[
        "--memory",
        "--ping-interval",
        "1s",
        "--trusted-proxies",
        "127.0.0.1/32",
    ]);
    smol::block_on(async {
        let base = "/sockjs/000/beat";
        let from = |ip| [("x-forwarded-for", ip)];
        let path = format!("{base}/xhr?user=gus");
        let open = request("POST", server.addr, &path, &from("10.0.0.1")).await;
        assert_eq!(open.text().await, "o\n");
        let path = format!("{base}/xhr");
        let welcome = request("POST", server.addr, &path, &from("10.0.0.1")).await;
        assert!(welcome.text().await.starts_with("a["));
        let beat = request("POST", server.addr, &path, &from("10.0.0.1")).await;
        assert_eq!(
            beat.text().await,
            "h\n",
            "a heartbeat within the ping interval"
        );
        let other = request("POST", server.addr, &path, &from("10.0.0.2")).await;
        assert_eq!(
            other.status, 404,
            "another address does not reach the session"
        );
    });
}

#[test]
fn stomp_over_xhr_is_admitted_by_the_passcode_of_its_connect() {
    const SECRET: &str = "sockjs-secret";
    let server = Running::start(&["--memory", "--jwt-secret", SECRET]);
    let minted = std::process::Command::new(BIN)
        .args(["token", "--user", "hal", "--secret", SECRET])
        .output()
        .expect("run roomcast token");
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).expect("UTF-8");
    smol::block_on(async {
        let base = "/stomp/000/stomper";
        let stream = request("POST", server.addr, &format!("{base}/xhr_streaming"), &[]).await;
        let mut stream = Lines::new(stream, "\n");
        stream.next().await; // the prelude
        assert_eq!(stream.next().await.as_deref(), Some("o"));
        let connect = format!(
            "CONNECT\naccept-version:1.2\nhost:x\npasscode:{}\n\n\0",
            token.trim()
        );
        let body = serde_json::to_string(&[connect]).expect("JSON");
        let send = format!("{base}/xhr_send");
        let sent = post(server.addr, &send, &[("content-type", "text/plain")], &body).await;
        assert_eq!(sent.status, 204);
        let line = stream.next().await.expect("CONNECTED");
        let frames: Vec<String> =
            serde_json::from_str(line.strip_prefix('a').expect("a[...]")).expect("strings");
        assert!(
            frames[0].starts_with("CONNECTED\nversion:1.2\n"),
            "{frames:?}"
        );
    });
}
