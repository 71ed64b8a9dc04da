//! Resume at connect, from `?cursor=`.

use roomcast_core::names::UserId;
use roomcast_tests::{Flavor, Server, stream_entry};
use serde_json::json;

use crate::common::{payload, position};

/// A WebSocket connection resumes its user stream from `?cursor=` (percent-encoded): `streams`
/// says where (`recovered: true`, `replayed` = what it missed), then exactly those notifications
/// follow, in order, and nothing else. A cursor the stream cannot cover is `recovered: false`.
pub(crate) fn cursor_resumes_the_user_stream_at_connect(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let dave = UserId::new("dave").expect("a valid user");
        let (mut client, _, streams) = server.connect("user=dave").await;
        let start = stream_entry(&streams, "user")["id"].clone();
        let (epoch, offset) = position(&start);
        assert_eq!(offset, 0);

        let first = server
            .hub
            .notify(dave.clone(), Some("hello".into()), payload(r#"{"n":1}"#))
            .await
            .expect("hub")
            .expect("stored");
        assert_eq!(first.sessions, 1);
        let notify = client.next_json().await;
        assert_eq!(
            notify,
            json!({"type": "notify", "id": format!("{epoch}.1"), "event": "hello", "data": {"n": 1}})
        );
        let cursor = notify["id"].as_str().expect("an id").to_owned();
        client.close_and_wait().await;
        server
            .wait_for_stats("dave is offline", |s| s.sessions == 0)
            .await;

        // Three more while offline, one without an event.
        for n in 2..=4 {
            let event = (n != 3).then(|| "later".into());
            let published = server
                .hub
                .notify(dave.clone(), event, payload(&format!(r#"{{"n":{n}}}"#)))
                .await
                .expect("hub")
                .expect("stored");
            assert_eq!(published.sessions, 0);
        }

        let query = format!("user=dave&cursor=user%3D{}", cursor.replace('.', "%2E"));
        let (mut client, _, streams) = server.connect(&query).await;
        assert_eq!(
            stream_entry(&streams, "user"),
            json!({"stream": "user", "id": cursor, "recovered": true, "replayed": 3})
        );
        let all = stream_entry(&streams, "all");
        assert!(all.get("recovered").is_none(), "not in the cursor: {all}");
        for n in 2..=4 {
            let mut expected = json!({"type": "notify", "id": format!("{epoch}.{n}"), "event": "later", "data": {"n": n}});
            if n == 3 {
                expected.as_object_mut().unwrap().remove("event");
            }
            assert_eq!(client.next_json().await, expected);
        }
        let extra = client.barrier().await;
        assert!(extra.is_empty(), "more than the missed ones: {extra:?}");
        client.close_and_wait().await;

        // A position the stream cannot cover (another epoch, or past its last message) is not
        // recovered: the stream resumes after what was delivered, here everything, so nothing.
        let other_epoch = if epoch == "1" { "2" } else { "1" };
        for stale in [format!("{other_epoch}.2"), format!("{epoch}.99")] {
            let (mut client, _, streams) = server
                .connect(&format!("user=dave&cursor=user%3D{stale}"))
                .await;
            assert_eq!(
                stream_entry(&streams, "user"),
                json!({"stream": "user", "id": format!("{epoch}.4"), "recovered": false, "replayed": 0}),
                "cursor user={stale}"
            );
            let extra = client.barrier().await;
            assert!(extra.is_empty(), "replayed after user={stale}: {extra:?}");
            client.close_and_wait().await;
        }
    });
}
