//! `fanout-nodes`: roomcast on Redis, two nodes against one, with the same clients in the same
//! invocation. The receivers are spread over two nodes (`--redis`), against all of them on one
//! node of the same Redis (emptied between the two). In the report the first column is two
//! nodes, the second one node; the CPU figures are the nodes' and Redis's together, so a ratio
//! is what scaling out costs per delivery. Also Redis's commands per published message (aim:
//! one script call per publish).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::dial::Dial;
use super::fanout::{self, Clients, Transport, fanout_rows};
use super::procs::{ServerProc, ServerSpec, free_addr};
use super::report::Report;
use super::scenarios::finish;
use super::{Ctx, Kind};

pub(crate) async fn report(ctx: &Ctx) -> Report {
    let mut report = Report::new("fanout-nodes");
    report.columns = ("two nodes", "one node");
    report.param("connections", ctx.connections);
    report.param("burst_messages", ctx.messages);
    report.param("paced_messages", ctx.paced_messages);
    report.param("paced_per_s", ctx.paced_rate);
    let redis = match start_redis(ctx, &mut report).await {
        Ok(redis) => redis,
        Err(error) => {
            report.errors.push(format!("redis: {error}"));
            return report;
        }
    };
    let published: u64 = fanout::plan(ctx).iter().map(|(_, k, _)| k).sum();
    let mut results = [None, None];
    let mut commands = [None, None];
    let mut scripts = [None, None];
    let mut per_message = [None, None];
    let mut per_member = [None, None];
    for (i, kind) in ctx.order() {
        let count = if kind == Kind::Roomcast { 2 } else { 1 };
        let label = if count == 2 { "two nodes" } else { "one node" };
        if let Err(error) = command(redis.addr, &["FLUSHALL"]) {
            report.errors.push(format!("{label}: FLUSHALL: {error}"));
            continue;
        }
        let mark = report.mark();
        let mut nodes = Vec::new();
        for n in 0..count {
            match start_node(ctx, &mut report, redis.addr, n, count).await {
                Ok(node) => nodes.push(node),
                Err(error) => report.errors.push(format!("{label}: {error}")),
            }
        }
        if nodes.len() < count {
            continue;
        }
        // Counted from when every client is in: the runs' commands, not the joins'.
        let mut before = Err(String::new());
        let refs: Vec<&ServerProc> = nodes.iter().collect();
        let ran = fanout::run(
            ctx,
            &refs,
            &[&redis],
            Clients {
                kind: Kind::Roomcast,
                transport: Transport::Ws,
                dial: &Dial::Plain,
            },
            ctx.deadline(),
            &mut || before = calls(redis.addr),
        )
        .await;
        match ran {
            Ok(result) => {
                for error in &result.errors {
                    report.errors.push(format!("{label}: {error}"));
                }
                for run in &result.runs {
                    report.lost += run.lost;
                }
                results[i] = Some(result);
            }
            Err(error) => report.errors.push(format!("{label}: {error}")),
        }
        if let (Ok(before), Ok(after)) = (before, calls(redis.addr)) {
            // Less the INFO of the two readings.
            let used = after.total.saturating_sub(before.total).saturating_sub(1);
            commands[i] = Some(used as f64 / published as f64);
            let evalsha = after.evalsha.saturating_sub(before.evalsha);
            scripts[i] = Some(evalsha as f64 / published as f64);
        }
        // What Redis holds for the room, while its members are still there.
        match memory(redis.addr) {
            Ok((message, member)) => {
                per_message[i] = message;
                per_member[i] = member;
            }
            Err(error) => report
                .errors
                .push(format!("{label}: redis memory: {error}")),
        }
        for node in nodes {
            finish(node, &mut report, mark);
        }
    }
    fanout_rows(ctx, &mut report, &results);
    report.row(
        "redis script calls (EVALSHA) per published message",
        "redis_scripts_per_message",
        scripts,
    );
    report.row(
        "redis commands per published message, the scripts' own included",
        "redis_commands_per_message",
        commands,
    );
    report.row(
        "redis bytes per stored message (the room's log, MEMORY USAGE / XLEN)",
        "redis_bytes_per_message",
        per_message,
    );
    report.row(
        "redis bytes per presence entry (the room's presence set, MEMORY USAGE / ZCARD)",
        "redis_bytes_per_presence_entry",
        per_member,
    );
    drop(redis);
    report
}

async fn start_redis(ctx: &Ctx, report: &mut Report) -> Result<ServerProc, String> {
    let addr = free_addr()?;
    let port = addr.port().to_string();
    let args: Vec<String> = [
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory-policy",
        "noeviction",
    ]
    .map(String::from)
    .into();
    let spec = ServerSpec {
        label: "redis",
        program: ctx.redis_server.clone(),
        args,
        env: Vec::new(),
        wrapper: Vec::new(),
    };
    report.param("redis_command", spec.command_line().replace(&port, "PORT"));
    ServerProc::start(spec, addr).await
}

async fn start_node(
    ctx: &Ctx,
    report: &mut Report,
    redis: SocketAddr,
    n: usize,
    count: usize,
) -> Result<ServerProc, String> {
    let addr = free_addr()?;
    let threads = ctx.server_threads.to_string();
    let per_ip = (ctx.connections + 1000).to_string();
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        &addr.to_string(),
        "--rate",
        "1000000",
        "--burst",
        "1000000",
        "--max-connections-per-ip",
        &per_ip,
        "--log",
        "warn",
        "--threads",
        &threads,
        "--redis",
        &format!("redis://{redis}/"),
    ]
    .map(String::from)
    .into();
    args.extend(ctx.serve_args.iter().cloned());
    let label = if count == 2 { "node" } else { "single" };
    let spec = ServerSpec {
        label,
        program: ctx.server.clone(),
        args,
        env: vec![("SMOL_THREADS".into(), threads)],
        wrapper: ctx.server_wrapper.clone(),
    };
    if n == 0 {
        let line = spec
            .command_line()
            .replace(&addr.to_string(), "ADDR")
            .replace(&redis.to_string(), "REDIS");
        report.param(&format!("{label}_command"), line);
    }
    ServerProc::start(spec, addr).await
}

/// Bytes Redis uses per stored message of the bench's room, and per entry of its presence
/// set (`MEMORY USAGE ... SAMPLES 0` counts every element), each `None` when it holds none.
fn memory(redis: SocketAddr) -> Result<(Option<f64>, Option<f64>), String> {
    let per = |key: &str, count: &str| -> Result<Option<f64>, String> {
        let n = integer(&command(redis, &[count, key])?);
        let bytes = integer(&command(redis, &["MEMORY", "USAGE", key, "SAMPLES", "0"])?);
        Ok((n > 0).then(|| bytes as f64 / n as f64))
    };
    let room = super::ROOM;
    Ok((
        per(&format!("rc:{{r:{room}}}:l"), "XLEN")?,
        per(&format!("rc:{{r:{room}}}:p"), "ZCARD")?,
    ))
}

/// An integer reply's value (0 for anything else, a nil included).
fn integer(reply: &str) -> u64 {
    reply
        .strip_prefix(':')
        .and_then(|n| n.trim_end().parse().ok())
        .unwrap_or(0)
}

/// The calls Redis has served, from `INFO commandstats` (which counts the commands a script
/// calls as well as the script's own call).
struct Calls {
    total: u64,
    evalsha: u64,
}

fn calls(redis: SocketAddr) -> Result<Calls, String> {
    let text = command(redis, &["INFO", "commandstats"])?;
    let mut calls = Calls {
        total: 0,
        evalsha: 0,
    };
    for line in text.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|line| line.split_once(":calls="))
        else {
            continue;
        };
        let n: u64 = rest
            .split(',')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        calls.total += n;
        if name == "evalsha" {
            calls.evalsha += n;
        }
    }
    Ok(calls)
}

/// One command in RESP on a connection of its own: its reply's text (a bulk or simple string).
fn command(redis: SocketAddr, words: &[&str]) -> Result<String, String> {
    let mut stream = TcpStream::connect(redis).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut request = format!("*{}\r\n", words.len());
    for word in words {
        request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
    }
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&chunk[..n]);
        if complete(&reply) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&reply).into_owned();
    match text.as_bytes().first() {
        Some(b'-') => Err(text.trim_end().to_owned()),
        _ => Ok(text),
    }
}

/// Whether a RESP reply is whole: a simple line, or a bulk string of its announced length.
fn complete(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    if reply[0] != b'$' {
        return true;
    }
    let len: usize = std::str::from_utf8(&reply[1..end])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    reply.len() >= end + 2 + len + 2
}
