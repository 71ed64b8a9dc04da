//! `idle`: the server's resident memory per idle WebSocket and per idle SSE stream.

use std::time::{Duration, Instant};

use super::client::{open_all, ws_connect, ws_connect_on, ws_wait};
use super::dial::Dial;
use super::fanout::Transport;
use super::http::SseClient;
use super::peers::stomp_connect;
use super::procs::ServerProc;
use super::{Ctx, Kind, wait_quiet};

pub(crate) struct IdleResult {
    pub(crate) before_kib: u64,
    pub(crate) after_kib: u64,
    /// (after − before) / C, in KiB.
    pub(crate) per_connection_kib: f64,
}

/// Opens one connection the way the scenario does, and keeps it until it is dropped.
async fn open(
    addr: std::net::SocketAddr,
    kind: Kind,
    transport: Transport,
    i: usize,
    dial: &Dial,
) -> Result<Box<dyn Send>, String> {
    Ok(match (transport, kind) {
        (Transport::Ws, Kind::Roomcast) if matches!(dial, Dial::Tls(_)) => {
            let stream = dial.tls_http1(addr).await?;
            let url = format!("wss://localhost:{}/ws?user=u{i}", addr.port());
            let mut ws = ws_connect_on(stream, &url).await?;
            ws_wait(&mut ws, "welcome", |t| {
                t.starts_with(r#"{"type":"welcome""#)
            })
            .await?;
            Box::new(ws)
        }
        (Transport::Ws, Kind::Roomcast) => {
            let mut ws = ws_connect(addr, &format!("/ws?user=u{i}")).await?;
            ws_wait(&mut ws, "welcome", |t| {
                t.starts_with(r#"{"type":"welcome""#)
            })
            .await?;
            Box::new(ws)
        }
        (Transport::Ws, Kind::Baseline) => Box::new(ws_connect(addr, "/").await?),
        // Connected and subscribed to nothing, as the WebSocket above joined nothing.
        (Transport::Stomp, kind) => Box::new(stomp_connect(addr, kind, i).await?),
        // Nchan's WebSocket is a subscription: subscribed, to a channel nobody publishes on.
        (Transport::Nchan, _) => Box::new(ws_connect(addr, "/sub/idle").await?),
        // Socket.IO's peer joins every socket to its room.
        (Transport::SocketIo, _) => Box::new(super::socketio::subscribe(addr).await?),
        (Transport::Sse, Kind::Roomcast) => {
            let path = format!("/events?user=u{i}");
            let mut sse = dial.sse(addr, &path, i).await?;
            sse.wait_for("streams").await?;
            Box::new(sse)
        }
        (Transport::Sse, Kind::Baseline) => {
            let mut sse = SseClient::connect(addr, "/events").await?;
            sse.wait_for("").await?;
            Box::new(sse)
        }
    })
}

/// Run on a fresh server: an allocator keeps freed memory, so a second measurement in the same
/// process would read low.
pub(crate) async fn run(
    ctx: &Ctx,
    server: &ServerProc,
    kind: Kind,
    transport: Transport,
    dial: &Dial,
    deadline: Instant,
) -> Result<IdleResult, String> {
    let addr = server.addr;
    // One connection first, so lazily built state (the hub's tables, thread-local caches)
    // counts in "before", not per connection.
    drop(open(addr, kind, transport, 0, dial).await?);
    wait_quiet(server, deadline).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before_kib = server.rss_kib()?;
    let bar = ctx.bar(ctx.connections as u64, "idle: connecting");
    let held = open_all(ctx.connections, ctx.concurrency, deadline, &bar, |i| {
        let dial = dial.clone();
        async move { open(addr, kind, transport, i, &dial).await }
    })
    .await?;
    bar.finish_and_clear();
    wait_quiet(server, deadline).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_kib = server.rss_kib()?;
    drop(held);
    Ok(IdleResult {
        before_kib,
        after_kib,
        per_connection_kib: after_kib.saturating_sub(before_kib) as f64 / ctx.connections as f64,
    })
}
