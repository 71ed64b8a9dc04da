//! A reader that stops reading.

use std::time::Duration;

use futures_util::SinkExt;
use roomcast_core::hub::{HistoryLimit, HubConfig};
use roomcast_core::session::SessionConfig;
use roomcast_tests::{Flavor, Read, Server, on_every_runtime, within};
use serde_json::json;

use crate::common::{join, publish, request, seqs, serve_with};

/// tests/ws/ `slow_consumer_is_dropped_and_resumes_exactly` proves the drop and the exact resume
/// with the server publishing, and accepts the connection ending without a close frame. This
/// covers what it leaves open: the publisher is a client, another reader of the room is not
/// held back by the stalled one, and the stalled client, once it reads again, gets a gapless
/// prefix and then exactly the close frame 4000, never a silent end.
fn stalled_reader_gets_4000_and_others_are_not_held_back(flavor: Flavor) {
    smol::block_on(async {
        let config = HubConfig {
            room_history: HistoryLimit {
                max_messages: 5000,
                max_bytes: 1 << 30,
                max_age: Duration::from_secs(600),
            },
            ..HubConfig::default()
        };
        // The publisher sends hundreds of 16 KiB messages as fast as the server answers: over
        // the default 100/s, and the rate limit is not the fault under test.
        let options = serve_with(SessionConfig {
            rate_per_sec: 0,
            ..SessionConfig::default()
        });
        let server = Server::start(flavor, config, options, 64).await;
        let mut stalled = server.client("stalled").await;
        let joined = join(&mut stalled, "feed").await;
        let mut reader = server.client("reader").await;
        join(&mut reader, "feed").await;
        let mut publisher = server.client("publisher").await;
        join(&mut publisher, "feed").await;
        stalled.barrier().await;

        // The other reader reads everything, up to the message marked last.
        let reading = smol::spawn(async move {
            let mut messages = Vec::new();
            for _ in 0..10_000 {
                let message = reader.next_of("message").await;
                let last = message["data"]["last"] == true;
                messages.push(message);
                if last {
                    return (reader, messages);
                }
            }
            panic!("no last message in 10,000");
        });

        let pad = "x".repeat(16 * 1024);
        let mut published = 0u64;
        for _ in 0..3000 {
            published += 1;
            let data = json!({"seq": published, "pad": pad});
            publish(&mut publisher, "feed", published, data).await;
            if published.is_multiple_of(8)
                && server.hub.stats().await.expect("hub").slow_consumers >= 1
            {
                break;
            }
        }
        let stats = server.hub.stats().await.expect("hub");
        assert_eq!(stats.slow_consumers, 1, "not dropped after {published}");
        for extra in 1..=10 {
            published += 1;
            let data = json!({"seq": published, "pad": "", "last": extra == 10});
            publish(&mut publisher, "feed", published, data).await;
        }
        let (mut reader, messages) = within("the other reader", reading).await;
        assert_eq!(seqs(&messages), (1..=published).collect::<Vec<_>>());

        // The stalled client reads again: a gapless prefix, then the close, 4000.
        let mut last_id = joined["id"].clone();
        let (mut got, mut code) = (0u64, None);
        for _ in 0..10_000 {
            match stalled.read().await {
                // The others' joins, coalesced into a frame that may come after the barrier.
                Read::Json(message) if message["type"] == "presence" => {}
                Read::Json(message) => {
                    assert_eq!(message["type"], "message", "{}", message["type"]);
                    assert_eq!(message["data"]["seq"], got + 1, "a gap");
                    got += 1;
                    last_id = message["id"].clone();
                }
                Read::Other(_) => {}
                Read::Close(frame) => {
                    code = Some(frame.map(|frame| u16::from(frame.code)));
                    break;
                }
                Read::Gone(why) => panic!("ended without a close frame after {got}: {why}"),
            }
            assert!(got <= published, "more messages than published");
        }
        assert_eq!(code, Some(Some(4000)), "the slow consumer's close");
        assert!(got < published, "got all {published} before the close");
        let _ = within("flush", stalled.ws.flush()).await;

        // It resumes: exactly what it missed, in order, once each; then live messages.
        let mut resumed = server.client("stalled").await;
        let reply = request(
            &mut resumed,
            json!({"type": "join", "ref": "resume", "room": "feed", "since": last_id}),
        )
        .await;
        assert_eq!(reply["recovered"], true, "{reply}");
        assert_eq!(reply["replayed"], published - got, "{reply}");
        for seq in got + 1..=published {
            let message = resumed.next_json().await;
            assert_eq!(message["type"], "message", "{message}");
            assert_eq!(message["data"]["seq"], seq, "replay out of order");
        }
        let live = published + 1;
        let id = publish(&mut publisher, "feed", live, json!({"seq": live})).await;
        assert_eq!(resumed.next_of("message").await["id"], id);
        assert_eq!(reader.next_of("message").await["id"], id);
        let extra = resumed.barrier().await;
        assert!(extra.is_empty(), "more after the live message: {extra:?}");
    });
}

on_every_runtime!(stalled_reader_gets_4000_and_others_are_not_held_back);
