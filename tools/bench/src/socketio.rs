//! Socket.IO 4.8 on Node as a peer (`tools/bench/peers/socketio/server.mjs`, ten lines: every
//! socket joins one room; `POST /publish` emits to it): started by the tool on a free loopback
//! port, the Node process itself measured (one thread of JavaScript, as roomcast runs one).
//! Its clients speak Engine.IO 4 over a WebSocket: the open packet (`0{...}`), a connect to
//! the default namespace (`40`, answered `40{"sid":...}`), then events as `42["message",...]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use async_tungstenite::tungstenite::Message;

use super::client::{WsClient, ws_connect, ws_wait};
use super::procs::{ServerProc, ServerSpec, free_addr};

/// The peer's directory, beside this crate's sources.
fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/socketio")
}

/// Starts the Socket.IO server on a free port, as `label`; waits until it accepts.
pub(crate) async fn start(label: &'static str) -> Result<ServerProc, String> {
    let dir = dir();
    if !dir.join("node_modules/socket.io").exists() {
        return Err(format!(
            "{}: socket.io is not installed: (cd {} && npm ci) to run Socket.IO as a peer",
            dir.display(),
            dir.display()
        ));
    }
    let addr: SocketAddr = free_addr()?;
    let spec = ServerSpec {
        label,
        program: "node".into(),
        args: vec![
            dir.join("server.mjs").to_string_lossy().into_owned(),
            addr.to_string(),
        ],
        env: Vec::new(),
        wrapper: Vec::new(),
    };
    ServerProc::start(spec, addr).await
}

/// A Socket.IO client connected to the default namespace, so in the room `bench`.
pub(crate) async fn subscribe(addr: SocketAddr) -> Result<WsClient, String> {
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await?;
    ws_wait(&mut ws, "the Engine.IO open packet", |t| {
        t.starts_with("0{")
    })
    .await?;
    ws.send(Message::text("40"))
        .await
        .map_err(|e| format!("Socket.IO connect: {e}"))?;
    ws_wait(&mut ws, "the namespace's connect", |t| t.starts_with("40")).await?;
    Ok(ws)
}
