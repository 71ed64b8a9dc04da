//! Connecting: the first frames of a connection.

use roomcast_tests::{Client, Flavor, Server, within};
use serde_json::{Value, json};

use crate::common::{next_text, position};

/// A connection starts with `welcome` (every field, in the protocol's order, the defaults) and
/// then `streams`: the user's outbox and, since the development auth follows the broadcast feed,
/// `all`, both fresh (offset 0, nothing replayed, no `recovered` without a cursor).
pub(crate) fn connect_gets_welcome_then_streams(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = within("handshake", Client::connect(&server.url("user=alice")))
            .await
            .expect("handshake");

        let welcome = next_text(&mut alice).await;
        let session = serde_json::from_str::<Value>(&welcome).expect("JSON")["session"].clone();
        assert!(session.as_str().is_some_and(|s| !s.is_empty()), "{welcome}");
        assert_eq!(
            welcome,
            format!(
                r#"{{"type":"welcome","protocol":1,"session":{session},"user":"alice","ping_interval_ms":25000,"ping_timeout_ms":10000,"max_frame":65536}}"#
            )
        );

        let streams_text = next_text(&mut alice).await;
        let streams: Value = serde_json::from_str(&streams_text).expect("JSON");
        let entries = streams["streams"].as_array().expect("a list");
        let names: Vec<&Value> = entries.iter().map(|entry| &entry["stream"]).collect();
        assert_eq!(names, [&json!("user"), &json!("all")], "{streams_text}");
        for entry in entries {
            assert_eq!(position(&entry["id"]).1, 0, "a fresh stream: {entry}");
            assert_eq!(entry["replayed"], 0, "{entry}");
        }
        assert_eq!(
            streams_text,
            format!(
                r#"{{"type":"streams","streams":[{{"stream":"user","id":{},"replayed":0,"unread":0}},{{"stream":"all","id":{},"replayed":0}}]}}"#,
                entries[0]["id"], entries[1]["id"]
            )
        );

        // A percent-encoded, non-ASCII user id is decoded; each session has its own id.
        let (_zoe, welcome, _) = server.connect("user=Zo%C3%AB%20M%C3%BCller").await;
        assert_eq!(welcome["user"], "Zoë Müller");
        assert_ne!(welcome["session"], session);
    });
}
