//! Rooms: the basic chat of two clients.

use roomcast_tests::{Flavor, Server};
use serde_json::json;

/// The basic chat: a join reply lists the members, the others see the join, and a publish reaches
/// them with its id and sender.
pub(crate) fn two_clients_chat_in_a_room_with_presence(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = server.client("alice").await;
        let mut bob = server.client("bob").await;
        alice
            .send_json(json!({"type": "join", "ref": 1, "room": "lobby"}))
            .await;
        let reply = alice.next_of("reply").await;
        assert_eq!(reply["members"], json!(["alice"]));
        bob.send_json(json!({"type": "join", "ref": 1, "room": "lobby"}))
            .await;
        assert_eq!(
            bob.next_of("reply").await["members"],
            json!(["alice", "bob"])
        );
        assert_eq!(alice.next_of("presence").await["joins"], json!(["bob"]));
        bob.send_json(
            json!({"type": "publish", "ref": 2, "room": "lobby", "data": {"text": "hi"}}),
        )
        .await;
        let id = bob.next_of("reply").await["id"].clone();
        let message = alice.next_of("message").await;
        assert_eq!(
            message,
            json!({"type": "message", "room": "lobby", "id": id, "from": "bob", "data": {"text": "hi"}})
        );
    });
}
