//! Invalid UTF-8, and frames at the size limit.

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::frame::Frame;
use async_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use roomcast_core::hub::HubConfig;
use roomcast_core::session::SessionConfig;
use roomcast_tests::{Client, Flavor, Server, on_every_runtime, within};
use serde_json::json;

use crate::common::{expect_close, serve_with};

/// A raw data frame (masked by tungstenite, as a client's must be).
fn raw_frame(opcode: Data, payload: &[u8], fin: bool) -> Message {
    Message::Frame(Frame::message(payload.to_vec(), OpCode::Data(opcode), fin))
}

/// Sends these frames (each flushed).
async fn send_frames(client: &mut Client, frames: Vec<Message>) {
    for frame in frames {
        within("send", client.ws.send(frame)).await.expect("send");
    }
}

/// tests/ws/ covers a text frame exactly at `max_frame` (read) and one byte over (1009), and a
/// binary frame one byte over (1009). This covers the rest, with a configured limit of 4 KiB
/// (announced in `welcome`): a binary frame exactly at the limit is read (answered `bad_frame`,
/// the session goes on); a message in fragments is measured whole: exactly at the limit it is
/// read, even with a character split between fragments, one byte over it closes with 1009, and
/// so does a fragmented message past tungstenite's own cap. Invalid UTF-8 in a text message
/// closes with 1007 (RFC 6455, section 8.1), in one frame or across fragments; each closed
/// session is gone from the hub.
fn invalid_utf8_closes_1007_and_the_limit_is_exact(flavor: Flavor) {
    smol::block_on(async {
        const MAX: usize = 4096;
        let options = serve_with(SessionConfig {
            max_frame: MAX,
            ..SessionConfig::default()
        });
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;

        // At the limit: read.
        let (mut client, welcome, _) = server.connect("user=edge").await;
        assert_eq!(welcome["max_frame"], MAX);
        send_frames(&mut client, vec![Message::binary(vec![7u8; MAX])]).await;
        let error = client.next_json().await;
        assert_eq!(error["code"], "bad_frame", "{error}");
        assert!(error.get("ref").is_none(), "{error}");
        // A ping of exactly MAX bytes in three fragments, an "é" (C3 A9) split between two.
        let head = r#"{"type":"ping","ref":"frag","pad":""#;
        let pad = "x".repeat(MAX - head.len() - 2 - 2) + "é";
        let whole = format!(r#"{head}{pad}"}}"#);
        assert_eq!(whole.len(), MAX);
        let bytes = whole.as_bytes();
        let split = whole.len() - 3; // inside the "é"
        assert!(!whole.is_char_boundary(split));
        send_frames(
            &mut client,
            vec![
                raw_frame(Data::Text, &bytes[..100], false),
                raw_frame(Data::Continue, &bytes[100..split], false),
                raw_frame(Data::Continue, &bytes[split..], true),
            ],
        )
        .await;
        let (reply, before) = client.answer(&json!("frag")).await;
        assert_eq!(reply, json!({"type": "reply", "ref": "frag"}), "{before:?}");

        // One byte over, in fragments each under the limit: 1009.
        let over = format!(r#"{head}{}"}}"#, "x".repeat(MAX + 1 - head.len() - 2));
        assert_eq!(over.len(), MAX + 1);
        let (first, rest) = over.as_bytes().split_at(MAX / 2);
        send_frames(
            &mut client,
            vec![
                raw_frame(Data::Text, first, false),
                raw_frame(Data::Continue, rest, true),
            ],
        )
        .await;
        assert_eq!(expect_close(&mut client).await, Some(1009));

        // Fragments past tungstenite's cap (twice the limit): 1009 too.
        let (mut client, _, _) = server.connect("user=edge").await;
        let chunk = vec![b'x'; MAX];
        let mut frames = vec![raw_frame(Data::Text, b"{\"pad\":\"", false)];
        frames.extend((0..3).map(|_| raw_frame(Data::Continue, &chunk, false)));
        frames.push(raw_frame(Data::Continue, b"\"}", true));
        for frame in frames {
            // The server may close before the last fragments are sent.
            if within("send", client.ws.send(frame)).await.is_err() {
                break;
            }
        }
        assert_eq!(expect_close(&mut client).await, Some(1009));

        // Invalid UTF-8: a bad byte, an overlong encoding, a surrogate, a truncated sequence.
        let invalid: [&[u8]; 4] = [
            b"{\"type\":\"ping\",\"ref\":\"\xff\"}",
            b"{\"type\":\"ping\",\"ref\":\"\xc0\x80\"}",
            b"{\"type\":\"ping\",\"ref\":\"\xed\xa0\x80\"}",
            b"{\"type\":\"ping\",\"ref\":\"a\"}\xe2\x82",
        ];
        for bytes in invalid {
            let (mut client, _, _) = server.connect("user=utf8").await;
            send_frames(&mut client, vec![raw_frame(Data::Text, bytes, true)]).await;
            assert_eq!(expect_close(&mut client).await, Some(1007), "{bytes:?}");
        }
        // Across fragments: valid alone, invalid together; and a sequence cut by the end.
        let fragmented: [(&[u8], &[u8]); 2] = [
            (b"{\"type\":\"ping\",\"pad\":\"\xe2\x82", b"\x28\"}"),
            (b"{\"type\":\"ping\",\"pad\":\"\"}", b"\xe2\x82"),
        ];
        for (first, last) in fragmented {
            let (mut client, _, _) = server.connect("user=utf8").await;
            send_frames(
                &mut client,
                vec![
                    raw_frame(Data::Text, first, false),
                    raw_frame(Data::Continue, last, true),
                ],
            )
            .await;
            assert_eq!(
                expect_close(&mut client).await,
                Some(1007),
                "{first:?} {last:?}"
            );
        }
        server
            .wait_for_stats("every closed session is gone", |s| s.sessions == 0)
            .await;
    });
}

on_every_runtime!(invalid_utf8_closes_1007_and_the_limit_is_exact);
