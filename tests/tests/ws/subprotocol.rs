//! The `roomcast.v1` subprotocol.

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use roomcast_hyper::SUBPROTOCOL;
use roomcast_tests::{Client, Flavor, Server, within};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

/// A handshake written by hand (for what tungstenite's client refuses to send or accept); returns
/// the response head.
async fn raw_handshake(server: &Server, target: &str, extra_headers: &str) -> String {
    let mut stream = within("connect", TcpStream::connect(server.addr))
        .await
        .expect("connect");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         {extra_headers}\r\n",
        server.addr
    );
    within("write", stream.write_all(request.as_bytes()))
        .await
        .expect("write the request");
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    for _ in 0..64 {
        let n = within("read", stream.read(&mut buffer))
            .await
            .expect("read");
        assert!(n > 0, "connection closed inside the response head");
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return String::from_utf8(head).expect("an ASCII response head");
        }
    }
    panic!("no end of the response head in 64 KiB");
}

/// `roomcast.v1` is selected when offered (alone or among others), and no subprotocol is
/// selected when it is not offered.
pub(crate) fn subprotocol_is_selected_when_offered(flavor: Flavor) {
    smol::block_on(async {
        let server = Server::default(flavor).await;
        for offer in ["roomcast.v1", "chat, roomcast.v1"] {
            let mut request = server.url("user=a").into_client_request().expect("request");
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(offer).expect("a header value"),
            );
            let (mut client, response) = within("handshake", Client::connect_request(request))
                .await
                .expect("handshake");
            assert_eq!(
                response.headers().get("sec-websocket-protocol"),
                Some(&HeaderValue::from_static(SUBPROTOCOL)),
                "offered {offer}"
            );
            assert_eq!(client.next_json().await["type"], "welcome");
        }

        let request = server.url("user=b").into_client_request().expect("request");
        let (_, response) = within("handshake", Client::connect_request(request))
            .await
            .expect("handshake");
        assert!(response.headers().get("sec-websocket-protocol").is_none());

        // Offering only something else: accepted, none selected (tungstenite's client would fail
        // such a handshake itself, so this one is written by hand).
        let head = raw_handshake(&server, "/ws?user=c", "Sec-WebSocket-Protocol: chat\r\n").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
            "{head}"
        );
    });
}
