//! `roomcast-bench`: a bounded load generator on 127.0.0.1 that measures a `roomcast serve`
//! against two minimal baselines in the same run. The servers run in child processes of their
//! own (their memory and CPU are read from `/proc`): roomcast from the binary given with
//! `--server`, the baselines from this executable (`roomcast-bench baseline`, hidden). The load
//! clients share one small tokio runtime here. The method and the figures are in
//! docs/performance.md.

#![forbid(unsafe_code)]

mod arrival;
mod baseline;
mod chart;
mod churn;
mod client;
mod dial;
mod durable;
mod echo;
mod fanout;
mod http;
mod idle;
mod nchan;
mod nodes;
mod peers;
mod procs;
mod rabbitmq;
mod reconnect;
mod report;
mod scenarios;
mod socketio;
mod stats;
mod stomp;
mod tls;
mod versus;

use std::cell::Cell;
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use procs::ServerProc;

/// Load-test roomcast on 127.0.0.1 against minimal baselines measured in the same run.
///
/// Each server runs in a child process of its own: `roomcast serve` (the binary of --server,
/// with the load settings it prints) and, with the same clients, a plain WebSocket broadcast
/// server (async-tungstenite) or a plain hyper SSE broadcast server, which this executable
/// serves itself. Scenarios: `echo` (round trips), `fanout-ws` and `fanout-sse` (one room,
/// paced and burst: deliveries/s, latency, lost messages), `idle` (server memory per
/// connection), `churn` (connection cycles/s), `all`. Each prints a table and one JSON line
/// (only JSON lines with --json). `durable` compares roomcast storing on disk with roomcast in
/// memory instead of a baseline. Every run is bounded in count and time; any lost message or
/// error exits nonzero. The regression check for CI is `roomcast-bench all --short --check`.
/// See docs/performance.md.
#[derive(Parser)]
#[command(
    name = "roomcast-bench",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    bench: Box<BenchArgs>,
}

/// Subcommands: a baseline server (what the tool runs itself as; hidden), and `chart`.
#[derive(Subcommand)]
enum Command {
    /// A baseline server, run by `roomcast-bench` itself as a child process.
    #[command(hide = true)]
    Baseline(baseline::BaselineArgs),
    /// Draws the figures of `--json` runs as SVG charts, C across, one line per server.
    Chart(chart::ChartArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Baseline(args)) => baseline::run(args),
        Some(Command::Chart(args)) => chart::run(args),
        None => run(*cli.bench),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("roomcast-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The one room of the fan-out scenarios.
const ROOM: &str = "bench";

/// `roomcast-bench`'s flags. Those marked "short" take a smaller default under `--short`.
#[derive(Args, Debug)]
struct BenchArgs {
    /// What to measure.
    // An `Option` only so that the hidden `baseline` subcommand parses without it; clap
    // requires it otherwise.
    #[arg(value_enum, required = true)]
    scenario: Option<Scenario>,
    /// The `roomcast` binary to measure. [default: `roomcast` in the same directory as this
    /// executable, where `cargo build --release -p roomcast -p roomcast-bench` puts both]
    #[arg(long, value_name = "PATH")]
    server: Option<PathBuf>,
    /// Connections (receivers, echo sockets, idle connections). [default: 1000; short: 200]
    #[arg(long, short = 'c', value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: Option<u32>,
    /// Messages the fan-out publisher sends in each burst run. [default: 100; short: 50]
    #[arg(long, short = 'k')]
    messages: Option<u64>,
    /// Repeats of each timed run (each fan-out burst, each echo size); the median is reported,
    /// so one run disturbed by another process on the machine does not decide.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Runs of each whole scenario, each server freshly started in each; the order of the
    /// servers alternates (roomcast first in odd rounds). With more than one, a summary follows
    /// the rounds: the median of each figure over them, every round's ratio, and percentiles
    /// over all rounds' paced messages. A server process's run-to-run scatter (where its memory
    /// lands) is larger than one change; rounds average it out.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Messages per second of the paced fan-out run. [default: 2; short: 20]
    #[arg(long)]
    paced: Option<f64>,
    /// Messages of the paced fan-out run. [default: 20; short: 10]
    #[arg(long)]
    paced_messages: Option<u64>,
    /// Payload bytes of a fan-out message (the JSON `data`, stamp included; at least 48).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Round trips per echo socket, for each payload size and repeat. [default: 50; short: 50]
    #[arg(long)]
    echo_messages: Option<u64>,
    /// Echo payload sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 1024])]
    echo_sizes: Vec<usize>,
    /// How long each server is churned. [default: 5s; short: 1s]
    #[arg(long, value_parser = humantime::parse_duration)]
    churn_time: Option<Duration>,
    /// Concurrent connect-disconnect loops in `churn`.
    #[arg(long, default_value_t = 50)]
    churn_workers: usize,
    /// Cap on one server's part of a scenario; past it the run reports what completed and
    /// fails. [default: 120s; short: 30s]
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Connections opened (and, for roomcast, joined) at once while setting up, so the listen
    /// backlog is never overrun. [default: 200]
    #[arg(long)]
    concurrency: Option<usize>,
    /// Worker threads of each server under test (roomcast's `--threads`, and `SMOL_THREADS` for
    /// `--runtime smol`; the baselines' tokio workers), the same for both.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// Worker threads of the load clients' tokio runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Another argument for `roomcast serve` (repeat for more): `--serve-arg=--queue-bytes=65536`.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Run each server (roomcast and the baseline) under this command, split at spaces:
    /// `--server-wrapper="taskset -c 1"`, or `valgrind --tool=callgrind` with `--before-run`.
    #[arg(long, allow_hyphen_values = true)]
    server_wrapper: Option<String>,
    /// A shell command run before each timed fan-out run, once the server is quiet, with the
    /// server's process id in `ROOMCAST_BENCH_PID`: `--before-run='callgrind_control -d
    /// $ROOMCAST_BENCH_PID'` makes callgrind write the counts of each run apart.
    #[arg(long)]
    before_run: Option<String>,
    /// Longest a `--before-run` command may take; past it, it is killed and the run fails.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    before_run_limit: Duration,
    /// Measure against the plain WebSocket baseline: one `send` (a flush) per message per
    /// connection, as most broadcast examples write it, instead of the tuned one that writes
    /// every waiting message with one flush.
    #[arg(long)]
    plain_baseline: bool,
    /// A small, fast configuration, for CI.
    #[arg(long)]
    short: bool,
    /// Also fail when roomcast's throughput ratio to the baseline falls below the floors that
    /// `docs/performance.md` gives (about half the ratios measured in short mode).
    #[arg(long)]
    check: bool,
    /// Print only the JSON lines, one per scenario, on stdout.
    #[arg(long)]
    json: bool,
    /// `durable`: publishers of the throughput part, each in a room of its own. [default: 64;
    /// short: 16]
    #[arg(long)]
    durable_publishers: Option<usize>,
    /// `durable`: how long the throughput part publishes. [default: 5s; short: 1s]
    #[arg(long, value_parser = humantime::parse_duration)]
    durable_time: Option<Duration>,
    /// `durable`: publishes per second of the latency part.
    #[arg(long, default_value_t = 1000.0)]
    durable_rate: f64,
    /// `durable`: publishes of the latency part. [default: 3000; short: 500]
    #[arg(long)]
    durable_paced: Option<u64>,
    /// `durable`: messages the store holds when it is killed and started again, for the
    /// start-up time. [default: 1000000; short: 20000]
    #[arg(long)]
    durable_fill: Option<u64>,
    /// `fanout-nodes`: the `redis-server` to start (a path, or a name on the PATH).
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// WebSocket echo: messages/s and round trip, 64 B and 1 KiB.
    Echo,
    /// One room over WebSocket: paced and burst fan-out.
    FanoutWs,
    /// One room over SSE, published by HTTP POST.
    FanoutSse,
    /// Server memory per idle WebSocket and SSE connection.
    Idle,
    /// Connect, join, leave, disconnect cycles per second.
    Churn,
    /// Stored on disk against in memory: publishes/s, publish-to-reply latency, start-up.
    Durable,
    /// roomcast over TLS against plain TCP: handshake cycles/s, memory per idle WebSocket.
    Tls,
    /// SSE fan-out over TLS: 100 streams to an HTTP/2 connection against one HTTP/1.1
    /// connection per stream.
    FanoutH2,
    /// STOMP over WebSocket against roomcast.v1: fan-out, and memory per idle connection.
    FanoutStomp,
    /// Two roomcast nodes on Redis against one, the receivers spread over them (needs
    /// `redis-server`; not part of `all`).
    FanoutNodes,
    /// roomcast's STOMP against RabbitMQ's Web-STOMP: fan-out, and memory per idle connection
    /// (needs Debian `rabbitmq-server`; not part of `all`).
    FanoutRabbitmq,
    /// C clients of a roomcast on disk, the server restarted (SIGTERM, then started on the same
    /// directory): time until every client resumed, lost and duplicated messages, 429s met,
    /// CPU and peak RSS (not part of `all`).
    Reconnect,
    /// roomcast.v1 over WebSocket against Nchan: fan-out, and memory per idle connection
    /// (needs Debian `libnginx-mod-nchan`; not part of `all`).
    FanoutNchan,
    /// roomcast.v1 over WebSocket against Socket.IO 4.8 on Node: fan-out, and memory per idle
    /// connection (needs `node` and `npm ci` in `tools/bench/peers/socketio`; not part of `all`).
    FanoutSocketio,
    /// 10,000 subscribers arriving at once (500 in flight) in one room, against Nchan: time
    /// until all are subscribed, presence frames per subscriber, CPU, memory per connection
    /// after the storm (needs Debian `libnginx-mod-nchan`; not part of `all`).
    Arrival,
    /// Every scenario, in that order.
    All,
}

/// Which server a run is against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Roomcast,
    Baseline,
}

/// The resolved settings every scenario reads.
pub(crate) struct Ctx {
    /// The `roomcast` binary under test.
    server: PathBuf,
    /// This executable, which serves the baselines.
    own: PathBuf,
    connections: usize,
    messages: u64,
    repeats: usize,
    rounds: usize,
    /// This round runs the baseline before roomcast.
    baseline_first: Cell<bool>,
    paced_rate: f64,
    paced_messages: u64,
    size: usize,
    echo_messages: u64,
    echo_sizes: Vec<usize>,
    churn_time: Duration,
    churn_workers: usize,
    duration: Duration,
    concurrency: usize,
    server_threads: usize,
    serve_args: Vec<String>,
    server_wrapper: Vec<String>,
    before_run: Option<String>,
    before_run_limit: Duration,
    plain_baseline: bool,
    json: bool,
    progress: bool,
    durable: durable::DurableArgs,
    redis_server: PathBuf,
}

impl Ctx {
    /// A progress bar on a terminal; hidden with `--json` or when stderr is not a terminal.
    fn bar(&self, len: u64, message: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template("  {msg:32} {bar:30} {pos}/{len} {elapsed}")
            .expect("a valid template");
        ProgressBar::new(len)
            .with_style(style)
            .with_message(message.to_owned())
    }

    /// A line for people, on stderr; quiet with `--json`.
    fn say(&self, line: &str) {
        if !self.json {
            eprintln!("{line}");
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.duration
    }

    /// The servers in this round's order, each with its place in a report's pair (roomcast 0,
    /// the baseline 1).
    fn order(&self) -> [(usize, Kind); 2] {
        if self.baseline_first.get() {
            [(1, Kind::Baseline), (0, Kind::Roomcast)]
        } else {
            [(0, Kind::Roomcast), (1, Kind::Baseline)]
        }
    }
}

fn run(args: BenchArgs) -> Result<(), String> {
    let Some(scenario) = args.scenario else {
        return Err("which scenario? (see --help)".into());
    };
    let own = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let server = procs::server_binary(args.server, &own)?;
    let short = args.short;
    let mut ctx = Ctx {
        server,
        own,
        connections: args.connections.unwrap_or(pick(short, 1000, 200)) as usize,
        messages: args.messages.unwrap_or(pick(short, 100, 50)).max(1),
        repeats: args.repeats.max(1),
        rounds: args.rounds as usize,
        baseline_first: Cell::new(false),
        paced_rate: args.paced.unwrap_or(pick(short, 2.0, 20.0)),
        paced_messages: args.paced_messages.unwrap_or(pick(short, 20, 10)).max(1),
        size: args.size.max(48),
        echo_messages: args.echo_messages.unwrap_or(50).max(1),
        echo_sizes: args.echo_sizes,
        churn_time: args.churn_time.unwrap_or(pick(
            short,
            Duration::from_secs(5),
            Duration::from_secs(1),
        )),
        churn_workers: args.churn_workers,
        duration: args.duration.unwrap_or(pick(
            short,
            Duration::from_secs(120),
            Duration::from_secs(30),
        )),
        concurrency: args.concurrency.unwrap_or(200).max(1),
        server_threads: args.server_threads.max(1),
        serve_args: args.serve_args,
        server_wrapper: args
            .server_wrapper
            .iter()
            .flat_map(|command| command.split_whitespace())
            .map(str::to_owned)
            .collect(),
        before_run: args.before_run,
        before_run_limit: args.before_run_limit,
        plain_baseline: args.plain_baseline,
        json: args.json,
        progress: !args.json && std::io::stderr().is_terminal(),
        redis_server: args.redis_server,
        durable: durable::DurableArgs {
            publishers: args
                .durable_publishers
                .unwrap_or(pick(short, 64, 16))
                .max(1),
            seconds: args.durable_time.unwrap_or(pick(
                short,
                Duration::from_secs(5),
                Duration::from_secs(1),
            )),
            rate: args.durable_rate,
            paced: args.durable_paced.unwrap_or(pick(short, 3000, 500)).max(1),
            fill: args.durable_fill.unwrap_or(pick(short, 1_000_000, 20_000)),
        },
    };
    if !ctx.durable.rate.is_finite() || ctx.durable.rate <= 0.0 {
        return Err("--durable-rate must be a positive rate".into());
    }
    if !ctx.paced_rate.is_finite() || ctx.paced_rate <= 0.0 {
        return Err("--paced must be a positive rate".into());
    }
    let limit = procs::raise_fd_limit();
    match &limit.refused {
        None => ctx.say(&format!(
            "open files: soft limit {} -> {} (hard {})",
            limit.before, limit.soft, limit.hard
        )),
        Some(error) => eprintln!(
            "open files: the kernel refused to raise the soft limit from {} to {}: {error}",
            limit.before, limit.hard
        ),
    }
    // Each side holds C sockets plus a margin (publisher, listeners, logs, the runtime).
    let fit = (limit.soft as usize).saturating_sub(256).max(1);
    if ctx.connections > fit {
        eprintln!(
            "open files: capping --connections at {fit} (asked for {}): the limit is {}",
            ctx.connections, limit.soft
        );
        ctx.connections = fit;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let started = Instant::now();
    let reports = runtime.block_on(scenarios::run_all(&ctx, scenario));
    let mut failures: Vec<String> = reports
        .iter()
        .filter(|report| !report.ok())
        .map(|report| format!("{} failed", report.scenario))
        .collect();
    if args.check {
        failures.extend(scenarios::check(&reports));
    }
    ctx.say(&format!(
        "bench took {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    if failures.is_empty() {
        if args.check {
            ctx.say("check: ok");
        }
        Ok(())
    } else {
        Err(format!("bench: {}", failures.join("; ")))
    }
}

/// The full default, or the small one under `--short`.
fn pick<T>(short: bool, full: T, small: T) -> T {
    if short { small } else { full }
}

/// Runs `--before-run`, if given, for `server`; a failure is the run's error, and so is a
/// command still running after `--before-run-limit` (it is killed).
async fn before_run(ctx: &Ctx, server: &ServerProc) -> Result<(), String> {
    let Some(command) = &ctx.before_run else {
        return Ok(());
    };
    // In a process group of its own, so that a limit kills what the shell started too.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("ROOMCAST_BENCH_PID", server.pid().to_string())
        .stdout(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("--before-run: {e}"))?;
    let limit = ctx.before_run_limit;
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("--before-run `{command}` failed: {status}")),
            Ok(None) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(None) => {
                let group = format!("-{}", child.id());
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &group])
                    .status();
                let _ = child.wait();
                return Err(format!(
                    "--before-run `{command}` still ran after {limit:?}"
                ));
            }
            Err(error) => return Err(format!("--before-run: {error}")),
        }
    }
}

/// Waits until the server's CPU use falls under about 10 % for 200 ms: set-up traffic (such as
/// roomcast's presence diffs to every member) is written before anything is timed. Bounded by
/// `deadline` and 30 s.
async fn wait_quiet(server: &ServerProc, deadline: Instant) {
    let until = deadline.min(Instant::now() + Duration::from_secs(30));
    let mut quiet = 0;
    let mut last = server.cpu_time();
    while quiet < 2 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = server.cpu_time();
        quiet = if now.saturating_sub(last) <= Duration::from_millis(10) {
            quiet + 1
        } else {
            0
        };
        last = now;
    }
}
