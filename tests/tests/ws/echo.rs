//! The echo endpoint.

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use roomcast_tests::{Client, Flavor, Server, within};

/// The echo socket returns text and binary messages unchanged (non-ASCII, empty, 1 MiB), answers
/// a ping with a pong of the same payload, and echoes the close.
pub(crate) fn echo_returns_every_message_unchanged(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let url = format!("ws://{}/ws/echo", server.addr);
        let mut client = within("handshake", Client::connect(&url))
            .await
            .expect("handshake");

        let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let messages = [
            Message::text("héllo, wörld ✓ 🎉 日本語"),
            Message::text(""),
            Message::binary(vec![0u8, 255, 1, 254]),
            Message::binary(big),
            Message::text("x".repeat(100_000)),
        ];
        for message in messages {
            within("send", client.ws.send(message.clone()))
                .await
                .expect("send");
            match client.next_message().await {
                Some(Ok(echoed)) => assert!(echoed == message, "echoed differently"),
                other => panic!("expected the echo, got {other:?}"),
            }
        }

        within(
            "send",
            client.ws.send(Message::Ping("are you there".into())),
        )
        .await
        .expect("send");
        match client.next_message().await {
            Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"are you there"),
            other => panic!("expected a pong, got {other:?}"),
        }

        let close = CloseFrame {
            code: WsCloseCode::Normal,
            reason: "bye".into(),
        };
        within("close", client.ws.close(Some(close)))
            .await
            .expect("close");
        match client.next_message().await {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1000),
            other => panic!("expected the close echoed, got {other:?}"),
        }
    });
}
