//! roomcast's SSE decoder against a real browser: every vector in `vectors/sse.json` is replayed
//! through headless Chromium's `EventSource` (by `browser/sse_eventsource.mjs`) and decoded
//! in-process, and the two event lists must be equal.
//!
//! Without node, Chromium or `browser/node_modules` the browser test is ignored, with what to
//! install; `ROOMCAST_REQUIRE_BROWSER=1` runs it anyway, so anything missing fails it (for CI).
//! See `src/browser.rs`.

use std::path::PathBuf;
use std::process::Command;

use roomcast_core::sse::Decoder;
use roomcast_tests::browser::chromium;
use serde_json::Value;

/// One dispatched event, as the browser reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ev {
    ty: String,
    data: String,
    last_event_id: String,
}

struct Vector {
    name: String,
    chunks: Vec<Vec<u8>>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vectors_path() -> PathBuf {
    root().join("vectors/sse.json")
}

/// The vectors; each chunk is a JSON string whose chars U+0000..U+00FF stand for one byte each.
fn load_vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(vectors_path()).expect("read vectors/sse.json");
    let json: Value = serde_json::from_str(&text).expect("vectors/sse.json is JSON");
    let vectors: Vec<Vector> = json
        .as_array()
        .expect("an array of vectors")
        .iter()
        .map(|v| {
            let name = v["name"].as_str().expect("vector name").to_owned();
            let chunks = v["chunks"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: chunks"))
                .iter()
                .map(|c| {
                    let c = c
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: chunk is a string"));
                    c.chars()
                        .map(|ch| {
                            u8::try_from(u32::from(ch))
                                .unwrap_or_else(|_| panic!("{name}: char {ch:?} is not a byte"))
                        })
                        .collect()
                })
                .collect();
            Vector { name, chunks }
        })
        .collect();
    assert!(
        vectors.len() >= 120,
        "expected at least 120 vectors, found {}",
        vectors.len()
    );
    vectors
}

/// Decodes a whole stream, fed exactly in the given pieces.
fn decode<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<Ev> {
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    for piece in pieces {
        let mut input = piece;
        while let Some(ev) = dec
            .decode(&mut input)
            .expect("vectors stay within the default limits")
        {
            out.push(Ev {
                ty: ev.event.to_string(),
                data: ev.data.to_string(),
                last_event_id: ev.id.to_string(),
            });
        }
        assert!(
            input.is_empty(),
            "decode returned None before consuming its input"
        );
    }
    dec.finish(); // end of stream: a pending event is dropped, as a browser does
    out
}

/// Printable form of a vector's bytes: ASCII as is, everything else escaped.
fn show_bytes(chunks: &[Vec<u8>]) -> String {
    let shown: Vec<String> = chunks
        .iter()
        .map(|c| format!("\"{}\"", c.escape_ascii()))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// The browser events of one output line of the node script.
fn parse_browser_line(line: &str) -> (String, Vec<Ev>) {
    let v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line from node ({e}): {line}"));
    let s = |e: &Value, k: &str| {
        e[k].as_str()
            .unwrap_or_else(|| panic!("{k} missing in {line}"))
            .to_owned()
    };
    let events = v["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events missing in {line}"))
        .iter()
        .map(|e| Ev {
            ty: s(e, "type"),
            data: s(e, "data"),
            last_event_id: s(e, "lastEventId"),
        })
        .collect();
    (s(&v, "name"), events)
}

#[test]
#[cfg_attr(
    not(roomcast_browser),
    ignore = "needs node, Chromium and tests/browser/node_modules: apt-get install chromium nodejs npm, then (cd tests/browser && npm ci); .ci/run does both"
)]
fn decoder_agrees_with_chromium_eventsource() {
    let chromium = chromium();

    let vectors = load_vectors();
    let output = Command::new("node")
        .arg(root().join("browser/sse_eventsource.mjs"))
        .arg(vectors_path())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    assert!(
        output.status.success(),
        "the browser run failed ({}): {stderr}",
        output.status
    );

    let stdout = String::from_utf8(output.stdout).expect("node prints UTF-8");
    let browser: Vec<(String, Vec<Ev>)> = stdout.lines().map(parse_browser_line).collect();
    assert_eq!(browser.len(), vectors.len(), "one output line per vector");

    let mut mismatches = 0;
    for (v, (name, theirs)) in vectors.iter().zip(&browser) {
        assert_eq!(&v.name, name, "browser output out of vector order");
        let ours = decode(v.chunks.iter().map(Vec::as_slice));
        if ours != *theirs {
            mismatches += 1;
            eprintln!(
                "MISMATCH {}\n  bytes:   {}\n  browser: {theirs:?}\n  ours:    {ours:?}",
                v.name,
                show_bytes(&v.chunks)
            );
        }
    }
    assert_eq!(
        mismatches,
        0,
        "{mismatches} of {} vectors decode differently from Chromium",
        vectors.len()
    );
}

#[test]
fn decoding_is_independent_of_chunking() {
    let mut mismatches = 0;
    let vectors = load_vectors();
    for v in &vectors {
        let given = decode(v.chunks.iter().map(Vec::as_slice));
        let whole = v.chunks.concat();
        let one_piece = decode([whole.as_slice()]);
        let bytewise = decode(whole.chunks(1));
        if given != one_piece || given != bytewise {
            mismatches += 1;
            eprintln!(
                "CHUNKING MISMATCH {}\n  bytes:     {}\n  as given:  {given:?}\n  one piece: {one_piece:?}\n  bytewise:  {bytewise:?}",
                v.name,
                show_bytes(&v.chunks)
            );
        }
    }
    assert_eq!(
        mismatches,
        0,
        "{mismatches} of {} vectors depend on how they are chunked",
        vectors.len()
    );
}
