//! The malformed frames of a flood: 36 kinds, and what each must be answered with.

use async_tungstenite::tungstenite::Message;
use serde_json::{Value, json};

/// Malformed frame number `n`, of one of 36 kinds: the message, the `ref` its answer must carry
/// (`None`: the frame's `ref` cannot be read, or it has none) and the error code.
pub(super) fn malformed(n: usize) -> (Message, Option<Value>, &'static str) {
    let r = format!("m{n}");
    let with = |frame: String, code| (Message::text(frame), Some(json!(r)), code);
    let refless = |frame: String| (Message::text(frame), None, "bad_frame");
    match n % 36 {
        // Types: unknown, a server type, none, not a string.
        0 => with(format!(r#"{{"type":"dance","ref":"{r}"}}"#), "unknown_type"),
        1 => with(
            format!(r#"{{"type":"welcome","ref":"{r}"}}"#),
            "unknown_type",
        ),
        2 => (
            Message::text(format!(r#"{{"type":"dance","ref":{n}}}"#)),
            Some(json!(n)),
            "unknown_type",
        ),
        3 => with(format!(r#"{{"ref":"{r}"}}"#), "bad_frame"),
        4 => with(format!(r#"{{"type":7,"ref":"{r}"}}"#), "bad_frame"),
        // Fields missing, of the wrong kind, twice; bad and too-long names; a bad position.
        5 => with(format!(r#"{{"type":"join","ref":"{r}"}}"#), "bad_frame"),
        6 => with(
            format!(r#"{{"type":"join","ref":"{r}","room":"a b"}}"#),
            "bad_frame",
        ),
        7 => with(
            format!(
                r#"{{"type":"join","ref":"{r}","room":"{}"}}"#,
                "r".repeat(65)
            ),
            "bad_frame",
        ),
        8 => with(
            format!(r#"{{"type":"join","ref":"{r}","room":""}}"#),
            "bad_frame",
        ),
        9 => with(
            format!(r#"{{"type":"join","ref":"{r}","room":5}}"#),
            "bad_frame",
        ),
        10 => with(
            format!(r#"{{"type":"join","ref":"{r}","room":"lobby","since":"nope"}}"#),
            "bad_frame",
        ),
        11 => with(
            format!(r#"{{"type":"join","ref":"{r}","room":"a","room":"b"}}"#),
            "bad_frame",
        ),
        12 => with(
            format!(r#"{{"type":"publish","ref":"{r}","room":"lobby"}}"#),
            "bad_frame",
        ),
        13 => with(
            format!(r#"{{"type":"typing","ref":"{r}","room":"lobby","typing":"yes"}}"#),
            "bad_frame",
        ),
        14 => with(
            format!(
                r#"{{"type":"direct","ref":"{r}","to":"{}","data":1}}"#,
                "u".repeat(129)
            ),
            "bad_frame",
        ),
        15 => with(
            format!(r#"{{"type":"direct","ref":"{r}","to":"a\u0001b","data":1}}"#),
            "bad_frame",
        ),
        16 => with(
            format!(r#"{{"type":"direct","ref":"{r}","data":1}}"#),
            "bad_frame",
        ),
        17 => with(
            format!(r#"{{"type":"ping","ref":"{r}","room":5}}"#),
            "bad_frame",
        ),
        18 => with(
            format!(r#"{{"type":"leave","ref":"{r}","room":null}}"#),
            "bad_frame",
        ),
        // Rooms the client is not in (the room the others chat in, too): for the hub to refuse.
        19 => with(
            format!(r#"{{"type":"publish","ref":"{r}","room":"lobby","data":{{"n":{n}}}}}"#),
            "not_member",
        ),
        20 => with(
            format!(r#"{{"type":"leave","ref":"{r}","room":"lobby"}}"#),
            "not_member",
        ),
        21 => with(
            format!(r#"{{"type":"typing","ref":"{r}","room":"lobby","typing":true}}"#),
            "not_member",
        ),
        // A big one (16 KiB, within the frame limit).
        22 => with(
            format!(
                r#"{{"type":"dance","ref":"{r}","pad":"{}"}}"#,
                "p".repeat(16 * 1024)
            ),
            "unknown_type",
        ),
        // Not an object, not JSON, not whole.
        23 => refless(format!("not JSON {n}")),
        24 => refless(format!("[{n},2]")),
        25 => refless(format!("{n}")),
        26 => refless(format!(r#""a string {n}""#)),
        27 => refless("null".into()),
        28 => refless(String::new()),
        29 => refless(format!(r#"{{"type":"ping","ref":"cut{n}""#)),
        30 => refless(format!("{}{}", "[".repeat(1000), "]".repeat(1000))),
        // Refs that cannot be read: negative, fractional, over 2^64-1, over 64 bytes, an object.
        31 => refless(format!(r#"{{"type":"ping","ref":-{n}}}"#)),
        32 => refless(format!(r#"{{"type":"ping","ref":{n}.5}}"#)),
        33 => refless(format!(
            r#"{{"type":"ping","ref":1{n}00000000000000000000}}"#
        )),
        34 => refless(format!(r#"{{"type":"ping","ref":"{}"}}"#, "x".repeat(65))),
        // Binary frames: not part of protocol v1.
        _ => (
            Message::binary(vec![(n % 256) as u8; 1 + n % 64]),
            None,
            "bad_frame",
        ),
    }
}

/// Whether the hub answers malformed frame `n` (a well-formed request it refuses), rather than
/// the session.
pub(super) fn hub_answers(n: usize) -> bool {
    matches!(n % 36, 19..=21)
}
