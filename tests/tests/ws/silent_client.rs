//! Heartbeat: a client that never answers a ping.

use std::time::Instant;

use async_tungstenite::tungstenite::Message;
use roomcast_core::hub::HubConfig;
use roomcast_tests::{Client, Flavor, Read, Server, within};

use crate::common::{answer_close, close_code, fast_heartbeat, ms};

/// A client that never reads never answers a ping (tungstenite pongs while reading): the server
/// closes it with 4001, no sooner than interval + timeout, and the close frame follows the
/// welcome, the streams and the unanswered ping.
pub(crate) fn silent_client_is_closed_with_4001(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::start(flavor, HubConfig::default(), fast_heartbeat(), 64).await;
        let started = Instant::now();
        let mut silent = within("handshake", Client::connect(&server.url("user=silent")))
            .await
            .expect("handshake");
        server
            .wait_for_stats("the session registers", |s| s.sessions == 1)
            .await;
        server
            .wait_for_stats("the silent session expires", |s| s.sessions == 0)
            .await;
        let expired = started.elapsed();
        assert!(expired >= ms(400), "expired after {expired:?}");

        let mut kinds = Vec::new();
        let mut pings = 0;
        let mut code = None;
        for _ in 0..100 {
            match silent.read().await {
                Read::Json(value) => kinds.push(value["type"].clone()),
                Read::Other(Message::Ping(_)) => pings += 1,
                Read::Other(other) => panic!("unexpected {other:?}"),
                Read::Close(frame) => {
                    code = close_code(&frame);
                    answer_close(&mut silent).await;
                    break;
                }
                Read::Gone(why) => panic!("the connection ended without a close frame: {why}"),
            }
        }
        assert_eq!(kinds, ["welcome", "streams"]);
        assert!(pings >= 1, "no ping before the close");
        assert_eq!(code, Some(4001));
    });
}
