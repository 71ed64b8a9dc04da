//! `durable`: roomcast storing on disk (its default: a reply means the message is synced)
//! against the same roomcast in memory (`--memory`), with the same clients in the same run. In
//! the report the first column is the store, the second memory.
//!
//! 1. Throughput: P publishers, each in a room of its own with W publishes in flight, for a
//!    while: stored publishes per second. One fsync commits whatever is queued (group commit),
//!    so it is the number in flight, not the disk's syncs per second, that sets the rate.
//! 2. Latency: one publisher at a steady rate (1,000/s): publish to reply, p50 and p99.
//! 3. Start-up (the store only): publishing goes on until the store holds `--durable-fill`
//!    messages; the server is killed (SIGKILL) and started again on its data directory: the
//!    time from the start to accepting connections, and the restore the server logs.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;

use super::client::{WsClient, roomcast_join, ws_connect};
use super::procs::{ServerProc, ServerSpec, free_addr};
use super::report::Report;
use super::scenarios::finish;
use super::stats::{per_sec, quantile_exact_ms};
use super::{Ctx, Kind};

/// Publishes in flight per publisher in the throughput part.
const WINDOW: usize = 16;

/// What one side measured.
#[derive(Default)]
struct Side {
    publishes_per_s: Option<f64>,
    reply_p50_ms: Option<f64>,
    reply_p99_ms: Option<f64>,
    stored: Option<f64>,
    startup_ms: Option<f64>,
    restore_ms: Option<f64>,
}

pub(crate) async fn report(ctx: &Ctx) -> Report {
    let mut report = Report::new("durable");
    report.columns = ("stored", "memory");
    report.param("publishers", ctx.durable.publishers);
    report.param("in_flight_each", WINDOW);
    report.param("throughput_seconds", ctx.durable.seconds.as_secs_f64());
    report.param("paced_per_s", ctx.durable.rate);
    report.param("paced_messages", ctx.durable.paced);
    report.param("fill", ctx.durable.fill);
    let mut sides = [Side::default(), Side::default()];
    for (i, kind) in ctx.order() {
        let mark = report.mark();
        let dir = (kind == Kind::Roomcast).then(|| {
            std::env::temp_dir().join(format!("roomcast-bench-store-{}", std::process::id()))
        });
        if let Some(dir) = &dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        let label = if dir.is_some() { "stored" } else { "memory" };
        match side(ctx, &mut report, dir.as_deref(), &mut sides[i]).await {
            Ok(server) => finish(server, &mut report, mark),
            Err(error) => report.errors.push(format!("{label}: {error}")),
        }
        if let Some(dir) = &dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    let pick = |f: fn(&Side) -> Option<f64>| [f(&sides[0]), f(&sides[1])];
    report.row(
        format!(
            "stored publishes/s ({} publishers, {WINDOW} in flight each)",
            ctx.durable.publishers
        ),
        "publishes_per_s",
        pick(|s| s.publishes_per_s),
    );
    let rate = ctx.durable.rate;
    report.row(
        format!("publish to reply p50 at {rate}/s (ms)"),
        "reply_p50_ms",
        pick(|s| s.reply_p50_ms),
    );
    report.row(
        format!("publish to reply p99 at {rate}/s (ms)"),
        "reply_p99_ms",
        pick(|s| s.reply_p99_ms),
    );
    report.row(
        "messages stored, then SIGKILL",
        "stored_messages",
        pick(|s| s.stored),
    );
    report.row(
        "start-up on them: to accepting (ms)",
        "startup_ms",
        pick(|s| s.startup_ms),
    );
    report.row(
        "start-up on them: the store's restore (ms)",
        "restore_ms",
        pick(|s| s.restore_ms),
    );
    report
}

/// One side's three parts; the server, to finish.
async fn side(
    ctx: &Ctx,
    report: &mut Report,
    dir: Option<&Path>,
    out: &mut Side,
) -> Result<ServerProc, String> {
    let addr = free_addr()?;
    let server = start(ctx, report, dir, addr).await?;
    let deadline = Instant::now() + ctx.duration;
    let (count, elapsed) = throughput(ctx, addr, ctx.durable.seconds, deadline).await?;
    out.publishes_per_s = per_sec(count, elapsed);
    let mut latencies = paced(ctx, addr, deadline).await?;
    out.reply_p50_ms = quantile_exact_ms(&mut latencies, 0.50);
    out.reply_p99_ms = quantile_exact_ms(&mut latencies, 0.99);
    let Some(dir) = dir else {
        return Ok(server);
    };
    let mut stored = count + latencies.len() as u64;
    while stored < ctx.durable.fill {
        let (more, _) = throughput(ctx, addr, Duration::from_secs(2), deadline).await?;
        stored += more;
    }
    out.stored = Some(stored as f64);
    drop(server); // SIGKILL: what was acknowledged is on disk
    let again = free_addr()?;
    let started = Instant::now();
    let server = start(ctx, report, Some(dir), again).await?;
    out.startup_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    out.restore_ms = restore_ms(&server);
    Ok(server)
}

async fn start(
    ctx: &Ctx,
    report: &mut Report,
    dir: Option<&Path>,
    addr: SocketAddr,
) -> Result<ServerProc, String> {
    let threads = ctx.server_threads.to_string();
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        &addr.to_string(),
        "--rate",
        "1000000",
        "--burst",
        "1000000",
        "--max-connections-per-ip",
        "10000",
        "--threads",
        &threads,
        // Room history enough for the fill, so it is all kept (and restored).
        "--history",
        "1000000",
        "--history-bytes",
        "1000000000",
        // The restore's line.
        "--log",
        "info",
    ]
    .map(String::from)
    .into();
    match dir {
        Some(dir) => args.extend(["--data-dir".into(), dir.display().to_string()]),
        None => args.extend(["--memory".into(), "true".into()]),
    }
    args.extend(ctx.serve_args.iter().cloned());
    let label = if dir.is_some() { "stored" } else { "memory" };
    let spec = ServerSpec {
        label,
        program: ctx.server.clone(),
        args,
        env: vec![("SMOL_THREADS".into(), threads)],
        wrapper: ctx.server_wrapper.clone(),
    };
    let mut line = spec.command_line().replace(&addr.to_string(), "ADDR");
    if let Some(dir) = dir {
        line = line.replace(&dir.display().to_string(), "DIR");
    }
    report.param(&format!("{label}_command"), line);
    ServerProc::start(spec, addr).await
}

/// P publishers in rooms of their own, W publishes in flight each, for `time`: how many were
/// answered, and over how long.
async fn throughput(
    ctx: &Ctx,
    addr: SocketAddr,
    time: Duration,
    deadline: Instant,
) -> Result<(u64, Duration), String> {
    let mut publishers = Vec::with_capacity(ctx.durable.publishers);
    for p in 0..ctx.durable.publishers {
        let mut ws = ws_connect(addr, &format!("/ws?user=p{p}")).await?;
        roomcast_join(&mut ws, &format!("durable{p}")).await?;
        publishers.push(ws);
    }
    let started = Instant::now();
    let until = (started + time).min(deadline);
    let tasks: Vec<_> = publishers
        .into_iter()
        .enumerate()
        .map(|(p, ws)| tokio::spawn(publish_until(ws, p, until)))
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task
            .await
            .map_err(|e| format!("a publisher panicked: {e}"))??;
    }
    Ok((total, started.elapsed()))
}

/// One publisher: keeps W publishes in flight until `until`, then takes the last answers.
async fn publish_until(mut ws: WsClient, p: usize, until: Instant) -> Result<u64, String> {
    let room = format!("durable{p}");
    let mut next_ref = 10u64;
    let mut in_flight = 0usize;
    let mut answered = 0u64;
    loop {
        let open = Instant::now() < until;
        while open && in_flight < WINDOW {
            next_ref += 1;
            let frame = format!(
                r#"{{"type":"publish","ref":{next_ref},"room":"{room}","data":{next_ref}}}"#
            );
            ws.send(Message::text(frame))
                .await
                .map_err(|e| format!("publish: {e}"))?;
            in_flight += 1;
        }
        if in_flight == 0 {
            return Ok(answered);
        }
        let text = next_text(&mut ws).await?;
        if text.starts_with(r#"{"type":"reply""#) {
            in_flight -= 1;
            answered += 1;
        } else if text.starts_with(r#"{"type":"error""#) {
            return Err(format!("publisher {p}: {text}"));
        }
    }
}

/// One publisher at `--durable-rate`: each publish's time to its reply, in nanoseconds.
async fn paced(ctx: &Ctx, addr: SocketAddr, deadline: Instant) -> Result<Vec<u64>, String> {
    let mut ws = ws_connect(addr, "/ws?user=paced").await?;
    roomcast_join(&mut ws, "durable-paced").await?;
    let (mut sink, mut source) = ws.split();
    let count = ctx.durable.paced;
    let rate = ctx.durable.rate;
    let sender = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut sent = VecDeque::with_capacity(count as usize);
        for seq in 0..count {
            tokio::time::sleep_until(start + Duration::from_secs_f64(seq as f64 / rate)).await;
            let frame = format!(
                r#"{{"type":"publish","ref":{},"room":"durable-paced","data":1}}"#,
                seq + 10
            );
            sent.push_back(Instant::now());
            sink.send(Message::text(frame))
                .await
                .map_err(|e| format!("paced publish: {e}"))?;
        }
        Ok::<_, String>(sent)
    });
    let mut replies = Vec::with_capacity(count as usize);
    while (replies.len() as u64) < count {
        let wait = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(wait, source.next())
            .await
            .map_err(|_| "paced: the replies did not come in time".to_owned())?;
        match message {
            Some(Ok(Message::Text(text))) if text.starts_with(r#"{"type":"reply""#) => {
                replies.push(Instant::now());
            }
            Some(Ok(Message::Text(text))) if text.starts_with(r#"{"type":"error""#) => {
                return Err(format!("paced: {text}"));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("paced: {e}")),
            None => return Err("paced: the connection ended".into()),
        }
    }
    let sent = sender
        .await
        .map_err(|e| format!("the paced sender panicked: {e}"))??;
    // One connection: replies come in the order of the publishes.
    Ok(sent
        .iter()
        .zip(&replies)
        .map(|(sent, reply)| {
            let took = reply.saturating_duration_since(*sent);
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX)
        })
        .collect())
}

async fn next_text(ws: &mut WsClient) -> Result<String, String> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .map_err(|_| "no answer within 15 s".to_owned())?;
        match message {
            Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the connection ended".into()),
        }
    }
}

/// The restore's duration the server logged (`restored the stored streams ... took_ms=N`).
fn restore_ms(server: &ServerProc) -> Option<f64> {
    let text = std::fs::read_to_string(server.log_path()).ok()?;
    let line = text
        .lines()
        .find(|l| l.contains("restored the stored streams"))?;
    let value = line.split("took_ms=").nth(1)?;
    value
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()?
        .parse()
        .ok()
}

/// The durable scenario's settings.
pub(crate) struct DurableArgs {
    pub(crate) publishers: usize,
    pub(crate) seconds: Duration,
    pub(crate) rate: f64,
    pub(crate) paced: u64,
    pub(crate) fill: u64,
}
