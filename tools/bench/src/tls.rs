//! The TLS scenarios, roomcast against itself in one run:
//!
//! - `tls`: TLS against plain TCP: handshake cycles per second (connect, full TLS 1.3
//!   handshake, `GET /healthz`, close) and the server's memory per idle WebSocket.
//! - `fanout-h2`: SSE fan-out over TLS, the receivers' streams carried 100 to an HTTP/2
//!   connection against one HTTP/1.1 connection each (what a browser does with many tabs, with
//!   and without HTTP/2): the fan-out figures and the server's memory per stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Empty};

use super::client::OP_TIMEOUT;
use super::dial::{Certificate, Dial};
use super::fanout::{self, Clients, Transport};
use super::procs::ServerProc;
use super::report::Report;
use super::scenarios::{finish, pair, secs, start_with};
use super::stats::{Histogram, now_ns, per_sec};
use super::{Ctx, Kind, idle, wait_quiet};

/// A cap on cycles per server, so a fast run cannot exhaust loopback ports (TIME_WAIT).
const MAX_CYCLES: u64 = 20_000;
/// SSE streams on one HTTP/2 connection: roomcast's default cap per connection, and about
/// what browsers allow.
const STREAMS_PER_CONNECTION: usize = 100;

/// The certificate of this run, in a directory removed when it drops.
struct Files {
    dir: std::path::PathBuf,
    certificate: Certificate,
}

impl Files {
    fn make() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("roomcast-bench-tls-{}", std::process::id()));
        let certificate = Certificate::make(&dir)?;
        Ok(Self { dir, certificate })
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Cycles {
    per_s: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    count: u64,
    cpu: Duration,
}

/// Side 0 is TLS, side 1 plain (the report's columns).
fn side_of(kind: Kind) -> (usize, &'static str) {
    match kind {
        Kind::Roomcast => (0, "tls"),
        Kind::Baseline => (1, "plain"),
    }
}

/// The `tls` scenario.
pub(crate) async fn report(ctx: &Ctx) -> Report {
    let mut report = Report::new("tls");
    report.columns = ("tls", "plain");
    report.param("connections", ctx.connections);
    report.param("workers", ctx.churn_workers.clamp(1, ctx.connections));
    report.param("seconds", ctx.churn_time.as_secs_f64());
    let files = match Files::make() {
        Ok(files) => files,
        Err(error) => {
            report.errors.push(error);
            return report;
        }
    };
    let mut cycles = [None, None];
    let mut idle = [None, None];
    for (_, kind) in ctx.order() {
        let (i, label) = side_of(kind);
        let (dial, args) = if i == 0 {
            match Dial::tls(&files.certificate, 0, ctx.connections) {
                Ok(dial) => (dial, files.certificate.serve_args()),
                Err(error) => {
                    report.errors.push(error);
                    continue;
                }
            }
        } else {
            (Dial::Plain, Vec::new())
        };
        // A fresh server for each part: an allocator keeps what the other part freed.
        for part in ["cycles", "idle"] {
            let mark = report.mark();
            let started = start_with(ctx, &mut report, Kind::Roomcast, "", label, &args).await;
            let server = match started {
                Ok(server) => server,
                Err(error) => {
                    report.errors.push(format!("{label}: {error}"));
                    continue;
                }
            };
            let deadline = ctx.deadline();
            let outcome = if part == "cycles" {
                handshakes(ctx, &server, &dial, deadline)
                    .await
                    .map(|r| cycles[i] = Some(r))
            } else {
                idle::run(ctx, &server, Kind::Roomcast, Transport::Ws, &dial, deadline)
                    .await
                    .map(|r| idle[i] = Some(r))
            };
            if let Err(error) = outcome {
                report.errors.push(format!("{label} {part}: {error}"));
            }
            finish(server, &mut report, mark);
        }
    }
    report.row(
        "connect, handshake, GET, close: cycles/s",
        "cycles_per_s",
        pair(&cycles, |r| r.per_s),
    );
    report.row(
        "cycle p50 (ms)",
        "cycle_p50_ms",
        pair(&cycles, |r| r.p50_ms),
    );
    report.row(
        "cycle p99 (ms)",
        "cycle_p99_ms",
        pair(&cycles, |r| r.p99_ms),
    );
    report.row(
        "server CPU per cycle (µs)",
        "cpu_per_cycle_us",
        pair(&cycles, |r| {
            (r.count > 0).then(|| r.cpu.as_secs_f64() * 1e6 / r.count as f64)
        }),
    );
    report.row("server CPU (s)", "cpu_s", pair(&cycles, |r| secs(r.cpu)));
    report.row(
        "idle WebSocket: RSS per connection (KiB)",
        "ws_rss_per_conn_kib",
        pair(&idle, |r| Some(r.per_connection_kib)),
    );
    report.row(
        "idle WebSocket: RSS with C connections (MiB)",
        "ws_rss_after_mib",
        pair(&idle, |r| Some(r.after_kib as f64 / 1024.0)),
    );
    report.notes.push(
        "every TLS handshake is a full one (TLS 1.3, X25519, ECDSA P-256, no resumption)".into(),
    );
    report
}

/// Connect, handshake, `GET /healthz`, close, by `ctx.churn_workers` loops for
/// `ctx.churn_time`.
async fn handshakes(
    ctx: &Ctx,
    server: &ServerProc,
    dial: &Dial,
    deadline: Instant,
) -> Result<Cycles, String> {
    let addr = server.addr;
    let until = deadline.min(Instant::now() + ctx.churn_time);
    let histogram = Arc::new(Histogram::new());
    let started = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let cpu_before = server.cpu_time();
    let start = Instant::now();
    let tasks: Vec<_> = (0..ctx.churn_workers.clamp(1, ctx.connections))
        .map(|_| {
            let (histogram, started) = (histogram.clone(), started.clone());
            let (first_error, dial) = (first_error.clone(), dial.clone());
            tokio::spawn(async move {
                while Instant::now() < until && started.fetch_add(1, Ordering::Relaxed) < MAX_CYCLES
                {
                    let at = now_ns();
                    let cycle = tokio::time::timeout(OP_TIMEOUT, one_cycle(addr, &dial)).await;
                    match cycle.unwrap_or_else(|_| Err("a cycle timed out".into())) {
                        Ok(()) => histogram.record_ns(now_ns() - at),
                        Err(error) => {
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
    for task in tasks {
        task.await.map_err(|e| format!("worker: {e}"))?;
    }
    let elapsed = start.elapsed();
    if let Some(error) = first_error.lock().expect("not poisoned").take() {
        return Err(format!("a cycle failed: {error}"));
    }
    Ok(Cycles {
        per_s: per_sec(histogram.count(), elapsed),
        p50_ms: histogram.quantile_ms(0.5),
        p99_ms: histogram.quantile_ms(0.99),
        count: histogram.count(),
        cpu: server.cpu_time().saturating_sub(cpu_before),
    })
}

async fn one_cycle(addr: std::net::SocketAddr, dial: &Dial) -> Result<(), String> {
    let (mut sender, _conn) = dial.http1::<Empty<Bytes>>(addr).await?;
    let request = Request::get("/healthz")
        .header(header::HOST, "localhost")
        // The server closes after answering: the close is part of the cycle.
        .header(header::CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("GET /healthz: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET /healthz: {}", response.status()));
    }
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("GET /healthz: {e}"))?;
    Ok(())
}

/// The `fanout-h2` scenario.
pub(crate) async fn fanout_report(ctx: &Ctx) -> Report {
    let mut report = Report::new("fanout-h2");
    report.columns = ("h2", "http/1.1");
    report.param("connections", ctx.connections);
    report.param("streams_per_h2_connection", STREAMS_PER_CONNECTION);
    report.param("burst_messages", ctx.messages);
    report.param("paced_messages", ctx.paced_messages);
    report.param("paced_per_s", ctx.paced_rate);
    report.param("size", ctx.size);
    let files = match Files::make() {
        Ok(files) => files,
        Err(error) => {
            report.errors.push(error);
            return report;
        }
    };
    let args = files.certificate.serve_args();
    let mut results = [None, None];
    let mut memory = [None, None];
    for (i, kind) in ctx.order() {
        // Side 0 carries the streams over HTTP/2, side 1 over HTTP/1.1, both over TLS.
        let (label, per_connection) = match kind {
            Kind::Roomcast => ("h2", STREAMS_PER_CONNECTION),
            Kind::Baseline => ("http1", 0),
        };
        let dial = match Dial::tls(&files.certificate, per_connection, ctx.connections) {
            Ok(dial) => dial,
            Err(error) => {
                report.errors.push(error);
                continue;
            }
        };
        let mark = report.mark();
        let server = match start_with(ctx, &mut report, Kind::Roomcast, "", label, &args).await {
            Ok(server) => server,
            Err(error) => {
                report.errors.push(format!("{label}: {error}"));
                continue;
            }
        };
        let deadline = ctx.deadline();
        wait_quiet(&server, deadline).await;
        let before = server.rss_kib().ok();
        let mut connected = None;
        let ran = fanout::run(
            ctx,
            &[&server],
            &[],
            Clients {
                kind: Kind::Roomcast,
                transport: Transport::Sse,
                dial: &dial,
            },
            deadline,
            &mut || connected = server.rss_kib().ok(),
        )
        .await;
        match ran {
            Ok(result) => {
                fanout::absorb(ctx, &mut report, label, &result);
                results[i] = Some(result);
            }
            Err(error) => report.errors.push(format!("{label}: {error}")),
        }
        if let (Some(before), Some(connected)) = (before, connected) {
            let per_stream = connected.saturating_sub(before) as f64 / ctx.connections as f64;
            memory[i] = Some((per_stream, connected as f64 / 1024.0));
        }
        finish(server, &mut report, mark);
    }
    report.row(
        "RSS per stream, connected (KiB)",
        "rss_per_stream_kib",
        pair(&memory, |m| Some(m.0)),
    );
    report.row(
        "RSS with C streams (MiB)",
        "rss_connected_mib",
        pair(&memory, |m| Some(m.1)),
    );
    fanout::fanout_rows(ctx, &mut report, &results);
    report
}
