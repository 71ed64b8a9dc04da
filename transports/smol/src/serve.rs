//! Accept loops: the roomcast protocol over WebSocket, and a plain echo socket.

use std::io;
use std::sync::Arc;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use futures_util::{SinkExt, StreamExt};
use roomcast_core::cursor::Cursor;
use roomcast_core::hub::Connect;
use roomcast_core::names::UserId;
use roomcast_io::{HubHandle, SessionOptions, run_session};
use smol::net::{TcpListener, TcpStream};

use crate::SmolRuntime;
use crate::websocket::{WsTransport, websocket_config};

/// The subprotocol of roomcast protocol v1, selected when a client offers it.
pub const SUBPROTOCOL: &str = "roomcast.v1";

/// Why a handshake is refused: the HTTP status and a message for the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 401, 403...
    pub status: u16,
    /// Why, for people.
    pub message: String,
}

/// Decides who a handshake is, from its request (query, headers), or refuses it.
pub type Authenticate = Arc<dyn Fn(&Request) -> Result<Connect, Refusal> + Send + Sync>;

/// How [`serve`] runs connections.
#[derive(Clone)]
pub struct ServeOptions {
    /// The sessions' options; `session.config` also sets tungstenite's limits.
    pub session: SessionOptions,
    /// Who a handshake is. The default is a development mode: `?user=NAME` names the user, and
    /// `?cursor=` resumes from a cursor.
    pub authenticate: Authenticate,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            session: SessionOptions::default(),
            authenticate: Arc::new(user_from_query),
        }
    }
}

/// Development-mode authentication: `?user=NAME` (required), `?cursor=` (optional).
pub fn user_from_query(request: &Request) -> Result<Connect, Refusal> {
    let query = request.uri().query().unwrap_or("");
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| percent_decode(value))
    };
    let refuse = |message: String| Refusal {
        status: 401,
        message,
    };
    let user = param("user").ok_or_else(|| refuse("no user: connect with ?user=NAME".into()))?;
    let user = UserId::new(&user).map_err(|e| refuse(format!("user {user:?} {e}")))?;
    let cursor = match param("cursor") {
        Some(text) => Some(text.parse::<Cursor>().map_err(|e| Refusal {
            status: 400,
            message: format!("cursor: {e}"),
        })?),
        None => None,
    };
    Ok(Connect {
        user,
        broadcast: true,
        rooms: Vec::new(),
        cursor,
    })
}

/// Decodes `%XX` escapes and `+` of a query value; invalid escapes are kept as they are.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Accepts connections, each in its own task: the WebSocket handshake (refused with its HTTP
/// status when authentication fails), then a session until it ends. Returns once
/// `options.session.shutdown` is triggered: no new connection is accepted, and the sessions
/// finish their shutdown (`Shutdown::drained` tells when they are all gone).
pub async fn serve(listener: TcpListener, hub: HubHandle, options: ServeOptions) -> io::Result<()> {
    let shutdown = options.session.shutdown.clone();
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            shutdown.triggered().await;
            None
        });
        let Some(accepted) = accepted.await else {
            return Ok(());
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of descriptors, or a connection aborted before accept: not the server's end.
            Err(_) => {
                smol::Timer::after(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (hub, options) = (hub.clone(), options.clone());
        smol::spawn(async move { connection(stream, hub, options).await }).detach();
    }
}

async fn connection(stream: TcpStream, hub: HubHandle, options: ServeOptions) {
    let _ = stream.set_nodelay(true);
    let mut connect = None;
    #[allow(clippy::result_large_err)] // the signature of tungstenite's handshake callback
    let callback = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        match (options.authenticate)(request) {
            Ok(accepted) => connect = Some(accepted),
            Err(refusal) => {
                let mut error = ErrorResponse::new(Some(refusal.message));
                *error.status_mut() =
                    StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN);
                return Err(error);
            }
        }
        let offered = request.headers().get_all("sec-websocket-protocol");
        let offers_v1 = offered
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|name| name.trim() == SUBPROTOCOL);
        if offers_v1 {
            response.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static(SUBPROTOCOL),
            );
        }
        Ok(response)
    };
    let config = websocket_config(&options.session.config);
    // The upgrade must complete in time, or a client that never finishes its request (slowloris)
    // would hold a socket and a task forever.
    let handshake = async {
        Some(async_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await)
    };
    let deadline = async {
        smol::Timer::after(options.session.config.handshake_timeout).await;
        None
    };
    let Some(Ok(ws)) = futures_lite::future::or(handshake, deadline).await else {
        return; // too slow, or a bad handshake answered with its HTTP error by tungstenite
    };
    let Some(connect) = connect else { return };
    let _ = run_session(
        &SmolRuntime,
        &hub,
        WsTransport::new(ws),
        connect,
        options.session,
    )
    .await;
}

/// A plain echo socket: every text and binary message comes back unchanged; pings are answered
/// and close frames echoed. For conformance testing (Autobahn) and for trying a client out.
pub async fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let config = async_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    let Ok(mut ws) = async_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            // Pongs are queued by tungstenite; flush them out now.
            Message::Ping(_) | Message::Pong(_) => {
                if ws.flush().await.is_err() {
                    return;
                }
                continue;
            }
            // tungstenite replies to a close itself and ends the stream.
            Message::Close(_) | Message::Frame(_) => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
    let _ = ws.flush().await;
}

/// Accepts echo connections forever, each in its own task.
pub async fn serve_echo(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        smol::spawn(echo(stream)).detach();
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            percent_decode("room%3Alobby%3D1f.2%2Cuser%3D3.4"),
            "room:lobby=1f.2,user=3.4"
        );
        assert_eq!(percent_decode("Zo%C3%AB+M"), "Zoë M");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
