//! The application's hooks, against a small HTTP application started by the test: it refuses a
//! user at connect and widens another's grants, decides joins, censors and refuses publishes,
//! and once does not answer in time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_tests::http::get;
use roomcast_tests::{Client, within};
use serde_json::{Value, json};

use super::{client, server, token};

/// The application: answers each hook call by its body, and keeps every call it got.
struct App {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<Value>>>,
}

impl App {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || answer(stream, &seen));
            }
        });
        Self { addr, calls }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn calls(&self, hook: &str) -> Vec<Value> {
        let calls = self.calls.lock().expect("lock");
        calls
            .iter()
            .filter(|c| c["hook"] == hook)
            .cloned()
            .collect()
    }
}

fn answer(stream: std::net::TcpStream, seen: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    let call: Value = serde_json::from_slice(&body).expect("JSON");
    seen.lock().expect("lock").push(call.clone());
    let decision = match (call["hook"].as_str(), call["user"].as_str()) {
        (Some("connect"), Some("banned")) => json!({"allow": false, "reason": "banned by the app"}),
        (Some("connect"), Some("alice")) => json!({"allow": true, "rooms": ["vip:*"]}),
        (Some("connect"), _) => json!({"allow": true}),
        (Some("join"), _) => match call["room"].as_str() {
            Some("club:open") => json!({"allow": true}),
            Some("club:slow") => {
                std::thread::sleep(Duration::from_secs(3));
                json!({"allow": true})
            }
            _ => json!({"allow": false, "reason": "members only"}),
        },
        (Some("publish"), _) => {
            let text = call["data"]["text"].as_str().unwrap_or("");
            if text.contains("spam") {
                json!({"allow": false, "reason": "no spam"})
            } else {
                json!({"allow": true, "data": {"text": text.replace("darn", "****")}})
            }
        }
        _ => json!({"allow": false}),
    };
    let body = decision.to_string();
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

const NAMESPACES: &str = "[namespaces.club]\njoin = [\"hook\"]\n\
    [namespaces.vip]\njoin = [\"claim\"]\n\
    [namespaces.chat]\npublish = \"hook\"\n";

#[test]
fn the_application_decides_connects_joins_and_publishes() {
    let app = App::start();
    let url = app.url();
    let server = server(
        NAMESPACES,
        &[
            "--connect-hook",
            &url,
            "--join-hook",
            &url,
            "--publish-hook",
            &url,
            "--hook-timeout",
            "1s",
        ],
    );
    smol::block_on(async {
        // Connect: refused for one user (over SSE too), grants widened for another.
        let banned = token("banned", &[]);
        let refused = Client::connect(&server.ws(&format!("token={banned}"))).await;
        assert!(refused.is_err(), "a refused connect");
        let sse = get(server.addr, &format!("/events?token={banned}"), &[]).await;
        assert_eq!(sse.status, 403);
        assert!(sse.text().await.contains("banned by the app"));
        let alice = token("alice", &[]);
        let mut a = client(&server, &alice).await;
        a.send_json(json!({"type":"join","ref":1,"room":"vip:lounge"}))
            .await;
        let (joined, _) = a.answer(&json!(1)).await;
        assert_eq!(joined["type"], "reply", "the hook's grant: {joined}");

        // Join: the application admits one room, refuses another, and is too slow for a third.
        a.send_json(json!({"type":"join","ref":2,"room":"club:open"}))
            .await;
        let (joined, _) = a.answer(&json!(2)).await;
        assert_eq!(joined["type"], "reply", "{joined}");
        a.send_json(json!({"type":"join","ref":3,"room":"club:closed"}))
            .await;
        let (no, _) = a.answer(&json!(3)).await;
        assert_eq!(
            (no["code"].as_str(), no["message"].as_str()),
            (Some("unauthorized"), Some("members only"))
        );
        a.send_json(json!({"type":"join","ref":4,"room":"club:slow"}))
            .await;
        let (late, _) = within("the timeout", a.answer(&json!(4))).await;
        assert_eq!(late["code"], "unavailable", "{late}");
        // The session goes on after the hook, in order.
        a.send_json(json!({"type":"ping","ref":5})).await;
        let (pong, _) = a.answer(&json!(5)).await;
        assert_eq!(pong["type"], "reply", "{pong}");

        // Publish: censored, refused, and the rooms without a publish hook are not asked.
        a.send_json(json!({"type":"join","ref":6,"room":"chat:general"}))
            .await;
        a.answer(&json!(6)).await;
        let bob = token("bob", &[]);
        let mut b = client(&server, &bob).await;
        b.send_json(json!({"type":"join","ref":1,"room":"chat:general"}))
            .await;
        b.answer(&json!(1)).await;
        a.send_json(
            json!({"type":"publish","ref":7,"room":"chat:general","data":{"text":"darn it"}}),
        )
        .await;
        assert_eq!(a.answer(&json!(7)).await.0["type"], "reply");
        let got = within("the message", b.next_of("message")).await;
        assert_eq!(got["data"], json!({"text": "**** it"}), "{got}");
        a.send_json(
            json!({"type":"publish","ref":8,"room":"chat:general","data":{"text":"buy spam"}}),
        )
        .await;
        let (no, _) = a.answer(&json!(8)).await;
        assert_eq!(no["message"], "no spam", "{no}");
        a.send_json(json!({"type":"publish","ref":9,"room":"club:open","data":1}))
            .await;
        assert_eq!(a.answer(&json!(9)).await.0["type"], "reply");
    });
    assert_eq!(app.calls("publish").len(), 2, "only chat: is asked");
    assert!(
        app.calls("join").iter().all(|c| c["room"] != "vip:lounge"),
        "the claim admits"
    );
    let connects = app.calls("connect");
    assert!(
        connects
            .iter()
            .any(|c| c["user"] == "alice" && c["transport"] == "websocket")
    );
    assert!(
        connects
            .iter()
            .any(|c| c["user"] == "banned" && c["transport"] == "sse")
    );
}

#[test]
fn a_hook_without_its_url_or_an_unreachable_one_is_refused() {
    let output = std::process::Command::new(super::common::BIN)
        .args(["serve", "--memory", "--config"])
        .arg({
            let dir = super::common::fresh_dir("hook-config");
            std::fs::create_dir_all(&dir).expect("dir");
            let path = dir.join("roomcast.toml");
            std::fs::write(&path, NAMESPACES).expect("write");
            path
        })
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--join-hook"));

    // Nobody listens there: every join it decides is `unavailable`, none is let through.
    let server = server(
        NAMESPACES,
        &[
            "--join-hook",
            "http://127.0.0.1:9/hook",
            "--publish-hook",
            "http://127.0.0.1:9/hook",
        ],
    );
    smol::block_on(async {
        let alice = token("alice", &[]);
        let mut a = client(&server, &alice).await;
        a.send_json(json!({"type":"join","ref":1,"room":"club:open"}))
            .await;
        let (no, _) = a.answer(&json!(1)).await;
        assert_eq!(no["code"], "unavailable", "{no}");
    });
}
