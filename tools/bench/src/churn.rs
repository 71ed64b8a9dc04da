//! `churn`: connection cycles per second. roomcast: connect, `join`, `leave`, disconnect; the
//! baseline has no rooms, so its cycle is connect and disconnect only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;

use super::client::{OP_TIMEOUT, WsClient, roomcast_join, ws_connect, ws_wait};
use super::procs::ServerProc;
use super::stats::{Histogram, now_ns, per_sec};
use super::{Ctx, Kind};

/// A cap on cycles per server, so a fast run cannot exhaust loopback ports (TIME_WAIT).
const MAX_CYCLES: u64 = 20_000;

pub(crate) struct ChurnResult {
    pub(crate) per_s: Option<f64>,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    pub(crate) cycles: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) cpu: Duration,
}

pub(crate) async fn run(
    ctx: &Ctx,
    server: &ServerProc,
    kind: Kind,
    deadline: Instant,
) -> Result<ChurnResult, String> {
    let addr = server.addr;
    let until = deadline.min(Instant::now() + ctx.churn_time);
    let histogram = Arc::new(Histogram::new());
    let started = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let workers = ctx.churn_workers.clamp(1, ctx.connections);
    let bar = ctx.bar(ctx.churn_time.as_secs(), "churn: seconds");
    let cpu_before = server.cpu_time();
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (histogram, started) = (histogram.clone(), started.clone());
            let (errors, first_error) = (errors.clone(), first_error.clone());
            tokio::spawn(async move {
                while Instant::now() < until && started.fetch_add(1, Ordering::Relaxed) < MAX_CYCLES
                {
                    let at = now_ns();
                    let cycle = tokio::time::timeout(OP_TIMEOUT, one_cycle(addr, kind, w)).await;
                    match cycle.unwrap_or_else(|_| Err("a cycle timed out".into())) {
                        Ok(()) => histogram.record_ns(now_ns() - at),
                        Err(error) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error
                                .lock()
                                .expect("not poisoned")
                                .get_or_insert(error);
                        }
                    }
                }
            })
        })
        .collect();
    while Instant::now() < until && tasks.iter().any(|t| !t.is_finished()) {
        bar.set_position(start.elapsed().as_secs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for task in tasks {
        task.await.map_err(|e| format!("churn worker: {e}"))?;
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed();
    let first_error = first_error.lock().expect("not poisoned").clone();
    Ok(ChurnResult {
        per_s: per_sec(histogram.count(), elapsed),
        p50_ms: histogram.quantile_ms(0.5),
        p99_ms: histogram.quantile_ms(0.99),
        cycles: histogram.count(),
        errors: errors.load(Ordering::Relaxed),
        first_error,
        cpu: server.cpu_time().saturating_sub(cpu_before),
    })
}

async fn one_cycle(addr: std::net::SocketAddr, kind: Kind, worker: usize) -> Result<(), String> {
    let mut ws = match kind {
        Kind::Roomcast => {
            // A room per worker: the cost measured is the cycle, not presence to bystanders.
            let mut ws = ws_connect(addr, &format!("/ws?user=churn{worker}")).await?;
            let room = format!("churn-{worker}");
            roomcast_join(&mut ws, &room).await?;
            let leave = format!(r#"{{"type":"leave","ref":2,"room":"{room}"}}"#);
            ws.send(Message::text(leave))
                .await
                .map_err(|e| format!("leave: {e}"))?;
            ws_wait(&mut ws, "leave reply", |t| {
                t.starts_with(r#"{"type":"reply","ref":2"#)
            })
            .await?;
            ws
        }
        Kind::Baseline => ws_connect(addr, "/").await?,
    };
    close(&mut ws).await
}

/// The closing handshake: our close frame, then read until the server's close ends the stream.
async fn close(ws: &mut WsClient) -> Result<(), String> {
    ws.close(None).await.map_err(|e| format!("close: {e}"))?;
    while let Some(message) = ws.next().await {
        if message.is_err() {
            break;
        }
    }
    Ok(())
}
