//! The HTTP side of the roomcast-hyper service over real connections on 127.0.0.1, on smol and
//! on tokio: SSE streams and their resume, long-poll, the checks before any upgrade or stream
//! (authentication 401, origin 403, per-IP limit 429, handshake 400/426), and shutdown.
//!
//! Every wait is bounded (`WAIT`); hub state is observed through the hub's figures, polled.

use std::time::{Duration, Instant};

use roomcast_core::envelope::Payload;
use roomcast_core::hub::HubConfig;
use roomcast_core::names::{RoomName, UserId};
use roomcast_core::session::SessionConfig;
use roomcast_hyper::Options;
use roomcast_io::SessionOptions;
use roomcast_tests::http::{get, request};
use roomcast_tests::{Client, Flavor, Server, on_every_runtime, stream_entry, within};
use serde_json::{Value, json};

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("valid")
}

fn data(n: u64) -> Payload {
    Payload::from_json(&n.to_string()).expect("JSON")
}

/// Publishes `n` to `lobby` from the server; returns the message's position.
async fn publish(server: &Server, n: u64) -> String {
    let published = server
        .hub
        .publish(room("lobby"), data(n))
        .await
        .expect("hub")
        .expect("stored");
    published.id.to_string()
}

/// The SSE stream opens with `retry:`, then `open` (the welcome) and `streams`; room messages,
/// notifications and broadcasts follow as events named for their type, each `id:` the cursor
/// after it. The response is `text/event-stream`, not cached, not buffered by proxies.
fn sse_stream_opens_then_delivers_every_stream(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let response = get(server.addr, "/events?user=alice&rooms=lobby", &[]).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), "text/event-stream");
        assert_eq!(response.header("cache-control"), "no-cache, no-transform");
        assert_eq!(response.header("x-accel-buffering"), "no");
        let mut events = response.events();
        let (welcome, _) = events.next_of("open").await;
        assert_eq!(events.retry(), Some(3000), "retry comes first");
        assert_eq!(welcome["type"], "welcome");
        assert_eq!(welcome["user"], "alice");
        let (streams, start) = events.next_of("streams").await;
        let lobby = stream_entry(&streams, "room:lobby");
        assert!(start.contains(&format!("room:lobby={}", lobby["id"].as_str().unwrap())));

        let id = publish(&server, 1).await;
        let (message, cursor) = events.next_of("message").await;
        assert_eq!(message["data"], 1);
        assert_eq!(message["id"], id.as_str());
        assert!(cursor.contains(&format!("room:lobby={id}")), "{cursor}");

        let alice = UserId::new("alice").expect("valid");
        let notified = server
            .hub
            .notify(alice, Some("invoice".into()), data(2))
            .await
            .expect("hub")
            .expect("stored");
        let (notify, cursor) = events.next_of("notify").await;
        assert_eq!(notify["data"], 2);
        assert!(
            cursor.contains(&format!("user={}", notified.id)),
            "{cursor}"
        );

        let stored = server.hub.broadcast(None, data(3)).await.expect("hub");
        stored.expect("stored");
        let (broadcast, _) = events.next_of("broadcast").await;
        assert_eq!(broadcast["data"], 3);
    });
}

/// A stream cut and reopened with the last `id:` as `Last-Event-ID` (what a browser sends)
/// gets exactly the messages it missed, in order, with `recovered: true`; `?lastEventId=` does
/// the same for a page that kept the id itself.
fn sse_resumes_exactly_from_last_event_id(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut events = get(server.addr, "/events?user=bob&rooms=lobby", &[])
            .await
            .events();
        events.next_of("streams").await;
        publish(&server, 1).await;
        let (_, last_id) = events.next_of("message").await;
        drop(events);
        for n in 2..5 {
            publish(&server, n).await;
        }

        for resume in [
            get(
                server.addr,
                "/events?user=bob&rooms=lobby",
                &[("last-event-id", &last_id)],
            )
            .await,
            get(
                server.addr,
                &format!(
                    "/events?user=bob&rooms=lobby&lastEventId={}",
                    encode(&last_id)
                ),
                &[],
            )
            .await,
        ] {
            let mut events = resume.events();
            let (streams, _) = events.next_of("streams").await;
            let lobby = stream_entry(&streams, "room:lobby");
            assert_eq!(lobby["recovered"], true, "{streams}");
            assert_eq!(lobby["replayed"], 3, "{streams}");
            for n in 2..5 {
                let (message, _) = events.next_of("message").await;
                assert_eq!(message["data"], n, "in order, none missing");
            }
        }
    });
}

/// Percent-encodes a cursor for a query string.
fn encode(text: &str) -> String {
    text.replace(':', "%3A")
        .replace('=', "%3D")
        .replace(',', "%2C")
}

/// A client that goes away frees its SSE session at once: the hub holds no session well before
/// the first keep-alive (15 s) could have found out.
fn sse_client_leaving_frees_its_session(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut events = get(server.addr, "/events?user=carol", &[]).await.events();
        events.next_of("streams").await;
        server
            .wait_for_stats("one session", |s| s.sessions == 1)
            .await;
        let left = Instant::now();
        drop(events);
        server
            .wait_for_stats("no session", |s| s.sessions == 0)
            .await;
        assert!(
            left.elapsed() < Duration::from_secs(5),
            "{:?}",
            left.elapsed()
        );
    });
}

/// A stream request's head is read before hyper sees it, up to 16 KiB (`transports/hyper/src/raw/first_request.rs`): one
/// just under that is served directly, one over it goes to hyper whole; both get their stream.
fn sse_requests_with_large_heads_are_served_either_way(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        for pad in [15 * 1024, 17 * 1024] {
            let padding = "x".repeat(pad);
            let response = get(server.addr, "/events?user=erin", &[("x-pad", &padding)]).await;
            assert_eq!(response.status, 200, "{pad} bytes of header");
            assert_eq!(response.header("content-type"), "text/event-stream");
            response.events().next_of("streams").await;
        }
    });
}

/// Long-poll: a first poll answers the cursor to start from; a poll with a cursor answers the
/// messages after it at once, or waits for the next one, or answers none when its timeout ends;
/// a cursor from elsewhere is `recovered: false`, a malformed one a 400.
fn long_poll_answers_the_messages_after_a_cursor(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let poll = |query: String| async move {
            let response = get(
                server.addr,
                &format!("/poll?user=dave&rooms=lobby&{query}"),
                &[],
            )
            .await;
            assert_eq!(response.status, 200);
            assert_eq!(response.header("content-type"), "application/json");
            response.json().await
        };
        let first = poll("timeout=0".into()).await;
        assert_eq!(first["events"], json!([]), "{first}");
        assert_eq!(first["recovered"], true);
        let cursor = first["cursor"].as_str().expect("a cursor").to_owned();
        assert!(cursor.contains("room:lobby="), "{cursor}");

        publish(&server, 1).await;
        publish(&server, 2).await;
        let answer = poll(format!("cursor={}&timeout=5", encode(&cursor))).await;
        let got: Vec<&Value> = answer["events"]
            .as_array()
            .expect("events")
            .iter()
            .collect();
        assert_eq!(got.len(), 2, "{answer}");
        assert_eq!(
            (got[0]["data"].clone(), got[1]["data"].clone()),
            (json!(1), json!(2))
        );
        let cursor = answer["cursor"].as_str().expect("a cursor").to_owned();

        // Nothing new: the poll waits, and answers the message published meanwhile.
        let waiting = smol::spawn({
            let query = format!("cursor={}&timeout=5", encode(&cursor));
            let addr = server.addr;
            async move {
                let started = Instant::now();
                let answer = get(addr, &format!("/poll?user=dave&rooms=lobby&{query}"), &[])
                    .await
                    .json()
                    .await;
                (answer, started.elapsed())
            }
        });
        smol::Timer::after(Duration::from_millis(300)).await;
        publish(&server, 3).await;
        let (answer, took) = within("the waiting poll", waiting).await;
        assert_eq!(answer["events"][0]["data"], 3, "{answer}");
        assert!(took >= Duration::from_millis(250), "it waited: {took:?}");
        assert!(
            took < Duration::from_secs(4),
            "it did not wait out its timeout: {took:?}"
        );
        let cursor = answer["cursor"].as_str().expect("a cursor").to_owned();

        let started = Instant::now();
        let empty = poll(format!("cursor={}&timeout=1", encode(&cursor))).await;
        assert_eq!(empty["events"], json!([]));
        assert_eq!(
            empty["cursor"],
            cursor.as_str(),
            "an empty answer keeps the cursor"
        );
        assert!(started.elapsed() >= Duration::from_millis(900));

        let foreign = poll("cursor=room%3Alobby%3Dabc.5&timeout=0".into()).await;
        assert_eq!(foreign["recovered"], false, "{foreign}");

        let bad = get(server.addr, "/poll?user=dave&cursor=nonsense", &[]).await;
        assert_eq!(bad.status, 400);
        assert_eq!(bad.json().await["code"], "bad_request");
        let bad = get(server.addr, "/poll?user=dave&timeout=soon", &[]).await;
        assert_eq!(bad.status, 400);
    });
}

/// A long-poll answer is bounded: the rest comes with the next poll, from the cursor after the
/// last message answered.
fn long_poll_answers_are_bounded_and_lose_nothing(flavor: Flavor) {
    smol::block_on(async {
        let options = Options {
            poll_max_events: 3,
            ..Options::default()
        };
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;
        let first = get(server.addr, "/poll?user=erin&rooms=lobby&timeout=0", &[])
            .await
            .json()
            .await;
        let mut cursor = first["cursor"].as_str().expect("a cursor").to_owned();
        for n in 0..8 {
            publish(&server, n).await;
        }
        let mut seen = Vec::new();
        for _ in 0..3 {
            let target = format!(
                "/poll?user=erin&rooms=lobby&timeout=0&cursor={}",
                encode(&cursor)
            );
            let answer = get(server.addr, &target, &[]).await.json().await;
            let events = answer["events"].as_array().expect("events");
            assert!(events.len() <= 3, "{answer}");
            seen.extend(events.iter().map(|e| e["data"].as_u64().expect("a number")));
            cursor = answer["cursor"].as_str().expect("a cursor").to_owned();
        }
        assert_eq!(seen, (0..8).collect::<Vec<u64>>());
    });
}

/// Every session endpoint refuses before any upgrade or stream: no user (401, with
/// `WWW-Authenticate` and a JSON error), an origin not allowed (403; one allowed passes and may
/// read SSE cross-origin), and requests without `Origin` (not from a browser) pass.
fn refusals_come_before_any_upgrade_or_stream(flavor: Flavor) {
    smol::block_on(async {
        let options = Options {
            allowed_origins: vec!["http://good.example".into()],
            ..Options::default()
        };
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;
        let upgrade = [
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        for path in ["/ws", "/events", "/poll"] {
            let response = get(server.addr, path, &upgrade).await;
            assert_eq!(response.status, 401, "{path}");
            assert_eq!(response.header("www-authenticate"), "Bearer");
            let error = response.json().await;
            assert_eq!(error["type"], "error");
            assert_eq!(error["code"], "unauthorized", "{error}");

            let mut headers = upgrade.to_vec();
            headers.push(("origin", "http://evil.example"));
            let target = format!("{path}?user=mallory");
            let response = get(server.addr, &target, &headers).await;
            assert_eq!(response.status, 403, "{path}");
            assert_eq!(response.json().await["code"], "forbidden");
        }
        let events = get(
            server.addr,
            "/events?user=alice",
            &[("origin", "http://good.example")],
        )
        .await;
        assert_eq!(events.status, 200);
        assert_eq!(
            events.header("access-control-allow-origin"),
            "http://good.example"
        );
        let events = get(server.addr, "/events?user=alice", &[]).await;
        assert_eq!(events.status, 200, "no Origin: not a browser, allowed");

        let url = format!("ws://{}/ws?user=alice", server.addr);
        let mut request =
            async_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                url.as_str(),
            )
            .expect("request");
        request
            .headers_mut()
            .insert("origin", "http://evil.example".parse().expect("value"));
        match within("handshake", Client::connect_request(request)).await {
            Err(async_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403)
            }
            other => panic!("expected 403, got {:?}", other.map(|_| ())),
        }
    });
}

/// The upgrade is checked to the letter of RFC 6455: a missing key or a key that is not 16
/// bytes is a 400, another version a 426 naming version 13; a wrong method or path gets 405 or
/// 404, all with JSON errors.
fn bad_requests_get_clear_http_errors(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let base = [
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-version", "13"),
        ];
        let response = get(server.addr, "/ws?user=a", &base).await;
        assert_eq!(response.status, 400, "no key");
        assert!(response.text().await.contains("Sec-WebSocket-Key"));

        let mut short = base.to_vec();
        short.push(("sec-websocket-key", "c2hvcnQ="));
        assert_eq!(get(server.addr, "/ws?user=a", &short).await.status, 400);

        let old = [
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-version", "8"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        let response = get(server.addr, "/ws?user=a", &old).await;
        assert_eq!(response.status, 426);
        assert_eq!(response.header("sec-websocket-version"), "13");

        let plain = get(server.addr, "/ws?user=a", &[]).await;
        assert_eq!(plain.status, 400, "a plain GET on /ws");
        let missing = get(server.addr, "/nowhere", &[]).await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.json().await["code"], "not_found");
        let post = request("POST", server.addr, "/events?user=a", &[]).await;
        assert_eq!(post.status, 405);
        assert_eq!(post.header("allow"), "GET");
    });
}

/// One address holds at most `max_sessions_per_ip` sessions, of every kind together; the next
/// is refused with 429, and a freed slot is free again.
fn the_per_ip_limit_refuses_with_429(flavor: Flavor) {
    smol::block_on(async {
        let options = Options {
            max_sessions_per_ip: 2,
            ..Options::default()
        };
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;
        let mut sse = get(server.addr, "/events?user=a", &[]).await.events();
        sse.next_of("open").await;
        let (ws, _, _) = server.connect("user=b").await;
        let refused = get(server.addr, "/events?user=c", &[]).await;
        assert_eq!(refused.status, 429);
        assert_eq!(refused.json().await["code"], "too_many_connections");
        let refused = within("handshake", Client::connect(&server.url("user=c"))).await;
        assert!(refused.is_err(), "the WebSocket is refused too");
        drop(ws);
        server
            .wait_for_stats("one session", |s| s.sessions == 1)
            .await;
        // The slot is freed when the session task ends, just after the hub lets go of it.
        let mut status = 0;
        for _ in 0..100 {
            status = get(server.addr, "/poll?user=c&timeout=0", &[]).await.status;
            if status == 200 {
                break;
            }
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        assert_eq!(status, 200);
    });
}

/// Shutdown reaches SSE streams too: a `shutdown` event with the reconnect hint, then the
/// stream ends cleanly after the grace period; a poll in progress answers at once.
fn shutdown_ends_sse_streams_and_polls(flavor: Flavor) {
    smol::block_on(async {
        let session = SessionOptions {
            config: SessionConfig {
                shutdown_grace: Duration::from_millis(300),
                ..SessionConfig::default()
            },
            ..SessionOptions::default()
        };
        let options = Options {
            session,
            ..Options::default()
        };
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;
        let mut events = get(server.addr, "/events?user=a", &[]).await.events();
        events.next_of("streams").await;
        let addr = server.addr;
        let poll = smol::spawn(async move {
            let started = Instant::now();
            let answer = get(addr, "/poll?user=b&timeout=20", &[]).await.json().await;
            (answer, started.elapsed())
        });
        server
            .wait_for_stats("two sessions", |s| s.sessions == 2)
            .await;
        server.shutdown.trigger(2500);
        let (notice, _) = events.next_of("shutdown").await;
        roomcast_tests::assert_reconnect_hint(&notice, 2500);
        assert!(events.next().await.is_none(), "the stream ends");
        let (answer, took) = within("the poll", poll).await;
        assert_eq!(answer["events"], json!([]));
        assert!(took < Duration::from_secs(5), "{took:?}");
        within("drained", server.shutdown.drained()).await;
    });
}

on_every_runtime!(
    sse_requests_with_large_heads_are_served_either_way,
    sse_stream_opens_then_delivers_every_stream,
    sse_resumes_exactly_from_last_event_id,
    sse_client_leaving_frees_its_session,
    long_poll_answers_the_messages_after_a_cursor,
    long_poll_answers_are_bounded_and_lose_nothing,
    refusals_come_before_any_upgrade_or_stream,
    bad_requests_get_clear_http_errors,
    the_per_ip_limit_refuses_with_429,
    shutdown_ends_sse_streams_and_polls,
);
