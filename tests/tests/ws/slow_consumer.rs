//! A slow consumer, and its exact resume.

use std::time::Duration;

use roomcast_core::envelope::Payload;
use roomcast_core::hub::{HistoryLimit, HubConfig};
use roomcast_core::names::RoomName;
use roomcast_hyper::Options;
use roomcast_tests::{Flavor, Read, Server};
use serde_json::json;

use crate::common::{answer_close, close_code, join, payload, position, request};

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("a valid room name")
}

/// A room message from the server: `{"seq":N,"pad":"xxx…"}`.
fn numbered(seq: u64, pad: &str) -> Payload {
    payload(&format!(r#"{{"seq":{seq},"pad":"{pad}"}}"#))
}

/// A client stops reading while the server publishes to its room: once its socket and its
/// delivery channel (4 deep) are full the hub drops it as a slow consumer; when it reads again it
/// gets a gapless prefix of the messages, then close 4000 (or the end of the connection). Joining
/// again with `since` = the last id it got replays exactly the rest, in order, once each
/// (`recovered: true`), and live messages follow without a duplicate.
pub(crate) fn slow_consumer_is_dropped_and_resumes_exactly(flavor: Flavor) {
    smol::block_on(async {
        let config = HubConfig {
            room_history: HistoryLimit {
                max_messages: 5000,
                max_bytes: 1 << 30,
                max_age: Duration::from_secs(600),
            },
            ..HubConfig::default()
        };
        let server = Server::start(flavor, config, Options::default(), 4).await;
        let feed = room("feed");
        let mut slow = server.client("slow").await;
        let joined = join(&mut slow, "feed").await;

        // Publish until the hub gives up on the client (socket buffers, tungstenite's write
        // buffer and the channel full), then a few more that it misses while gone.
        let pad = "x".repeat(16 * 1024);
        let mut published = 0u64;
        for _ in 0..3000 {
            published += 1;
            server
                .hub
                .publish(feed.clone(), numbered(published, &pad))
                .await
                .expect("hub")
                .expect("stored");
            if published.is_multiple_of(8)
                && server.hub.stats().await.expect("hub").slow_consumers >= 1
            {
                break;
            }
        }
        let stats = server.hub.stats().await.expect("hub");
        assert_eq!(stats.slow_consumers, 1, "never dropped after {published}");
        for _ in 0..10 {
            published += 1;
            server
                .hub
                .publish(feed.clone(), numbered(published, &pad))
                .await
                .expect("hub")
                .expect("stored");
        }

        // The stalled client reads again: a gapless prefix, then the close.
        let mut last_id = joined["id"].clone();
        let mut got = 0u64;
        let mut end = None;
        for _ in 0..=published + 10 {
            match slow.read().await {
                Read::Json(message) => {
                    assert_eq!(message["type"], "message", "{}", message["type"]);
                    assert_eq!(message["data"]["seq"], got + 1, "a gap");
                    got += 1;
                    last_id = message["id"].clone();
                }
                Read::Other(_) => {}
                Read::Close(frame) => {
                    end = Some(format!("close {:?}", close_code(&frame)));
                    assert_eq!(close_code(&frame), Some(4000));
                    answer_close(&mut slow).await;
                    break;
                }
                Read::Gone(why) => {
                    end = Some(format!("gone: {why}"));
                    break;
                }
            }
        }
        let end = end.expect("the connection ended");
        assert!(got < published, "got all {published} messages before {end}");
        eprintln!("slow consumer: {got} of {published} messages before {end}");

        // Resume: exactly the missed ones, in order, once each.
        let mut resumed = server.client("slow").await;
        let reply = request(
            &mut resumed,
            json!({"type": "join", "ref": "resume", "room": "feed", "since": last_id}),
        )
        .await;
        assert_eq!(reply["id"], last_id, "{reply}");
        assert_eq!(reply["recovered"], true, "{reply}");
        assert_eq!(reply["replayed"], published - got, "{reply}");
        for seq in got + 1..=published {
            let message = resumed.next_json().await;
            assert_eq!(message["type"], "message");
            assert_eq!(message["data"]["seq"], seq, "replay out of order");
            assert_eq!(position(&message["id"]).1, seq, "ids follow seq");
        }
        // Live messages follow the replay, without a repeat.
        server
            .hub
            .publish(feed.clone(), numbered(published + 1, "live"))
            .await
            .expect("hub")
            .expect("stored");
        assert_eq!(resumed.next_json().await["data"]["seq"], published + 1);
    });
}
