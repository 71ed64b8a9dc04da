//! Frame size: text frames at and over the limit.

use roomcast_tests::{Client, Flavor, Read, Server};
use serde_json::json;

use crate::common::{answer_close, close_code};

/// A `ping` frame of exactly `len` bytes (padded with an unknown field, which is ignored).
fn padded_ping(reference: &str, len: usize) -> String {
    let empty = format!(r#"{{"type":"ping","ref":"{reference}","pad":""}}"#);
    let pad = "x".repeat(len.checked_sub(empty.len()).expect("room for the padding"));
    let frame = format!(r#"{{"type":"ping","ref":"{reference}","pad":"{pad}"}}"#);
    assert_eq!(frame.len(), len);
    frame
}

/// Reads until the close; the code, and whether a reply with `reference` came before it.
async fn close_after(client: &mut Client, reference: &str) -> (Option<u16>, bool) {
    let mut answered = false;
    for _ in 0..100 {
        match client.read().await {
            Read::Json(value) => answered |= value["ref"] == reference,
            Read::Other(_) => {}
            Read::Close(frame) => {
                answer_close(client).await;
                return (close_code(&frame), answered);
            }
            Read::Gone(why) => panic!("the connection ended without a close frame: {why}"),
        }
    }
    panic!("no close after 100 messages");
}

/// A frame of exactly `max_frame` bytes is read; one byte more closes the session with 1009,
/// unread; so does a frame past tungstenite's own cap (twice `max_frame`).
pub(crate) fn oversized_frame_closes_with_1009(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let (mut client, welcome, _) = server.connect("user=big").await;
        let max = usize::try_from(welcome["max_frame"].as_u64().expect("max_frame")).unwrap();
        assert_eq!(max, 64 * 1024);

        client.send_text(padded_ping("fits", max)).await;
        assert_eq!(
            client.answer(&json!("fits")).await.0,
            json!({"type": "reply", "ref": "fits"})
        );

        client.send_text(padded_ping("over", max + 1)).await;
        assert_eq!(close_after(&mut client, "over").await, (Some(1009), false));

        let (mut client, _, _) = server.connect("user=huge").await;
        client.send_text(padded_ping("huge", 3 * max)).await;
        assert_eq!(close_after(&mut client, "huge").await, (Some(1009), false));
        server
            .wait_for_stats("both sessions end", |s| s.sessions == 0)
            .await;
    });
}
