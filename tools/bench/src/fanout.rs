//! `fanout-ws` and `fanout-sse`: C receivers in one room, one publisher sending K stamped
//! messages, paced and then as bursts. Every receiver checks it gets all K in order.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{AbortOnDrop, Setup, gate, stamp};
use super::dial::Dial;
use super::http::roomcast_counters;
use super::peers::{Publisher, receive, receiver_open};
use super::procs::{ServerProc, own_cpu_time};
use super::report::Report;
use super::scenarios::{finish, name, pair, secs, start};
use super::stats::{Histogram, now_ns, per_sec, quantile_exact_ms};
use super::{Ctx, Kind, before_run, wait_quiet};

/// No delivery for this long after the last publish: the rest are not coming.
const STALL: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Ws,
    Sse,
    /// STOMP over WebSocket (`/stomp`), roomcast only: `SUBSCRIBE /topic/<room>`.
    Stomp,
    /// Nchan's WebSocket subscriber (`/sub/<room>`), published by `POST /pub/<room>`: the
    /// peer only.
    Nchan,
    /// Socket.IO over WebSocket (`socketio.rs`), published by `POST /publish`: the peer only.
    SocketIo,
}

/// One publishing run, as measured.
pub(crate) struct RunResult {
    pub(crate) name: &'static str,
    pub(crate) deliveries_per_s: Option<f64>,
    pub(crate) last_p50_ms: Option<f64>,
    pub(crate) last_p99_ms: Option<f64>,
    /// Publish to last receipt of each message, in the order published (`None`: nobody got it).
    pub(crate) last_ms: Vec<Option<f64>>,
    pub(crate) delivery_p99_ms: Option<f64>,
    pub(crate) lost: u64,
    pub(crate) out_of_order: u64,
    /// The server's CPU time, and the load clients' (this process), over the run.
    pub(crate) cpu: Duration,
    pub(crate) client_cpu: Duration,
    /// The server's user and system CPU time per delivery, in µs.
    pub(crate) user_us: Option<f64>,
    pub(crate) system_us: Option<f64>,
    /// The server's voluntary and involuntary context switches over the run.
    pub(crate) switches: (u64, u64),
}

pub(crate) struct FanoutResult {
    pub(crate) runs: Vec<RunResult>,
    /// Receivers whose connection ended, by reason.
    pub(crate) closes: BTreeMap<String, u64>,
    pub(crate) publish_errors: u64,
    pub(crate) errors: Vec<String>,
    /// roomcast's own counters before each run and at the end.
    pub(crate) counters: Vec<String>,
}

impl FanoutResult {
    /// The run named `name`; of several (the bursts), the one with the median deliveries/s.
    pub(crate) fn pick(&self, name: &str) -> Option<&RunResult> {
        let mut runs: Vec<&RunResult> = self.runs.iter().filter(|r| r.name == name).collect();
        runs.sort_by(|a, b| {
            a.deliveries_per_s
                .partial_cmp(&b.deliveries_per_s)
                .expect("no NaN")
        });
        runs.get(runs.len() / 2).copied()
    }

    /// Messages lost over every run named `name`.
    pub(crate) fn lost(&self, name: &str) -> u64 {
        self.runs
            .iter()
            .filter(|r| r.name == name)
            .map(|r| r.lost)
            .sum()
    }
}

struct RunStats {
    expected: u64,
    delivered: AtomicU64,
    out_of_order: AtomicU64,
    last_receipt: Vec<AtomicU64>,
    latency: Histogram,
}

/// What every receiver records into.
pub(crate) struct Shared {
    runs: Vec<RunStats>,
    closes: Mutex<BTreeMap<String, u64>>,
    pub(crate) publish_errors: AtomicU64,
}

/// Where one receiver is: the run it is in and the sequence number it expects next.
pub(crate) struct Cursor {
    run: usize,
    next: u64,
}

impl Default for Cursor {
    fn default() -> Self {
        Self {
            run: usize::MAX,
            next: 0,
        }
    }
}

impl Shared {
    pub(crate) fn on_text(&self, cursor: &mut Cursor, text: &str) {
        let Some((run, seq, sent)) = stamp(text) else {
            return;
        };
        let now = now_ns();
        let Some(stats) = self.runs.get(run) else {
            return;
        };
        if cursor.run != run {
            *cursor = Cursor { run, next: 0 };
        }
        if seq < cursor.next {
            stats.out_of_order.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // A gap (seq > next) is counted as lost at the end: expected minus delivered.
        cursor.next = seq + 1;
        stats.delivered.fetch_add(1, Ordering::Relaxed);
        stats.latency.record_ns(now.saturating_sub(sent));
        if let Some(slot) = stats.last_receipt.get(seq as usize) {
            slot.fetch_max(now, Ordering::Relaxed);
        }
    }

    pub(crate) fn closed(&self, reason: String) {
        *self
            .closes
            .lock()
            .expect("not poisoned")
            .entry(reason)
            .or_default() += 1;
    }
}

/// The runs: (name, messages, rate per second or `None` for a burst). Bursts are repeated and
/// the median reported: one burst of a few thousand deliveries is over in milliseconds.
pub(crate) fn plan(ctx: &Ctx) -> Vec<(&'static str, u64, Option<f64>)> {
    let mut plan = vec![("paced", ctx.paced_messages, Some(ctx.paced_rate))];
    plan.extend((0..ctx.repeats).map(|_| ("burst", ctx.messages, None)));
    plan
}

/// Who the load clients are: the kind of server they speak to, and over what.
#[derive(Clone, Copy)]
pub(crate) struct Clients<'a> {
    pub(crate) kind: Kind,
    pub(crate) transport: Transport,
    /// Plain TCP, or TLS (and for SSE, HTTP/1.1 or HTTP/2).
    pub(crate) dial: &'a Dial,
}

/// The scenario's runs against `nodes` (receivers spread over them in turn, the publisher on
/// the first); the CPU figures are those of `nodes` and `also` together (a Redis they share).
/// `ready` is called once every client is connected, before the first run.
pub(crate) async fn run(
    ctx: &Ctx,
    nodes: &[&ServerProc],
    also: &[&ServerProc],
    clients: Clients<'_>,
    deadline: Instant,
    ready: &mut dyn FnMut(),
) -> Result<FanoutResult, String> {
    let Clients {
        kind,
        transport,
        dial,
    } = clients;
    let server = nodes[0];
    let everyone: Vec<&ServerProc> = nodes.iter().chain(also).copied().collect();
    let addrs: Vec<SocketAddr> = nodes.iter().map(|node| node.addr).collect();
    let plan = plan(ctx);
    let c = ctx.connections as u64;
    let shared = Arc::new(Shared {
        runs: plan
            .iter()
            .map(|&(_, k, _)| RunStats {
                expected: c * k,
                delivered: AtomicU64::new(0),
                out_of_order: AtomicU64::new(0),
                last_receipt: (0..k).map(|_| AtomicU64::new(0)).collect(),
                latency: Histogram::new(),
            })
            .collect(),
        closes: Mutex::default(),
        publish_errors: AtomicU64::new(0),
    });
    let setup = Arc::new(Setup::default());
    let gate = gate(ctx.concurrency);
    let mut tasks = Vec::with_capacity(ctx.connections + 1);
    for i in 0..ctx.connections {
        let (setup, gate, shared) = (setup.clone(), gate.clone(), shared.clone());
        let addr = addrs[i % addrs.len()];
        let dial = dial.clone();
        tasks.push(AbortOnDrop(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let opened = receiver_open(addr, kind, transport, i, &dial).await;
            drop(permit);
            match opened {
                Ok(receiver) => {
                    setup.ready.fetch_add(1, Ordering::Relaxed);
                    receive(receiver, &shared).await;
                }
                Err(error) => setup.fail(error),
            }
        })));
    }
    let bar = ctx.bar(c, "receivers connected");
    setup.wait(ctx.connections, deadline, &bar).await?;
    bar.finish_and_clear();

    let mut publisher =
        Publisher::open(addrs[0], kind, transport, &shared, &mut tasks, dial).await?;
    ready();
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    let mut counters = Vec::new();
    for (index, &(name, k, rate)) in plan.iter().enumerate() {
        // Let set-up traffic (roomcast's presence diffs, the previous run) finish first.
        for process in &everyone {
            wait_quiet(process, deadline).await;
        }
        if let Err(error) = before_run(ctx, server).await {
            errors.push(format!("{name}: {error}"));
            break;
        }
        if kind == Kind::Roomcast {
            counters.push(format!(
                "before {name} {index}: {}",
                roomcast_counters(addrs[0], dial).await
            ));
        }
        let (cpu_before, client_before) = (cpu_split(&everyone), own_cpu_time());
        let switches_before = context_switches(&everyone);
        let stats = &shared.runs[index];
        let bar = ctx.bar(stats.expected, &format!("{name}: deliveries"));
        let sent = match publisher.publish(ctx, index, k, rate, deadline, &bar).await {
            Ok(sent) => sent,
            Err(error) => {
                errors.push(format!("{name}: {error}"));
                break;
            }
        };
        // Wait for the stragglers: until 2 s pass without a delivery (a receiver that was
        // closed never catches up), 10 s after the last publish, or the deadline.
        let drain = deadline.min(Instant::now() + Duration::from_secs(10));
        let (mut seen, mut progress) = (0, Instant::now());
        loop {
            let delivered = stats.delivered.load(Ordering::Relaxed);
            if delivered != seen {
                (seen, progress) = (delivered, Instant::now());
            }
            let now = Instant::now();
            if delivered >= stats.expected || now >= drain || now - progress > STALL {
                break;
            }
            bar.set_position(delivered);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bar.finish_and_clear();
        let cpu_after = cpu_split(&everyone);
        let cpu = (
            cpu_after.0.saturating_sub(cpu_before.0),
            cpu_after.1.saturating_sub(cpu_before.1),
        );
        let client_cpu = own_cpu_time().saturating_sub(client_before);
        let switches_after = context_switches(&everyone);
        let switches = (
            switches_after.0.saturating_sub(switches_before.0),
            switches_after.1.saturating_sub(switches_before.1),
        );
        runs.push(summarize(name, stats, &sent, (cpu, client_cpu), switches));
        if Instant::now() >= deadline {
            errors.push(format!("{name}: the deadline passed"));
            break;
        }
    }
    if kind == Kind::Roomcast {
        counters.push(format!(
            "at the end: {}",
            roomcast_counters(addrs[0], dial).await
        ));
    }
    let closes = shared.closes.lock().expect("not poisoned").clone();
    Ok(FanoutResult {
        runs,
        closes,
        publish_errors: shared.publish_errors.load(Ordering::Relaxed),
        errors,
        counters,
    })
}

/// User and system CPU time of these processes together.
fn cpu_split(processes: &[&ServerProc]) -> (Duration, Duration) {
    processes
        .iter()
        .fold((Duration::ZERO, Duration::ZERO), |(u, s), p| {
            let (user, system) = p.cpu_split();
            (u + user, s + system)
        })
}

/// Voluntary and involuntary context switches of these processes together.
fn context_switches(processes: &[&ServerProc]) -> (u64, u64) {
    processes.iter().fold((0, 0), |(v, i), p| {
        let (voluntary, involuntary) = p.context_switches();
        (v + voluntary, i + involuntary)
    })
}

fn summarize(
    name: &'static str,
    stats: &RunStats,
    sent: &[u64],
    ((user, system), client_cpu): ((Duration, Duration), Duration),
    switches: (u64, u64),
) -> RunResult {
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let per_delivery =
        |cpu: Duration| (delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / delivered as f64);
    let receipts: Vec<u64> = stats
        .last_receipt
        .iter()
        .map(|t| t.load(Ordering::Relaxed))
        .collect();
    let last = receipts.iter().copied().max().unwrap_or(0);
    let first = sent.first().copied().unwrap_or(0);
    let last_ns: Vec<Option<u64>> = receipts
        .iter()
        .zip(sent)
        .map(|(receipt, sent)| (*receipt > 0).then(|| receipt.saturating_sub(*sent)))
        .collect();
    let mut per_message: Vec<u64> = last_ns.iter().flatten().copied().collect();
    RunResult {
        name,
        deliveries_per_s: per_sec(delivered, Duration::from_nanos(last.saturating_sub(first))),
        last_p50_ms: quantile_exact_ms(&mut per_message, 0.5),
        last_p99_ms: quantile_exact_ms(&mut per_message, 0.99),
        last_ms: last_ns
            .iter()
            .map(|ns| ns.map(|ns| ns as f64 / 1e6))
            .collect(),
        delivery_p99_ms: stats.latency.quantile_ms(0.99),
        lost: stats.expected.saturating_sub(delivered),
        out_of_order: stats.out_of_order.load(Ordering::Relaxed),
        cpu: user + system,
        client_cpu,
        user_us: per_delivery(user),
        system_us: per_delivery(system),
        switches,
    }
}

/// The `fanout-ws` or `fanout-sse` scenario: roomcast, then the baseline.
pub(super) async fn report(ctx: &Ctx, transport: Transport) -> Report {
    let (scenario, baseline) = match transport {
        Transport::Ws | Transport::Stomp | Transport::Nchan | Transport::SocketIo => {
            ("fanout-ws", "ws")
        }
        Transport::Sse => ("fanout-sse", "sse"),
    };
    let mut report = Report::new(scenario);
    report.param("connections", ctx.connections);
    report.param("burst_messages", ctx.messages);
    report.param("paced_messages", ctx.paced_messages);
    report.param("paced_per_s", ctx.paced_rate);
    report.param("size", ctx.size);
    let mut results = [None, None];
    for (i, kind) in ctx.order() {
        let mark = report.mark();
        let server = match start(ctx, &mut report, kind, baseline).await {
            Ok(server) => server,
            Err(error) => {
                report.errors.push(format!("{}: {error}", name(kind)));
                continue;
            }
        };
        match run(
            ctx,
            &[&server],
            &[],
            Clients {
                kind,
                transport,
                dial: &Dial::Plain,
            },
            ctx.deadline(),
            &mut || {},
        )
        .await
        {
            Ok(result) => {
                absorb(ctx, &mut report, name(kind), &result);
                results[i] = Some(result);
            }
            Err(error) => report.errors.push(format!("{}: {error}", name(kind))),
        }
        finish(server, &mut report, mark);
    }
    fanout_rows(ctx, &mut report, &results);
    report
}

/// A run's failures and notes into `report`, under `label`: runs not completed, errors, lost
/// and out-of-order messages, publish errors, receivers closed (with roomcast's counters).
pub(crate) fn absorb(ctx: &Ctx, report: &mut Report, label: &str, result: &FanoutResult) {
    let expected = plan(ctx).len();
    if result.runs.len() < expected {
        report.errors.push(format!(
            "{}: {} of {expected} runs completed",
            label,
            result.runs.len()
        ));
    }
    for error in &result.errors {
        report.errors.push(format!("{}: {error}", label));
    }
    for run in &result.runs {
        report.lost += run.lost;
        if run.out_of_order > 0 {
            report.errors.push(format!(
                "{}: {} {} messages out of order",
                label, run.out_of_order, run.name
            ));
        }
    }
    if result.publish_errors > 0 {
        report.errors.push(format!(
            "{}: {} publish errors",
            label, result.publish_errors
        ));
    }
    if !result.closes.is_empty() || report.lost > 0 {
        for counters in &result.counters {
            report.notes.push(format!("{} /metrics {counters}", label));
        }
    }
    if !result.closes.is_empty() {
        let closed: u64 = result.closes.values().sum();
        report.notes.push(format!(
            "{0}: {closed} of {1} receivers closed (set-up or runs): {2:?}; {0}'s \
             figures cover only the receivers still connected",
            label, ctx.connections, result.closes
        ));
    }
}

/// The paced run and the median burst, for both servers.
pub(crate) fn fanout_rows(ctx: &Ctx, report: &mut Report, results: &[Option<FanoutResult>; 2]) {
    type Figure = fn(&RunResult) -> Option<f64>;
    let figures: [(&str, &str, Figure); 10] = [
        ("deliveries/s", "deliveries_per_s", |r| r.deliveries_per_s),
        ("publish to last receipt p50 (ms)", "last_p50_ms", |r| {
            r.last_p50_ms
        }),
        ("publish to last receipt p99 (ms)", "last_p99_ms", |r| {
            r.last_p99_ms
        }),
        ("delivery p99 (ms)", "delivery_p99_ms", |r| {
            r.delivery_p99_ms
        }),
        ("server CPU (s)", "cpu_s", |r| secs(r.cpu)),
        ("client CPU (s)", "client_cpu_s", |r| secs(r.client_cpu)),
        ("server user CPU per delivery (µs)", "user_us", |r| {
            r.user_us
        }),
        ("server system CPU per delivery (µs)", "system_us", |r| {
            r.system_us
        }),
        (
            "server voluntary context switches",
            "voluntary_switches",
            |r| Some(r.switches.0 as f64),
        ),
        (
            "server involuntary context switches",
            "involuntary_switches",
            |r| Some(r.switches.1 as f64),
        ),
    ];
    for run in ["paced", "burst"] {
        let label = match run {
            "paced" => format!("paced {}/s", ctx.paced_rate),
            _ => format!("burst (median of {})", ctx.repeats),
        };
        for (text, key, figure) in figures {
            // Paced deliveries/s only says how fast the publisher was told to go.
            if run == "paced" && key == "deliveries_per_s" {
                continue;
            }
            let values = pair(results, |r| r.pick(run).and_then(figure));
            report.row(format!("{label}: {text}"), format!("{run}_{key}"), values);
        }
        if run == "paced" {
            let series = [0, 1].map(|i| {
                results[i]
                    .as_ref()
                    .and_then(|r| r.pick(run))
                    .map(|r| r.last_ms.clone())
            });
            report.series(
                format!("{label}: publish to last receipt of each message (ms)"),
                "paced_last_ms",
                series,
            );
        }
        let lost = pair(results, |r| Some(r.lost(run) as f64));
        report.row(
            format!("{run}: lost (all runs)"),
            format!("{run}_lost"),
            lost,
        );
    }
}
