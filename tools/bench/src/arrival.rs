//! `arrival`: C subscribers arrive at once, 500 in flight at a time, and subscribe to one room:
//! the time until all are subscribed, the presence frames each got (roomcast's subscribers
//! join with presence on, as users of a chat room do), the server's CPU, and then its memory
//! per subscribed idle connection. Against Nchan (`nchan.rs`), whose subscribe (a WebSocket
//! handshake on a channel) is the fastest of the peers. On roomcast a second fresh server takes
//! the same subscribers one at a time, for the memory per connection that never saw a storm.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;

use super::client::{AbortOnDrop, WsClient, open_all, roomcast_join, ws_connect};
use super::procs::ServerProc;
use super::report::Report;
use super::scenarios::{finish, pair, start_with};
use super::{Ctx, ROOM, nchan, wait_quiet};

/// Subscribers in flight at once: the storm's front.
const AT_A_TIME: usize = 500;
/// Time after the last subscribe for the room's last presence frames (a window, a count).
const SETTLE: Duration = Duration::from_millis(1500);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Roomcast,
    Nchan,
}

pub(crate) struct ArrivalResult {
    subscribe_s: f64,
    presence_frames: u64,
    cpu_s: f64,
    rss_per_conn_kib: f64,
}

pub(crate) async fn report(ctx: &Ctx) -> Report {
    let mut report = Report::new("arrival");
    report.columns = ("roomcast", "nchan");
    report.param("connections", ctx.connections);
    report.param("at_a_time", AT_A_TIME);
    let sides = [("roomcast", Side::Roomcast), ("nchan", Side::Nchan)];
    let mut results = [None, None];
    for (i, _) in ctx.order() {
        let (label, side) = sides[i];
        let mark = report.mark();
        match measure(ctx, &mut report, label, side, AT_A_TIME).await {
            Ok((server, result)) => {
                results[i] = Some(result);
                finish(server, &mut report, mark);
            }
            Err(error) => report.errors.push(format!("{label}: {error}")),
        }
    }
    let c = ctx.connections as f64;
    report.row(
        "time until all are subscribed (s)",
        "subscribe_s",
        pair(&results, |r: &ArrivalResult| Some(r.subscribe_s)),
    );
    report.row(
        "subscribed per second",
        "subscribed_per_s",
        pair(&results, |r: &ArrivalResult| Some(c / r.subscribe_s)),
    );
    report.row(
        "presence frames per subscriber",
        "presence_frames_per_subscriber",
        pair(&results, |r: &ArrivalResult| {
            Some(r.presence_frames as f64 / c)
        }),
    );
    report.row(
        "server CPU, arrivals and settling (s)",
        "server_cpu_s",
        pair(&results, |r: &ArrivalResult| Some(r.cpu_s)),
    );
    report.row(
        "RSS per subscribed idle connection after the storm (KiB)",
        "rss_per_conn_kib",
        pair(&results, |r: &ArrivalResult| Some(r.rss_per_conn_kib)),
    );
    // roomcast again, calm: the same subscribers one at a time.
    let mark = report.mark();
    match measure(ctx, &mut report, "roomcast-calm", Side::Roomcast, 1).await {
        Ok((server, calm)) => {
            finish(server, &mut report, mark);
            let storm = results[0].as_ref().map(|r| r.rss_per_conn_kib);
            report.row(
                "roomcast: RSS per connection, storm against one at a time (KiB)",
                "storm_vs_calm_rss_per_conn_kib",
                [storm, Some(calm.rss_per_conn_kib)],
            );
        }
        Err(error) => report.errors.push(format!("roomcast-calm: {error}")),
    }
    report
}

/// Starts `side` afresh and runs the arrivals, `at_a_time` in flight.
async fn measure(
    ctx: &Ctx,
    report: &mut Report,
    label: &'static str,
    side: Side,
    at_a_time: usize,
) -> Result<(ServerProc, ArrivalResult), String> {
    let deadline = ctx.deadline();
    match side {
        Side::Roomcast => {
            let server = start_with(ctx, report, super::Kind::Roomcast, "", label, &[]).await?;
            let result = run(ctx, &server, side, at_a_time, deadline).await?;
            Ok((server, result))
        }
        Side::Nchan => {
            let started = nchan::start(label, ctx.connections).await?;
            report.param(
                &format!("{label}_command"),
                started.server.spec.command_line(),
            );
            let result = run(ctx, &started.server, side, at_a_time, deadline).await;
            // The directory goes once the server is stopped.
            let nchan::Nchan { server, dir } = started;
            let result = result?;
            drop(dir);
            Ok((server, result))
        }
    }
}

/// One subscriber: subscribed, then reading (and counting presence frames) until dropped.
async fn subscribe(
    addr: std::net::SocketAddr,
    side: Side,
    i: usize,
    presence: Arc<AtomicU64>,
) -> Result<AbortOnDrop, String> {
    let ws: WsClient = match side {
        Side::Roomcast => {
            let mut ws = ws_connect(addr, &format!("/ws?user=u{i}")).await?;
            roomcast_join(&mut ws, ROOM).await?;
            ws
        }
        Side::Nchan => ws_connect(addr, &format!("/sub/{ROOM}")).await?,
    };
    let reader = tokio::spawn(async move {
        let mut ws = ws;
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message
                && text.starts_with(r#"{"type":"presence""#)
            {
                presence.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Ok(AbortOnDrop(reader))
}

async fn run(
    ctx: &Ctx,
    server: &ServerProc,
    side: Side,
    at_a_time: usize,
    deadline: Instant,
) -> Result<ArrivalResult, String> {
    let addr = server.addr;
    let presence = Arc::new(AtomicU64::new(0));
    // One subscriber first, so lazily built state counts in "before", not per connection.
    drop(subscribe(addr, side, usize::MAX, presence.clone()).await?);
    wait_quiet(server, deadline).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before_kib = server.rss_kib()?;
    presence.store(0, Ordering::Relaxed);
    let cpu_before = server.cpu_time();
    let bar = ctx.bar(ctx.connections as u64, "arrival: subscribing");
    let started = Instant::now();
    let held = open_all(ctx.connections, at_a_time, deadline, &bar, |i| {
        subscribe(addr, side, i, presence.clone())
    })
    .await?;
    let subscribe_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    tokio::time::sleep(SETTLE).await;
    let cpu_s = (server.cpu_time() - cpu_before).as_secs_f64();
    let presence_frames = presence.load(Ordering::Relaxed);
    wait_quiet(server, deadline).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_kib = server.rss_kib()?;
    drop(held);
    Ok(ArrivalResult {
        subscribe_s,
        presence_frames,
        cpu_s,
        rss_per_conn_kib: after_kib.saturating_sub(before_kib) as f64 / ctx.connections as f64,
    })
}
