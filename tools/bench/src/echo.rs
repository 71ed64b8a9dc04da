//! `echo`: C WebSockets, each sending M messages one at a time and awaiting each echo.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{Message, Utf8Bytes};
use futures_util::StreamExt;

use super::client::{OP_TIMEOUT, WsClient, open_all, ws_connect};
use super::procs::{ServerProc, own_cpu_time};
use super::stats::{Histogram, now_ns, per_sec};
use super::{Ctx, Kind};

/// One payload size, as measured.
pub(crate) struct EchoResult {
    pub(crate) per_s: Option<f64>,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    pub(crate) cpu: Duration,
    /// The load clients' CPU time (this process).
    pub(crate) client_cpu: Duration,
}

pub(crate) async fn run(
    ctx: &Ctx,
    server: &ServerProc,
    kind: Kind,
    deadline: Instant,
) -> Result<Vec<EchoResult>, String> {
    let addr = server.addr;
    let path = match kind {
        Kind::Roomcast => "/ws/echo",
        Kind::Baseline => "/echo",
    };
    let bar = ctx.bar(ctx.connections as u64, "echo: connecting");
    let mut sockets = open_all(ctx.connections, ctx.concurrency, deadline, &bar, |_| {
        ws_connect(addr, path)
    })
    .await?;
    bar.finish_and_clear();
    let mut results = Vec::new();
    for &size in &ctx.echo_sizes {
        let mut rounds = Vec::with_capacity(ctx.repeats);
        for _ in 0..ctx.repeats {
            rounds.push(round(ctx, server, &mut sockets, size, deadline).await?);
        }
        // The median round by messages/s: one disturbed round does not decide.
        rounds.sort_by(|a, b| a.per_s.partial_cmp(&b.per_s).expect("no NaN"));
        results.push(rounds.swap_remove(rounds.len() / 2));
    }
    Ok(results)
}

/// Every socket does `echo_messages` round trips of `size` bytes at once.
async fn round(
    ctx: &Ctx,
    server: &ServerProc,
    sockets: &mut Vec<WsClient>,
    size: usize,
    deadline: Instant,
) -> Result<EchoResult, String> {
    let text = Utf8Bytes::from("x".repeat(size));
    let histogram = Arc::new(Histogram::new());
    let (cpu_before, client_before) = (server.cpu_time(), own_cpu_time());
    let total = ctx.connections as u64 * ctx.echo_messages;
    let bar = ctx.bar(total, &format!("echo {size} B: round trips"));
    let start = Instant::now();
    let tasks: Vec<_> = sockets
        .drain(..)
        .map(|ws| {
            let (text, histogram, bar) = (text.clone(), histogram.clone(), bar.clone());
            let m = ctx.echo_messages;
            tokio::spawn(round_trips(ws, text, m, histogram, deadline, bar))
        })
        .collect();
    let mut first_error = None;
    for task in tasks {
        match task.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(ws) => sockets.push(ws),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    if let Some(error) = first_error {
        return Err(format!(
            "echo {size} B: {error} ({} of {total} round trips done)",
            histogram.count()
        ));
    }
    Ok(EchoResult {
        per_s: per_sec(histogram.count(), elapsed),
        p50_ms: histogram.quantile_ms(0.5),
        p99_ms: histogram.quantile_ms(0.99),
        cpu: server.cpu_time().saturating_sub(cpu_before),
        client_cpu: own_cpu_time().saturating_sub(client_before),
    })
}

/// `m` round trips on one socket, each bounded; the socket comes back for the next size.
async fn round_trips(
    mut ws: WsClient,
    text: Utf8Bytes,
    m: u64,
    histogram: Arc<Histogram>,
    deadline: Instant,
    bar: indicatif::ProgressBar,
) -> Result<WsClient, String> {
    for _ in 0..m {
        if Instant::now() > deadline {
            return Err("the deadline passed".into());
        }
        let sent = now_ns();
        let trip = async {
            ws.send(Message::Text(text.clone()))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(echo))) if echo.len() == text.len() => return Ok(()),
                    Some(Ok(Message::Text(other))) => return Err(format!("wrong echo: {other}")),
                    Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(error.to_string()),
                    None => return Err("connection ended".into()),
                }
            }
        };
        tokio::time::timeout(OP_TIMEOUT, trip)
            .await
            .map_err(|_| "an echo timed out".to_owned())??;
        histogram.record_ns(now_ns() - sent);
        bar.inc(1);
    }
    Ok(ws)
}
