//! A handshake that never completes.

use roomcast_core::hub::HubConfig;
use roomcast_core::session::SessionConfig;
use roomcast_tests::{Flavor, Server, within};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

use crate::common::{ms, serve_with, sleep};

/// A connection that does not complete its upgrade within `handshake_timeout` is dropped
/// (protocol section 12, 4008: before the upgrade there is no WebSocket to carry the code, so the
/// TCP connection ends). `serve` awaits tungstenite's handshake with no deadline, and the
/// session's handshake timer starts only after the upgrade, so a connection that sends nothing,
/// or half a request, holds its task and socket for as long as the peer likes.
pub(crate) fn stalled_handshake_is_dropped(flavor: Flavor) {
    smol::block_on(async {
        let options = serve_with(SessionConfig {
            handshake_timeout: ms(200),
            ..SessionConfig::default()
        });
        let server = Server::start(flavor, HubConfig::default(), options, 64).await;
        for partial in ["", "GET /ws?user=a HTTP/1.1\r\nHost: x\r\n"] {
            let mut stream = within("connect", TcpStream::connect(server.addr))
                .await
                .expect("connect");
            within("write", stream.write_all(partial.as_bytes()))
                .await
                .expect("write");
            // Whatever the server says (an HTTP 408, say), it must then end the connection.
            let ended = async {
                let mut buffer = [0u8; 1024];
                for _ in 0..64 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return true,
                        Ok(_) => continue,
                    }
                }
                false
            };
            let limit = ms(2000);
            let timeout = async {
                sleep(limit).await;
                false
            };
            assert!(
                futures_lite::future::or(ended, timeout).await,
                "still open {limit:?} after sending {partial:?}, with a 200 ms handshake timeout"
            );
        }
    });
}
