//! Heartbeat: a client that reads, and so answers every ping.

use std::time::Instant;

use async_tungstenite::tungstenite::Message;
use roomcast_core::hub::HubConfig;
use roomcast_tests::{Flavor, Read, Server};
use serde_json::json;

use crate::common::{fast_heartbeat, ms, request};

/// A client that keeps reading answers every ping and stays connected for six intervals.
pub(crate) fn reading_client_survives_the_heartbeat(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::start(flavor, HubConfig::default(), fast_heartbeat(), 64).await;
        let mut reader = server.client("reader").await;
        let until = Instant::now() + ms(1200);
        let mut pings = 0;
        for _ in 0..1000 {
            if Instant::now() >= until {
                break;
            }
            match reader.read().await {
                Read::Other(Message::Ping(_)) => pings += 1,
                other => panic!("expected pings only, got {other:?}"),
            }
        }
        assert!(pings >= 4, "only {pings} pings in 1.2 s");
        let reply = request(&mut reader, json!({"type": "ping", "ref": 1})).await;
        assert_eq!(reply, json!({"type": "reply", "ref": 1}));
        assert_eq!(server.hub.stats().await.expect("hub").sessions, 1);
    });
}
