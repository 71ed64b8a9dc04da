//! Reading a room one may not: a third user in a private conversation, by WebSocket join (with
//! a resume), SSE `?rooms=` and long-poll; and the subscription token that does let one in.

use roomcast_tests::http::get;
use roomcast_tests::within;
use serde_json::json;

use super::{client, server, token};

const PRIVATE: &str = "[namespaces.private]\njoin = [\"claim\", \"token\"]\n";

#[test]
fn mallory_cannot_read_a_private_room_on_any_transport() {
    let server = server(PRIVATE, &[]);
    smol::block_on(async {
        let alice = token("alice", &["--rooms", "private:alice-*"]);
        let mut a = client(&server, &alice).await;
        a.send_json(json!({"type":"join","ref":1,"room":"private:alice-bob"}))
            .await;
        let (joined, _) = a.answer(&json!(1)).await;
        assert_eq!(joined["type"], "reply", "{joined}");
        let secret = json!({"text":"the password is hunter2"});
        a.send_json(json!({"type":"publish","ref":2,"room":"private:alice-bob","data":secret}))
            .await;
        let (said, _) = a.answer(&json!(2)).await;
        let id = said["id"].as_str().expect("an id").to_owned();
        let since = format!("{}.0", id.split('.').next().expect("epoch"));

        let mallory = token("mallory", &[]);
        let mut m = client(&server, &mallory).await;
        m.send_json(json!({"type":"join","ref":1,"room":"private:alice-bob","since":since}))
            .await;
        let (refused, seen) = m.answer(&json!(1)).await;
        assert_eq!(refused["code"], "unauthorized", "{refused}");
        assert!(
            !seen
                .iter()
                .chain([&refused])
                .any(|m| m.to_string().contains("hunter2")),
            "{seen:?}"
        );

        for path in ["events", "poll"] {
            let target = format!("/{path}?token={mallory}&rooms=private:alice-bob&timeout=1");
            let response = get(server.addr, &target, &[]).await;
            assert_eq!(response.status, 403, "{path}");
            let body = response.text().await;
            assert!(
                body.contains("unauthorized") && !body.contains("hunter2"),
                "{body}"
            );
        }

        // A subscription token for the room lets bob in, once.
        let bob = token("bob", &[]);
        let ticket = token("bob", &["--room", "private:alice-bob", "--ttl", "1m"]);
        let mut b = client(&server, &bob).await;
        b.send_json(
            json!({"type":"join","ref":1,"room":"private:alice-bob","since":since,"token":ticket}),
        )
        .await;
        let (joined, _) = b.answer(&json!(1)).await;
        assert_eq!(joined["replayed"], 1, "{joined}");
        let replayed = within("the replay", b.next_of("message")).await;
        assert_eq!(replayed["data"], secret, "{replayed}");
        // mallory cannot use bob's.
        m.send_json(json!({"type":"join","ref":2,"room":"private:alice-bob","token":ticket}))
            .await;
        let (refused, _) = m.answer(&json!(2)).await;
        assert_eq!(refused["code"], "unauthorized", "{refused}");
        // Over SSE, the token comes as ?room_tokens=.
        let target = format!(
            "/poll?token={bob}&rooms=private:alice-bob&room_tokens={ticket}&timeout=1&cursor=room:private:alice-bob={since}"
        );
        let response = get(server.addr, &target, &[]).await;
        assert_eq!(response.status, 200);
        assert!(response.text().await.contains("hunter2"));
    });
}

#[test]
fn a_room_of_an_unknown_namespace_does_not_exist() {
    let server = server("", &[]);
    smol::block_on(async {
        let alice = token("alice", &[]);
        let mut a = client(&server, &alice).await;
        a.send_json(json!({"type":"join","ref":1,"room":"private:alice-bob"}))
            .await;
        let (refused, _) = a.answer(&json!(1)).await;
        assert_eq!(refused["code"], "unauthorized", "{refused}");
        assert!(
            refused["message"]
                .as_str()
                .expect("text")
                .contains("not configured")
        );
    });
}
