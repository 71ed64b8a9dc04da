//! The `blocking-sse` example, run: an SSE stream over a real socket receives a message that
//! `POST /publish` sends, and a reconnection with its `Last-Event-ID` resumes exactly after it.
//! The core driven by plain threads keeps the same promises as under roomcast's runtimes.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{EventStream, Example, STEP};

const EXE: &str = env!("CARGO_BIN_EXE_blocking-sse");

#[test]
fn a_publish_reaches_a_stream_and_a_reconnection_resumes_after_it() {
    let example = Example::start(EXE, &[]);
    let mut stream = EventStream::open(&example, "/events?user=alice&rooms=lobby", &[]);
    let open = stream.next();
    assert_eq!(open.kind, "open", "the welcome comes first: {open:?}");
    assert!(open.data.contains(r#""user":"alice""#), "{}", open.data);
    let streams = stream.next();
    assert_eq!(streams.kind, "streams", "{streams:?}");
    assert!(streams.id.contains("room:lobby="), "{}", streams.id);

    let (status, body) = example.request("POST", "/publish?room=lobby", r#"{"text":"first"}"#);
    assert_eq!(
        (status, body.contains(r#""sessions":1"#)),
        (200, true),
        "{body}"
    );
    let first = stream.next_of("message");
    assert!(
        first.data.contains(r#""data":{"text":"first"}"#),
        "{}",
        first.data
    );

    // Alice goes away; a message comes while she is; she reconnects with her last id.
    drop(stream);
    let (status, body) = example.request("POST", "/publish?room=lobby", r#"{"text":"second"}"#);
    assert_eq!(status, 200, "{body}");
    let last_id = format!("last-event-id: {}", first.id);
    let mut resumed = EventStream::open(&example, "/events?user=alice&rooms=lobby", &[&last_id]);
    let streams = resumed.next_of("streams");
    assert!(streams.data.contains(r#""replayed":1"#), "{}", streams.data);
    let second = resumed.next_of("message");
    assert!(
        second.data.contains(r#""data":{"text":"second"}"#),
        "{}",
        second.data
    );
}

#[test]
fn an_idle_stream_gets_keep_alives_at_the_sessions_timer() {
    let example = Example::start(EXE, &["--keep-alive-ms", "200"]);
    let mut socket = example.connect();
    socket
        .write_all(b"GET /events?user=dora HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("send the request");
    let started = Instant::now();
    let mut seen = Vec::new();
    // Two keep-alive comments after the events: the timer fired, and was armed again.
    while seen.windows(3).filter(|w| w == b"\n:\n").count() < 2 {
        assert!(
            started.elapsed() < STEP,
            "{}",
            String::from_utf8_lossy(&seen)
        );
        let mut chunk = [0; 1024];
        let read = socket.read(&mut chunk).expect("read the stream");
        assert!(read > 0, "the stream ended");
        seen.extend_from_slice(&chunk[..read]);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "keep-alives came early"
    );
}

#[test]
fn bad_requests_are_refused() {
    let example = Example::start(EXE, &[]);
    let (status, _) = example.request("GET", "/events", "");
    assert_eq!(status, 400, "a stream needs ?user=");
    let (status, _) = example.request("POST", "/publish?room=lobby", "not JSON");
    assert_eq!(status, 400);
    let (status, _) = example.request("GET", "/elsewhere", "");
    assert_eq!(status, 404);
}
