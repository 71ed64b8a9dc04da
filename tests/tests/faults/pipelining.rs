//! A burst of pipelined requests: a bug, found by the flood of `malformed_flood`, and fixed.
//!
//! The bug: a client with more than 64 requests in flight was closed with 4000 as a slow
//! consumer, after exactly 64 replies, every time, on both runtimes, though it read every
//! answer. The session task forwarded each request to the hub without waiting
//! (`session_task.rs`, `hub.request(id, request).await`), so the 100 joins queued up in the
//! hub's command channel before the hub task ran; the hub then answered them back to back,
//! `try_send`ing each reply into the session's delivery channel of `session_capacity` (64 in
//! `roomcast serve`) before the session could take any, and marked the session a slow consumer
//! on the 65th (`hub_task.rs`, `Channels::deliver`, since replaced).
//!
//! The first fix capped each session's requests in flight at a quarter of its mailbox. Since the
//! hub became a shared one that each caller drives inline (`transports/io/src/hub.rs`), there is
//! no queue to pile up in: the session hands each request to the hub in its own task, takes the
//! answers from its mailbox at once and writes them with the same flush, so it reads its client
//! no further ahead than one write, and the client's own TCP window holds the rest.

use std::collections::BTreeSet;

use async_tungstenite::tungstenite::Message;
use futures_util::SinkExt;
use roomcast_core::hub::HubConfig;
use roomcast_hyper::Options;
use roomcast_tests::{Flavor, Read, Server, on_every_runtime, within};
use serde_json::json;

/// A client may be in 100 rooms and send 200 messages at once (protocol section 11). One that
/// pipelines 100 joins (as a client rejoining its rooms after a reconnect may) and reads every
/// answer as it comes must get 100 replies, not a slow consumer's close: its outbound volume is
/// a few kilobytes, far within the 1 MiB and 4,096 frames of the outbound queue.
fn pipelined_joins_are_all_answered(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::start(flavor, HubConfig::default(), Options::default(), 64).await;
        let mut client = server.client("rejoining").await;
        for i in 0..100 {
            let join = json!({"type": "join", "ref": i, "room": format!("r{i}")});
            within("feed", client.ws.feed(Message::text(join.to_string())))
                .await
                .expect("send");
        }
        within("flush", client.ws.flush()).await.expect("flush");
        let mut replies = BTreeSet::new();
        for _ in 0..10_000 {
            if replies.len() == 100 {
                break;
            }
            match client.read().await {
                Read::Json(value) if value["type"] == "reply" => {
                    assert!(replies.insert(value["ref"].to_string()), "twice: {value}");
                }
                Read::Json(value) => assert_eq!(value["type"], "presence", "{value}"),
                Read::Other(_) => {}
                Read::Close(frame) => panic!(
                    "closed {:?} after {} of 100 replies",
                    frame.map(|f| u16::from(f.code)),
                    replies.len()
                ),
                Read::Gone(why) => panic!("gone after {} replies: {why}", replies.len()),
            }
        }
        assert_eq!(replies.len(), 100);
        assert_eq!(server.hub.stats().await.expect("hub").slow_consumers, 0);
    });
}

on_every_runtime!(pipelined_joins_are_all_answered);
