//! Graceful shutdown over real connections: stop accepting, tell every client when to come back,
//! keep delivering through the grace period, then close with 1001.

use std::time::Duration;

use roomcast_core::hub::HubConfig;
use roomcast_core::session::SessionConfig;
use roomcast_hyper::Options;
use roomcast_io::{SessionOptions, Shutdown};
use roomcast_tests::{Client, Flavor, Server, WAIT, on_every_runtime};
use serde_json::json;

fn shutdown_warns_clients_then_closes_with_1001_and_stops_accepting(flavor: Flavor) {
    smol::block_on(async {
        let shutdown = Shutdown::new();
        let config = SessionConfig {
            shutdown_grace: Duration::from_millis(300),
            ..SessionConfig::default()
        };
        let session = SessionOptions {
            config,
            shutdown: shutdown.clone(),
            ..SessionOptions::default()
        };
        let options = Options {
            session,
            ..Options::default()
        };
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;
        let mut alice = server.client("alice").await;
        let mut bob = server.client("bob").await;
        for client in [&mut alice, &mut bob] {
            client
                .send_json(json!({"type": "join", "ref": 1, "room": "lobby"}))
                .await;
            client.next_of("reply").await;
        }
        assert_eq!(shutdown.sessions(), 2);

        shutdown.trigger(1500);
        for client in [&mut alice, &mut bob] {
            let notice = client.next_of("shutdown").await;
            roomcast_tests::assert_reconnect_hint(&notice, 1500);
        }
        // Messages still flow during the grace period.
        server
            .hub
            .publish(
                "lobby".parse().expect("room"),
                roomcast_core::envelope::Payload::from_json("1").expect("JSON"),
            )
            .await
            .expect("hub")
            .expect("stored");
        assert_eq!(alice.next_of("message").await["data"], 1);
        for client in [&mut alice, &mut bob] {
            assert_eq!(client.close_code().await, Some(1001));
        }
        let drained = async {
            shutdown.drained().await;
            true
        };
        let waited = async {
            smol::Timer::after(WAIT).await;
            false
        };
        assert!(
            futures_lite::future::or(drained, waited).await,
            "every session ended"
        );
        // No new connection is accepted.
        assert!(Client::connect(&server.url("user=carol")).await.is_err());
    });
}

on_every_runtime!(shutdown_warns_clients_then_closes_with_1001_and_stops_accepting);
