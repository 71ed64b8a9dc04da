//! Frames that are JSON arrays.

use roomcast_tests::{Flavor, Server};
use serde_json::{Value, json};

/// A frame must be a JSON object: a JSON array is `bad_frame`, answered without a `ref` (its
/// `ref` cannot be read). The codec's serde-derived `Wire` struct also accepts a sequence, which
/// it reads positionally (`type`, `ref`, `data`, `room`, ...), so `["ping","a"]` is answered as a
/// ping with ref "a" and `["join","j",null,"lobby"]` joins `lobby`.
pub(crate) fn json_array_frames_are_bad_frames(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = server.client("alice").await;
        alice.send_text(r#"["ping","a"]"#.into()).await;
        alice.send_text(r#"["join","j",null,"lobby"]"#.into()).await;
        let seen = alice.barrier().await;
        let expected = json!({"type": "error", "code": "bad_frame"});
        let summary: Vec<Value> = seen
            .iter()
            .map(|v| json!({"type": v["type"], "ref": v.get("ref"), "code": v.get("code")}))
            .collect();
        assert!(
            seen.len() == 2
                && seen.iter().all(|v| v["type"] == expected["type"]
                    && v["code"] == expected["code"]
                    && v.get("ref").is_none()),
            "expected two bad_frame errors without ref, got {summary:?}"
        );
    });
}
