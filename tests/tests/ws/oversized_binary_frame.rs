//! Frame size: a binary frame over the limit.

use async_tungstenite::tungstenite::Message;
use roomcast_tests::{Flavor, Read, Server, within};

use crate::common::close_code;

/// The size limit is for every frame: a binary frame over `max_frame` closes the session with
/// 1009 too (protocol sections 2 and 11). `Session::handle_binary` does not look at the size, so
/// such a frame (up to tungstenite's cap of twice `max_frame`) is read and answered `bad_frame`,
/// and the session goes on.
pub(crate) fn oversized_binary_frame_closes_with_1009(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        let mut client = server.client("big").await;
        let frame = vec![0u8; 64 * 1024 + 1];
        within("send", client.ws.send(Message::binary(frame)))
            .await
            .expect("send");
        match client.read().await {
            Read::Close(frame) => assert_eq!(close_code(&frame), Some(1009)),
            other => panic!("expected close 1009, got {other:?}"),
        }
    });
}
