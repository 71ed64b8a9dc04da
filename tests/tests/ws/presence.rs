//! Rooms: presence diffs, and publishes to the other members.

use std::time::{Duration, Instant};

use roomcast_core::hub::HubConfig;
use roomcast_hyper::Options;
use roomcast_tests::{Flavor, Server};
use serde_json::json;

use crate::common::{join, ms, position, request, sleep};

/// A hub configuration with a short presence grace.
fn hub_with_grace(grace: Duration) -> HubConfig {
    HubConfig {
        presence_grace: grace,
        ..HubConfig::default()
    }
}

/// Presence diffs: a second user's join is announced; a second session of a user already present
/// changes nothing; a reload within the grace does not flap (no leave, no join, even after the
/// grace would have ended); an explicit leave is announced at once; a disconnect is announced
/// after the grace, not before. Publishes reach the other members, not the publisher.
pub(crate) fn presence_and_publish_in_a_room(flavor: Flavor) {
    smol::block_on(async {
        let grace = ms(300);
        let server = Server::start(flavor, hub_with_grace(grace), Options::default(), 64).await;
        let mut alice = server.client("alice").await;
        assert_eq!(join(&mut alice, "lobby").await["members"], json!(["alice"]));

        let mut bob = server.client("bob").await;
        assert_eq!(
            join(&mut bob, "lobby").await["members"],
            json!(["alice", "bob"])
        );
        assert_eq!(
            alice.next_json().await,
            json!({"type": "presence", "room": "lobby", "joins": ["bob"], "leaves": []})
        );

        // Publish: the other member gets it with its id and sender; the publisher only a reply.
        let reply = request(
            &mut bob,
            json!({"type": "publish", "ref": 2, "room": "lobby", "data": {"text": "hi"}}),
        )
        .await;
        let (_, offset) = position(&reply["id"]);
        assert_eq!(offset, 1);
        assert_eq!(
            reply,
            json!({"type": "reply", "ref": 2, "room": "lobby", "id": reply["id"]})
        );
        assert_eq!(
            alice.next_json().await,
            json!({"type": "message", "room": "lobby", "id": reply["id"], "from": "bob", "data": {"text": "hi"}})
        );
        assert!(bob.barrier().await.is_empty(), "the publisher got more");

        // A second session of bob: one member, no presence.
        let mut bob_tab = server.client("bob").await;
        assert_eq!(
            join(&mut bob_tab, "lobby").await["members"],
            json!(["alice", "bob"])
        );
        // The first session closes: bob is still present through the other one.
        bob.close_and_wait().await;
        // A reload: the last session closes and a new one joins within the grace.
        bob_tab.close_and_wait().await;
        let mut bob_again = server.client("bob").await;
        assert_eq!(
            join(&mut bob_again, "lobby").await["members"],
            json!(["alice", "bob"])
        );
        // Past the end of the grace the reload started: a flap would have arrived by now.
        sleep(grace + ms(150)).await;
        let seen = alice.barrier().await;
        assert!(seen.is_empty(), "presence flapped: {seen:?}");

        // An explicit leave is announced at once.
        let mut carol = server.client("carol").await;
        join(&mut carol, "lobby").await;
        assert_eq!(alice.next_json().await["joins"], json!(["carol"]));
        let left = request(
            &mut carol,
            json!({"type": "leave", "ref": 3, "room": "lobby"}),
        )
        .await;
        assert_eq!(left, json!({"type": "reply", "ref": 3, "room": "lobby"}));
        assert_eq!(
            alice.next_json().await,
            json!({"type": "presence", "room": "lobby", "joins": [], "leaves": ["carol"]})
        );

        // A disconnect: announced once the grace has passed, not before.
        let closed = Instant::now();
        bob_again.close_and_wait().await;
        assert_eq!(
            alice.next_json().await,
            json!({"type": "presence", "room": "lobby", "joins": [], "leaves": ["bob"]})
        );
        let waited = closed.elapsed();
        assert!(
            waited >= grace,
            "the leave came after {waited:?}, before the grace"
        );
    });
}
