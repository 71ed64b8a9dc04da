//! Typing indicators.

use roomcast_tests::{Flavor, Server};
use serde_json::json;

use crate::common::{join, request};

/// `typing` reaches every other member, never the sender; without a `ref` it gets no answer, and
/// with one a bare reply.
pub(crate) fn typing_is_relayed_to_others_only(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = server.client("alice").await;
        let mut bob = server.client("bob").await;
        let mut carol = server.client("carol").await;
        for client in [&mut alice, &mut bob, &mut carol] {
            join(client, "lobby").await;
        }
        alice.barrier().await; // the presence of bob and carol

        alice
            .send_json(json!({"type": "typing", "room": "lobby", "typing": true}))
            .await;
        let typing = json!({"type": "typing", "room": "lobby", "user": "alice", "typing": true});
        assert_eq!(bob.next_of("typing").await, typing);
        assert_eq!(carol.next_of("typing").await, typing);
        let seen = alice.barrier().await;
        assert!(seen.is_empty(), "the sender got {seen:?}");

        let reply = request(
            &mut alice,
            json!({"type": "typing", "ref": "t", "room": "lobby", "typing": false}),
        )
        .await;
        assert_eq!(reply, json!({"type": "reply", "ref": "t"}));
        let stopped = json!({"type": "typing", "room": "lobby", "user": "alice", "typing": false});
        assert_eq!(bob.next_of("typing").await, stopped);
        assert_eq!(carol.next_of("typing").await, stopped);
    });
}
