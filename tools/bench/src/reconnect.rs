//! `reconnect`: C clients subscribed to one room on a roomcast storing on disk; the server is
//! stopped with SIGTERM and started again on the same directory and port, and every client
//! comes back as `roomcast.js` would: after its `shutdown`'s `reconnect_ms` (each its own, the
//! server spreading them), a new WebSocket (after `Retry-After` when refused with 429, soon
//! after when nothing listens yet), then `join` with `since` its last message's id. A
//! publisher publishes messages on the new server meanwhile. Figures: the time from the
//! SIGTERM and from the new server's start until every client has resumed (its reply
//! `recovered: true` and every message after its cursor), messages lost and duplicated, the
//! refusals met, and the new server's CPU and peak RSS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_tungstenite::tokio::client_async_with_config;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::StreamExt;
use serde_json::Value;

use super::client::{WsClient, open_all, tcp};
use super::procs::{ServerProc, ServerSpec, free_addr};
use super::report::Report;
use super::{Ctx, ROOM};

/// Messages published before the restart, and on the new server.
const BEFORE: u64 = 5;
const AFTER: u64 = 10;

#[derive(Default)]
struct Tally {
    resumed: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    refused: AtomicU64,
    not_recovered: AtomicU64,
}

pub(crate) async fn report(ctx: &Ctx) -> Report {
    let mut report = Report::new("reconnect");
    report.columns = ("roomcast", "-");
    report.param("connections", ctx.connections);
    report.param("before", BEFORE);
    report.param("after", AFTER);
    let dir = std::env::temp_dir().join(format!("roomcast-bench-reconnect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    match run(ctx, &mut report, &dir).await {
        Ok(rows) => {
            for (label, key, value) in rows {
                report.row(label, key, [Some(value), None]);
            }
        }
        Err(error) => report.errors.push(error),
    }
    let _ = std::fs::remove_dir_all(&dir);
    report
}

fn spec(ctx: &Ctx, addr: SocketAddr, dir: &Path) -> ServerSpec {
    let threads = ctx.server_threads.to_string();
    let per_ip = (ctx.connections + 1000).to_string();
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        &addr.to_string(),
        "--data-dir",
        &dir.display().to_string(),
        "--max-connections-per-ip",
        &per_ip,
        "--threads",
        &threads,
        "--shutdown-grace",
        "1s",
        "--log",
        "warn",
    ]
    .map(String::from)
    .into();
    args.extend(ctx.serve_args.iter().cloned());
    ServerSpec {
        label: "roomcast",
        program: ctx.server.clone(),
        args,
        env: vec![("SMOL_THREADS".into(), threads)],
        wrapper: ctx.server_wrapper.clone(),
    }
}

async fn run(
    ctx: &Ctx,
    report: &mut Report,
    dir: &Path,
) -> Result<Vec<(&'static str, &'static str, f64)>, String> {
    let addr = free_addr()?;
    let spec = spec(ctx, addr, dir);
    let line = spec.command_line().replace(&addr.to_string(), "ADDR");
    report.param(
        "roomcast_command",
        line.replace(&dir.display().to_string(), "DIR"),
    );
    let deadline = ctx.deadline();
    let mut server = ServerProc::start(spec.clone(), addr).await?;
    let tally = Arc::new(Tally::default());
    let bar = ctx.bar(ctx.connections as u64, "reconnect: subscribing");
    let clients = open_all(ctx.connections, ctx.concurrency, deadline, &bar, |i| {
        subscribe(addr, i)
    })
    .await?;
    bar.finish_and_clear();
    publish(addr, BEFORE).await?;
    // Every client reads the messages, then waits for the shutdown and comes back.
    let mut tasks = Vec::with_capacity(clients.len());
    for (i, client) in clients.into_iter().enumerate() {
        let tally = tally.clone();
        tasks.push(tokio::spawn(async move {
            client_life(addr, i, client, tally).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = Instant::now();
    server.terminate(Duration::from_secs(30))?;
    let mut server = ServerProc::start(spec, addr).await?;
    let started = Instant::now();
    let cpu_before = server.cpu_time();
    publish(addr, AFTER).await?;
    let mut failures = Vec::new();
    for task in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => failures.push(error),
            Ok(Err(error)) => failures.push(error.to_string()),
            Err(_) => failures.push("a client had not resumed by the deadline".into()),
        }
    }
    let all = stopped.elapsed();
    let from_start = started.elapsed();
    let cpu = server.cpu_time() - cpu_before;
    let peak = server.peak_rss_kib()?;
    server.keep_log();
    if let Some(first) = failures.first() {
        return Err(format!("{} clients failed; first: {first}", failures.len()));
    }
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64;
    report.lost += tally.lost.load(Ordering::Relaxed);
    Ok(vec![
        ("clients resumed", "resumed", get(&tally.resumed)),
        (
            "time from the SIGTERM until all resumed (s)",
            "all_resumed_s",
            all.as_secs_f64(),
        ),
        (
            "time from the new server's start (s)",
            "from_start_s",
            from_start.as_secs_f64(),
        ),
        ("messages lost", "lost", get(&tally.lost)),
        ("messages duplicated", "duplicated", get(&tally.duplicated)),
        (
            "resumes answered recovered: false",
            "not_recovered",
            get(&tally.not_recovered),
        ),
        (
            "connections refused 429 (Retry-After)",
            "refused",
            get(&tally.refused),
        ),
        (
            "new server CPU until all resumed (s)",
            "cpu_s",
            cpu.as_secs_f64(),
        ),
        (
            "new server peak RSS (MiB)",
            "peak_rss_mib",
            peak as f64 / 1024.0,
        ),
    ])
}

/// A client of user `u{i}`, welcomed, joined (since `since`, when resuming): its reply.
async fn join(ws: &mut WsClient, since: Option<&str>) -> Result<Value, String> {
    next_of(ws, "welcome").await?;
    let join = match since {
        Some(id) => format!(r#"{{"type":"join","ref":1,"room":"{ROOM}","since":"{id}"}}"#),
        None => format!(r#"{{"type":"join","ref":1,"room":"{ROOM}"}}"#),
    };
    ws.send(Message::text(join))
        .await
        .map_err(|e| format!("join: {e}"))?;
    next_of(ws, "reply").await
}

async fn subscribe(addr: SocketAddr, i: usize) -> Result<(WsClient, String), String> {
    let mut ws = connect_retrying(addr, i, None).await;
    let reply = join(&mut ws, None).await?;
    let id = reply["id"].as_str().ok_or("a join reply without an id")?;
    Ok((ws, id.to_owned()))
}

/// The next JSON frame of `kind`, within 30 s; `shutdown` and a close end it with an error.
async fn next_of(ws: &mut WsClient, kind: &str) -> Result<Value, String> {
    let wait = async {
        while let Some(message) = ws.next().await {
            if let Message::Text(text) = message.map_err(|e| format!("waiting for {kind}: {e}"))? {
                let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                if value["type"] == kind {
                    return Ok(value);
                }
            }
        }
        Err(format!("waiting for {kind}: the connection ended"))
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| format!("waiting for {kind}: timed out"))?
}

/// A WebSocket of user `u{i}`; a refusal with its `Retry-After` in milliseconds.
async fn connect(addr: SocketAddr, i: usize) -> Result<WsClient, (String, Option<u64>)> {
    let stream = tcp(addr).await.map_err(|e| (e, None))?;
    let url = format!("ws://{addr}/ws?user=u{i}");
    let config = WebSocketConfig::default().read_buffer_size(4096);
    match client_async_with_config(url.as_str(), stream, Some(config)).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => {
            let retry = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(|s| s * 1000);
            Err((format!("refused {}", response.status()), retry))
        }
        Err(error) => Err((error.to_string(), None)),
    }
}

/// [`connect`] until it connects: after `Retry-After` (within the second it names, as a
/// client with jitter would) when refused, soon after when nothing listens (a server starting).
/// The caller's deadline bounds it.
async fn connect_retrying(addr: SocketAddr, i: usize, refused: Option<&AtomicU64>) -> WsClient {
    loop {
        match connect(addr, i).await {
            Ok(ws) => return ws,
            Err((_, Some(retry))) => {
                if let Some(refused) = refused {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                let jitter = (i as u64).wrapping_mul(7919) % 1000;
                let wait = retry.saturating_sub(1000) + jitter;
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            Err((_, None)) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One client's life: the messages before, the `shutdown`, the wait it asks for, the
/// reconnect (with retries), the resume, and every message after its cursor once.
async fn client_life(
    addr: SocketAddr,
    i: usize,
    (mut ws, _): (WsClient, String),
    tally: Arc<Tally>,
) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..BEFORE {
        last = next_of(&mut ws, "message").await?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    let notice = next_of(&mut ws, "shutdown").await?;
    let wait = notice["reconnect_ms"].as_u64().unwrap_or(0);
    drop(ws);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let mut ws = connect_retrying(addr, i, Some(&tally.refused)).await;
    let reply = join(&mut ws, Some(&last)).await?;
    if reply["recovered"] != true {
        tally.not_recovered.fetch_add(1, Ordering::Relaxed);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut got = 0;
    while got < AFTER {
        let message = match next_of(&mut ws, "message").await {
            Ok(message) => message,
            Err(_) => break,
        };
        let id = message["id"].as_str().unwrap_or_default().to_owned();
        if !seen.insert(id) {
            tally.duplicated.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        got += 1;
    }
    tally.lost.fetch_add(AFTER - got, Ordering::Relaxed);
    tally.resumed.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Publishes `count` messages to the room, each answered once stored.
async fn publish(addr: SocketAddr, count: u64) -> Result<(), String> {
    let mut ws = connect_retrying(addr, usize::MAX, None).await;
    join(&mut ws, None).await?;
    for seq in 0..count {
        let frame = format!(r#"{{"type":"publish","ref":{seq},"room":"{ROOM}","data":{seq}}}"#);
        ws.send(Message::text(frame))
            .await
            .map_err(|e| format!("publish: {e}"))?;
        next_of(&mut ws, "reply").await?;
    }
    Ok(())
}
