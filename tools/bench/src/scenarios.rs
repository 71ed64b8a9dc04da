//! Each scenario: start roomcast, run, stop; start the baseline, run the same clients, stop;
//! then one report with both figures and their ratio.

use std::net::SocketAddr;
use std::time::Duration;

use super::dial::Dial;
use super::fanout::Transport;
use super::procs::{ServerProc, ServerSpec, free_addr};
use super::report::Report;
use super::{
    Ctx, Kind, Scenario, arrival, churn, durable, echo, fanout, idle, nodes, reconnect, stomp, tls,
    versus,
};

/// The `--check` floors: roomcast's throughput over the baseline's must stay above these,
/// about half the lowest ratios measured in short mode on a busy 2-vCPU machine
/// (docs/performance.md), so a change that halves throughput fails and the drift does not.
const FLOORS: &[(&str, &str, f64)] = &[
    ("echo", "echo_64_per_s", 0.4),
    ("fanout-ws", "burst_deliveries_per_s", 0.3),
    ("fanout-sse", "burst_deliveries_per_s", 0.25),
    ("churn", "cycles_per_s", 0.18),
    // Stored against in memory: 0.75x - 0.88x measured with group commit; one fsync per
    // publish (about 3,700 a second here) would be under 0.05x.
    ("durable", "publishes_per_s", 0.15),
    // TLS against plain: 0.16x - 0.21x measured; a client on ring's own group order (P-384
    // first) measured 0.04x.
    ("tls", "cycles_per_s", 0.08),
    // HTTP/2 against HTTP/1.1, both over TLS: 1.32x - 1.50x measured.
    ("fanout-h2", "burst_deliveries_per_s", 0.5),
    // STOMP against roomcast.v1 over WebSocket: 0.46x - 0.93x measured (short), 0.88x - 1.22x at
    // 10,000.
    ("fanout-stomp", "burst_deliveries_per_s", 0.3),
];

pub(super) async fn run_all(ctx: &Ctx, scenario: Scenario) -> Vec<Report> {
    let chosen: Vec<Scenario> = match scenario {
        Scenario::All => vec![
            Scenario::Echo,
            Scenario::FanoutWs,
            Scenario::FanoutSse,
            Scenario::Idle,
            Scenario::Churn,
            Scenario::Durable,
            Scenario::Tls,
            Scenario::FanoutH2,
            Scenario::FanoutStomp,
        ],
        one => vec![one],
    };
    let mut reports = Vec::new();
    for scenario in chosen {
        let mut rounds = Vec::with_capacity(ctx.rounds);
        for round in 0..ctx.rounds {
            ctx.baseline_first.set(round % 2 == 1);
            let started = std::time::Instant::now();
            let mut report = match scenario {
                Scenario::Echo => echo_report(ctx).await,
                Scenario::FanoutWs => fanout::report(ctx, Transport::Ws).await,
                Scenario::FanoutSse => fanout::report(ctx, Transport::Sse).await,
                Scenario::Idle => idle_report(ctx).await,
                Scenario::Durable => durable::report(ctx).await,
                Scenario::FanoutNodes => nodes::report(ctx).await,
                Scenario::Tls => tls::report(ctx).await,
                Scenario::FanoutH2 => tls::fanout_report(ctx).await,
                Scenario::FanoutStomp => stomp::report(ctx).await,
                Scenario::FanoutRabbitmq => stomp::rabbitmq_report(ctx).await,
                Scenario::Arrival => arrival::report(ctx).await,
                Scenario::FanoutNchan => versus::nchan_report(ctx).await,
                Scenario::Reconnect => reconnect::report(ctx).await,
                Scenario::FanoutSocketio => versus::socketio_report(ctx).await,
                Scenario::Churn | Scenario::All => churn_report(ctx).await,
            };
            report.seconds = started.elapsed().as_secs_f64();
            if ctx.rounds > 1 {
                let first = if round % 2 == 1 {
                    "baseline"
                } else {
                    "roomcast"
                };
                report.param(
                    "round",
                    format!("{} of {}, {first} first", round + 1, ctx.rounds),
                );
            }
            print(ctx, &report);
            rounds.push(report);
        }
        ctx.baseline_first.set(false);
        let report = if rounds.len() == 1 {
            rounds.pop().expect("one round")
        } else {
            let summary = Report::summary(&rounds);
            print(ctx, &summary);
            summary
        };
        reports.push(report);
    }
    reports
}

fn print(ctx: &Ctx, report: &Report) {
    if !ctx.json {
        println!("{}", report.table());
    }
    println!("{}", report.json());
}

pub(super) fn check(reports: &[Report]) -> Vec<String> {
    let mut failures = Vec::new();
    for report in reports {
        for &(scenario, key, floor) in FLOORS.iter().filter(|f| f.0 == report.scenario) {
            match report.ratio(key) {
                Some(ratio) if ratio >= floor => {}
                Some(ratio) => failures.push(format!(
                    "{scenario} {key}: {}/{} {ratio:.2}x is under the floor {floor:.2}x",
                    report.columns.0, report.columns.1
                )),
                None => failures.push(format!("{scenario} {key}: no ratio measured")),
            }
        }
    }
    failures
}

pub(super) fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Roomcast => "roomcast",
        Kind::Baseline => "baseline",
    }
}

/// Starts roomcast (`serve`, with settings for load) or the baseline (`ws` or `sse`).
pub(super) async fn start(
    ctx: &Ctx,
    report: &mut Report,
    kind: Kind,
    baseline: &str,
) -> Result<ServerProc, String> {
    start_with(ctx, report, kind, baseline, name(kind), &[]).await
}

/// [`start`], with more flags for `roomcast serve` (`extra`, before `--serve-arg`s), its
/// command line kept in the report as `{label}_command`.
pub(super) async fn start_with(
    ctx: &Ctx,
    report: &mut Report,
    kind: Kind,
    baseline: &str,
    label: &'static str,
    extra: &[String],
) -> Result<ServerProc, String> {
    let addr: SocketAddr = free_addr()?;
    let threads = ctx.server_threads.to_string();
    let spec = match kind {
        Kind::Roomcast => {
            let per_ip = (ctx.connections + 1000).to_string();
            let defaults = [
                // One publisher sends a whole burst: no rate limit in the way.
                ("--rate", "1000000"),
                ("--burst", "1000000"),
                // Every client is 127.0.0.1.
                ("--max-connections-per-ip", per_ip.as_str()),
                // The peers admit every arrival at once: so does roomcast here.
                ("--max-new-sessions", "0"),
                ("--log", "warn"),
                ("--threads", threads.as_str()),
                // Against baselines that store nothing: the streams in memory. The durable
                // scenarios store (`--serve-arg=--data-dir=...` replaces this).
                ("--memory", "true"),
            ];
            let mut args = vec!["serve".into(), "--listen".into(), addr.to_string()];
            // A --serve-arg replaces the default of the same flag.
            for (flag, value) in defaults {
                let replaced = |arg: &String| {
                    arg.starts_with(flag) || (flag == "--memory" && arg.starts_with("--data-dir"))
                };
                if !ctx.serve_args.iter().any(replaced) {
                    args.extend([flag.to_owned(), value.to_owned()]);
                }
            }
            args.extend(extra.iter().cloned());
            args.extend(ctx.serve_args.iter().cloned());
            ServerSpec {
                label,
                program: ctx.server.clone(),
                args,
                // For `--serve-arg=--runtime=smol`, whose threads only this sets.
                env: vec![("SMOL_THREADS".into(), threads.clone())],
                wrapper: ctx.server_wrapper.clone(),
            }
        }
        Kind::Baseline => {
            let mut args: Vec<String> = [
                "baseline",
                baseline,
                "--listen",
                &addr.to_string(),
                "--threads",
                &threads,
            ]
            .map(String::from)
            .into();
            if ctx.plain_baseline {
                args.push("--plain".into());
            }
            ServerSpec {
                label: "baseline",
                program: ctx.own.clone(),
                args,
                env: Vec::new(),
                wrapper: ctx.server_wrapper.clone(),
            }
        }
    };
    let line = spec.command_line().replace(&addr.to_string(), "ADDR");
    report.param(&format!("{label}_command"), line);
    ServerProc::start(spec, addr).await
}

/// After a server's run: its warnings become notes, and its log is kept if its run failed
/// (anything failed since `mark`).
pub(super) fn finish(mut server: ServerProc, report: &mut Report, mark: (usize, u64)) {
    if report.mark() != mark {
        let log = server.keep_log();
        report
            .notes
            .push(format!("{} log kept: {}", server.spec.label, log.display()));
    }
    let warnings = server.log_warnings();
    if let Some(first) = warnings.first() {
        report.notes.push(format!(
            "{} logged {} warnings; first: {first}",
            server.spec.label,
            warnings.len()
        ));
    }
}

pub(super) fn secs(d: Duration) -> Option<f64> {
    Some(d.as_secs_f64())
}

pub(super) fn pair<T>(results: &[Option<T>; 2], f: impl Fn(&T) -> Option<f64>) -> [Option<f64>; 2] {
    [
        results[0].as_ref().and_then(&f),
        results[1].as_ref().and_then(&f),
    ]
}

async fn echo_report(ctx: &Ctx) -> Report {
    let mut report = Report::new("echo");
    report.param("connections", ctx.connections);
    report.param("messages_per_connection", ctx.echo_messages);
    report.param("median_of", ctx.repeats);
    let mut results = [None, None];
    for (i, kind) in ctx.order() {
        let mark = report.mark();
        let server = match start(ctx, &mut report, kind, "ws").await {
            Ok(server) => server,
            Err(error) => {
                report.errors.push(format!("{}: {error}", name(kind)));
                continue;
            }
        };
        match echo::run(ctx, &server, kind, ctx.deadline()).await {
            Ok(result) => results[i] = Some(result),
            Err(error) => report.errors.push(format!("{}: {error}", name(kind))),
        }
        finish(server, &mut report, mark);
    }
    for (j, size) in ctx.echo_sizes.iter().enumerate() {
        let at = |f: fn(&echo::EchoResult) -> Option<f64>| {
            pair(&results, |r: &Vec<echo::EchoResult>| r.get(j).and_then(f))
        };
        report.row(
            format!("{size} B: messages/s"),
            format!("echo_{size}_per_s"),
            at(|r| r.per_s),
        );
        report.row(
            format!("{size} B: round trip p50 (ms)"),
            format!("echo_{size}_p50_ms"),
            at(|r| r.p50_ms),
        );
        report.row(
            format!("{size} B: round trip p99 (ms)"),
            format!("echo_{size}_p99_ms"),
            at(|r| r.p99_ms),
        );
        report.row(
            format!("{size} B: server CPU (s)"),
            format!("echo_{size}_cpu_s"),
            at(|r| secs(r.cpu)),
        );
        report.row(
            format!("{size} B: client CPU (s)"),
            format!("echo_{size}_client_cpu_s"),
            at(|r| secs(r.client_cpu)),
        );
    }
    report
}

async fn idle_report(ctx: &Ctx) -> Report {
    let mut report = Report::new("idle");
    report.param("connections", ctx.connections);
    for (transport, label, key, baseline) in [
        (Transport::Ws, "WebSocket", "ws", "ws"),
        (Transport::Sse, "SSE", "sse", "sse"),
    ] {
        let mut results = [None, None];
        for (i, kind) in ctx.order() {
            // A fresh server for each measurement.
            let mark = report.mark();
            let server = match start(ctx, &mut report, kind, baseline).await {
                Ok(server) => server,
                Err(error) => {
                    report.errors.push(format!("{}: {error}", name(kind)));
                    continue;
                }
            };
            match idle::run(ctx, &server, kind, transport, &Dial::Plain, ctx.deadline()).await {
                Ok(result) => results[i] = Some(result),
                Err(error) => report
                    .errors
                    .push(format!("{} {label}: {error}", name(kind))),
            }
            finish(server, &mut report, mark);
        }
        let kib =
            |f: fn(&idle::IdleResult) -> u64| pair(&results, move |r| Some(f(r) as f64 / 1024.0));
        report.row(
            format!("{label}: RSS per idle connection (KiB)"),
            format!("{key}_rss_per_conn_kib"),
            pair(&results, |r| Some(r.per_connection_kib)),
        );
        report.row(
            format!("{label}: RSS before (MiB)"),
            format!("{key}_rss_before_mib"),
            kib(|r| r.before_kib),
        );
        report.row(
            format!("{label}: RSS with C connections (MiB)"),
            format!("{key}_rss_after_mib"),
            kib(|r| r.after_kib),
        );
    }
    report
}

async fn churn_report(ctx: &Ctx) -> Report {
    let mut report = Report::new("churn");
    report.param("workers", ctx.churn_workers.clamp(1, ctx.connections));
    report.param("seconds", ctx.churn_time.as_secs_f64());
    report.notes.push("roomcast's cycle is connect, join, leave, disconnect; the baseline's (no rooms) is connect, disconnect".into());
    let mut results = [None, None];
    for (i, kind) in ctx.order() {
        let mark = report.mark();
        let server = match start(ctx, &mut report, kind, "ws").await {
            Ok(server) => server,
            Err(error) => {
                report.errors.push(format!("{}: {error}", name(kind)));
                continue;
            }
        };
        match churn::run(ctx, &server, kind, ctx.deadline()).await {
            Ok(result) => {
                if let Some(error) = &result.first_error {
                    report.errors.push(format!(
                        "{}: {} of {} cycles failed; first: {error}",
                        name(kind),
                        result.errors,
                        result.cycles + result.errors
                    ));
                }
                results[i] = Some(result);
            }
            Err(error) => report.errors.push(format!("{}: {error}", name(kind))),
        }
        finish(server, &mut report, mark);
    }
    report.row("cycles/s", "cycles_per_s", pair(&results, |r| r.per_s));
    report.row(
        "cycle p50 (ms)",
        "cycle_p50_ms",
        pair(&results, |r| r.p50_ms),
    );
    report.row(
        "cycle p99 (ms)",
        "cycle_p99_ms",
        pair(&results, |r| r.p99_ms),
    );
    report.row(
        "cycles",
        "cycles",
        pair(&results, |r| Some(r.cycles as f64)),
    );
    report.row("server CPU (s)", "cpu_s", pair(&results, |r| secs(r.cpu)));
    report
}
