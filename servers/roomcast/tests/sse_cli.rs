//! `roomcast sse decode|encode` as a separate process: the conformance entry point must print
//! exactly what the decoder dispatches, for every shared vector, however stdin is chunked.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use roomcast_core::sse::Decoder;
use serde_json::{Value, json};

fn roomcast(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start roomcast");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("roomcast runs")
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// What the CLI must print for `bytes`: computed with the library, in one piece.
fn expected(bytes: &[u8], last_event_id: &str) -> Vec<Value> {
    let mut decoder = Decoder::new().with_last_event_id(last_event_id);
    let mut input = bytes;
    let mut out = Vec::new();
    while let Some(event) = decoder.decode(&mut input).expect("within limits") {
        let event = event.into_owned();
        out.push(json!({"type": event.event, "data": event.data, "id": event.id, "retry": decoder.retry()}));
    }
    decoder.finish();
    out.push(json!({"end": {"last_event_id": decoder.last_event_id(), "retry": decoder.retry()}}));
    out
}

fn vectors() -> Vec<(String, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/sse.json");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("JSON");
    json.as_array()
        .expect("an array")
        .iter()
        .map(|vector| {
            let bytes = vector["chunks"]
                .as_array()
                .expect("chunks")
                .iter()
                .flat_map(|chunk| {
                    chunk
                        .as_str()
                        .expect("a string")
                        .chars()
                        .map(|c| c as u32 as u8)
                })
                .collect();
            (vector["name"].as_str().expect("name").to_owned(), bytes)
        })
        .collect()
}

#[test]
fn decode_prints_what_the_decoder_dispatches_for_every_vector() {
    // All vectors in one process each way: as read, and one byte at a time.
    for (name, bytes) in vectors() {
        let want = expected(&bytes, "");
        for args in [&["sse", "decode"][..], &["sse", "decode", "--chunk", "1"]] {
            let output = roomcast(args, &bytes);
            assert!(output.status.success(), "{name}: {args:?} failed");
            assert_eq!(lines(&output), want, "{name}: {args:?}");
        }
    }
}

#[test]
fn decode_starts_from_a_given_last_event_id() {
    let output = roomcast(
        &["sse", "decode", "--last-event-id", "41"],
        b"data: a\n\nid: 42\n\n",
    );
    assert_eq!(lines(&output), expected(b"data: a\n\nid: 42\n\n", "41"));
    assert_eq!(lines(&output)[0]["id"], "41");
}

#[test]
fn decode_fails_clearly_past_a_limit() {
    let output = roomcast(
        &["sse", "decode", "--max-line", "8"],
        b"data: ok\n\ndata: far too long\n\n",
    );
    assert!(!output.status.success());
    assert_eq!(
        lines(&output),
        [json!({"type": "message", "data": "ok", "id": "", "retry": null})]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "roomcast: SSE line longer than the limit of 8 bytes"
    );
}

#[test]
fn encode_then_decode_reads_back() {
    let input = concat!(
        r#"{"retry": 2500}"#,
        "\n",
        r#"{"comment": "keep-alive\ndata: not an event"}"#,
        "\n",
        r#"{"id": "1", "type": "chat", "data": "line one\r\nline two"}"#,
        "\n",
        r#"{"data": ""}"#,
        "\n",
    );
    let encoded = roomcast(&["sse", "encode"], input.as_bytes());
    assert!(encoded.status.success());
    let decoded = roomcast(&["sse", "decode"], &encoded.stdout);
    assert_eq!(
        lines(&decoded),
        [
            json!({"type": "chat", "data": "line one\nline two", "id": "1", "retry": 2500}),
            json!({"type": "message", "data": "", "id": "1", "retry": 2500}),
            json!({"end": {"last_event_id": "1", "retry": 2500}}),
        ]
    );
}

#[test]
fn encode_refuses_injection_with_a_clear_error() {
    let output = roomcast(
        &["sse", "encode"],
        b"{\"data\": \"ok\"}\n{\"id\": \"1\\nevent: evil\"}\n",
    );
    assert!(!output.status.success());
    assert_eq!(output.stdout, b"data: ok\n\n");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "roomcast: line 2: an SSE id cannot contain CR, LF or NUL"
    );
}
