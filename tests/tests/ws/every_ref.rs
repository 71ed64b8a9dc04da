//! Every `ref` answered exactly once.

use std::collections::BTreeMap;

use async_tungstenite::tungstenite::Message;
use roomcast_tests::{Flavor, Server};
use serde_json::{Value, json};

use crate::common::request;

/// A mix of valid and invalid requests, each with its own `ref`: every one gets exactly one
/// answer with that `ref` and the right code; frames whose `ref` cannot be read get exactly one
/// error without a `ref`; successes without a `ref` get nothing; the connection stays open.
pub(crate) fn every_ref_gets_exactly_one_answer(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = server.client("alice").await;
        let max = u64::MAX;

        // (ref, frame, expected answer: "reply" or an error code), in an order that matters for
        // the hub (the session forwards requests in order): join before publish, leave last.
        let answered: Vec<(Value, String, &str)> = vec![
            (json!("p"), r#"{"type":"ping","ref":"p"}"#.into(), "reply"),
            (json!(7), r#"{"type":"ping","ref":7}"#.into(), "reply"),
            (
                json!(max),
                format!(r#"{{"type":"ping","ref":{max}}}"#),
                "reply",
            ),
            (
                json!("j"),
                r#"{"type":"join","ref":"j","room":"lobby"}"#.into(),
                "reply",
            ),
            (
                json!("j2"),
                r#"{"type":"join","ref":"j2","room":"lobby"}"#.into(),
                "reply",
            ),
            (
                json!("pub"),
                r#"{"type":"publish","ref":"pub","room":"lobby","data":1}"#.into(),
                "reply",
            ),
            (
                json!("typ"),
                r#"{"type":"typing","ref":"typ","room":"lobby","typing":true}"#.into(),
                "reply",
            ),
            (
                json!("dm"),
                r#"{"type":"direct","ref":"dm","to":"nobody","data":null}"#.into(),
                "reply",
            ),
            (
                json!("nm1"),
                r#"{"type":"publish","ref":"nm1","room":"elsewhere","data":1}"#.into(),
                "not_member",
            ),
            (
                json!("nm2"),
                r#"{"type":"leave","ref":"nm2","room":"elsewhere"}"#.into(),
                "not_member",
            ),
            (
                json!("nm3"),
                r#"{"type":"typing","ref":"nm3","room":"elsewhere","typing":false}"#.into(),
                "not_member",
            ),
            (
                json!("u1"),
                r#"{"type":"dance","ref":"u1"}"#.into(),
                "unknown_type",
            ),
            (
                json!("u2"),
                r#"{"type":"reply","ref":"u2"}"#.into(),
                "unknown_type",
            ),
            (
                json!("b1"),
                r#"{"type":"join","ref":"b1"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b2"),
                r#"{"type":"publish","ref":"b2","room":"lobby"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b3"),
                r#"{"type":"ping","ref":"b3","room":5}"#.into(),
                "bad_frame",
            ),
            (
                json!("b4"),
                r#"{"type":"join","ref":"b4","room":"a b"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b5"),
                r#"{"type":"direct","ref":"b5","data":1}"#.into(),
                "bad_frame",
            ),
            (
                json!("b6"),
                r#"{"type":"typing","ref":"b6","room":"lobby","typing":"yes"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b7"),
                r#"{"type":"join","ref":"b7","room":"lobby","since":"nope"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b8"),
                r#"{"type":"join","ref":"b8","room":"a","room":"b"}"#.into(),
                "bad_frame",
            ),
            (json!("b9"), r#"{"ref":"b9"}"#.into(), "bad_frame"),
            (
                json!("b10"),
                r#"{"type":7,"ref":"b10"}"#.into(),
                "bad_frame",
            ),
            (
                json!("b11"),
                r#"{"type":"leave","ref":"b11","room":null}"#.into(),
                "bad_frame",
            ),
            (
                json!("left"),
                r#"{"type":"leave","ref":"left","room":"lobby"}"#.into(),
                "reply",
            ),
        ];
        // Frames refused before their `ref` could be read: one `bad_frame` each, without `ref`.
        let refless = [
            r#"{"type":"ping","ref":"cut""#,
            "not JSON at all",
            r#"[1,2]"#, // not an object (arrays read as positional objects: see below)
            r#"{"type":"ping","ref":-1}"#,
            r#"{"type":"ping","ref":1.5}"#,
            r#"{"type":"ping","ref":{"id":1}}"#,
            r#"{"type":"ping","ref":1,"ref":2}"#,
            r#"{"type":"join","ref":null}"#, // `ref: null` is no ref: the error has none
        ];
        // Successes without a `ref`: no answer at all.
        let silent = [
            r#"{"type":"ping"}"#,
            r#"{"type":"ping","ref":null}"#,
            r#"{"type":"typing","room":"lobby","typing":false}"#,
        ];

        for (_, frame, _) in &answered[..6] {
            alice.send_text(frame.clone()).await;
        }
        for frame in silent {
            alice.send_text(frame.into()).await;
        }
        for frame in refless {
            alice.send_text(frame.into()).await;
        }
        alice
            .ws
            .send(Message::binary(vec![1u8, 2, 3]))
            .await
            .expect("send");
        for (_, frame, _) in &answered[6..] {
            alice.send_text(frame.clone()).await;
        }
        let refless_expected = refless.len() + 1; // and the binary frame

        // Collect every answer: all of them come before the barrier's. The session answers what
        // it can alone (pings, malformed frames) as it reads each frame, before it reads the
        // barrier; the hub answers in order, through the channel the barrier's answer takes.
        let mut answers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut refless_errors = Vec::new();
        for value in alice.barrier().await {
            match (value["type"].as_str(), value.get("ref")) {
                (Some("reply" | "error"), Some(reference)) => answers
                    .entry(reference.to_string())
                    .or_default()
                    .push(value),
                (Some("error"), None) => refless_errors.push(value),
                _ => panic!("unexpected: {value}"),
            }
        }

        let mut wrong = Vec::new();
        for (reference, frame, expected) in &answered {
            let got = answers.remove(&reference.to_string()).unwrap_or_default();
            let ok = match got.as_slice() {
                [answer] if *expected == "reply" => answer["type"] == "reply",
                [answer] => answer["type"] == "error" && answer["code"] == *expected,
                _ => false,
            };
            if !ok {
                wrong.push(format!("{frame}: expected one {expected}, got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
        assert!(
            answers.is_empty(),
            "answers to refs never sent: {answers:?}"
        );
        assert_eq!(
            refless_errors.len(),
            refless_expected,
            "refless errors: {refless_errors:?}"
        );
        for error in &refless_errors {
            assert_eq!(error["code"], "bad_frame", "{error}");
        }

        // Still open and answering.
        let alive = request(&mut alice, json!({"type": "ping", "ref": "alive"})).await;
        assert_eq!(alive, json!({"type": "reply", "ref": "alive"}));
    });
}
