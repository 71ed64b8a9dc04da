//! Direct messages, to online and offline users.

use roomcast_tests::{Flavor, Server, stream_entry};
use serde_json::json;

use crate::common::{next_text, position, request};

/// `direct` to an online user reaches every session of theirs (`delivered: true`), with `data`
/// relayed byte for byte; to an offline user it waits (`delivered: false`) and arrives right after
/// `streams` when they connect, which counts it as replayed.
pub(crate) fn direct_messages_with_receipts(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut alice = server.client("alice").await;
        let mut bob = server.client("bob").await;
        let mut bob_tab = server.client("bob").await;

        let reply = request(
            &mut alice,
            json!({"type": "direct", "ref": 1, "to": "bob", "data": {"x": [1, 2]}}),
        )
        .await;
        assert_eq!(
            reply,
            json!({"type": "reply", "ref": 1, "id": reply["id"], "delivered": true})
        );
        let direct =
            json!({"type": "direct", "id": reply["id"], "from": "alice", "data": {"x": [1, 2]}});
        assert_eq!(bob.next_json().await, direct);
        assert_eq!(bob_tab.next_json().await, direct);
        assert!(alice.barrier().await.is_empty(), "the sender got a copy");

        // The payload's text is relayed as sent, whitespace and number forms included.
        alice
            .send_text(r#"{"type":"direct","to":"bob","data":{ "b" : [1, 2.50] }}"#.into())
            .await;
        let text = next_text(&mut bob).await;
        assert!(
            text.ends_with(r#","from":"alice","data":{ "b" : [1, 2.50] }}"#),
            "{text}"
        );

        // Offline: stored, not an error even though carol has never connected.
        let reply = request(
            &mut alice,
            json!({"type": "direct", "ref": 2, "to": "carol", "data": "hey"}),
        )
        .await;
        assert_eq!(
            reply,
            json!({"type": "reply", "ref": 2, "id": reply["id"], "delivered": false})
        );
        let (epoch, offset) = position(&reply["id"]);
        let (mut carol, _, streams) = server.connect("user=carol").await;
        let user = stream_entry(&streams, "user");
        assert_eq!(
            user,
            json!({"stream": "user", "id": format!("{epoch}.{}", offset - 1), "replayed": 1, "unread": 1})
        );
        assert_eq!(
            carol.next_json().await,
            json!({"type": "direct", "id": reply["id"], "from": "alice", "data": "hey"})
        );
        assert!(carol.barrier().await.is_empty());
    });
}
