//! One side against another, each on a fresh server: C receivers subscribed to one room, one
//! publisher, paced and burst (the fan-out figures); then, on another fresh server, the memory
//! per idle connection. A side is roomcast over a transport, or a peer server the tool starts:
//! RabbitMQ's Web-STOMP (`rabbitmq.rs`), Nchan (`nchan.rs`) or Socket.IO (`socketio.rs`).
//! `fanout-nchan` and `fanout-socketio`: roomcast.v1 WebSocket receivers (joined, a v1
//! publisher whose publish is answered once stored) against the peer's WebSocket subscribers
//! (an HTTP `POST` publisher).

use super::dial::Dial;
use super::fanout::{self, Clients, Transport};
use super::procs::ServerProc;
use super::report::Report;
use super::scenarios::{finish, pair, start_with};
use super::{Ctx, Kind, idle, nchan, rabbitmq, socketio};

/// The `fanout-socketio` scenario: roomcast.v1 over WebSocket against Socket.IO 4.8.
pub(crate) async fn socketio_report(ctx: &Ctx) -> Report {
    let sides = [
        ("roomcast", Side::Roomcast(Transport::Ws)),
        ("socketio", Side::SocketIo),
    ];
    compare(ctx, "fanout-socketio", sides).await
}

/// The `fanout-nchan` scenario: roomcast.v1 over WebSocket against Nchan.
pub(crate) async fn nchan_report(ctx: &Ctx) -> Report {
    let sides = [
        ("roomcast", Side::Roomcast(Transport::Ws)),
        ("nchan", Side::Nchan),
    ];
    compare(ctx, "fanout-nchan", sides).await
}

/// A server and its receivers: roomcast over a transport, RabbitMQ over Web-STOMP, or Nchan.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    Roomcast(Transport),
    RabbitMq,
    Nchan,
    SocketIo,
}

impl Side {
    /// Who the clients speak to (`Kind::Baseline`: the peer), and how.
    fn clients(self) -> (Kind, Transport) {
        match self {
            Self::Roomcast(transport) => (Kind::Roomcast, transport),
            Self::RabbitMq => (Kind::Baseline, Transport::Stomp),
            Self::Nchan => (Kind::Baseline, Transport::Nchan),
            Self::SocketIo => (Kind::Baseline, Transport::SocketIo),
        }
    }

    /// Starts the side's server on a fresh state, with what cleans up after a peer once it is
    /// stopped (RabbitMQ's `epmd` and directory, Nchan's directory).
    async fn start(
        self,
        ctx: &Ctx,
        report: &mut Report,
        label: &'static str,
    ) -> Result<(ServerProc, Option<Box<dyn std::any::Any>>), String> {
        match self {
            Self::Roomcast(_) => start_with(ctx, report, Kind::Roomcast, "", label, &[])
                .await
                .map(|server| (server, None)),
            Self::RabbitMq => {
                let started = rabbitmq::start(label).await?;
                let command = started.server.spec.command_line();
                report.param(&format!("{label}_command"), command);
                Ok((started.server, Some(Box::new(started.cleanup))))
            }
            Self::Nchan => {
                let started = nchan::start(label, ctx.connections).await?;
                let command = started.server.spec.command_line();
                report.param(&format!("{label}_command"), command);
                Ok((started.server, Some(Box::new(started.dir))))
            }
            Self::SocketIo => {
                let server = socketio::start(label).await?;
                report.param(&format!("{label}_command"), server.spec.command_line());
                Ok((server, None))
            }
        }
    }
}

/// Two sides, each on a fresh server: C receivers subscribed to one room, one publisher, paced
/// and burst (the fan-out figures); then, on another fresh server, the memory per idle
/// connection (connected, subscribed to nothing; Nchan's subscribed, its only kind).
pub(crate) async fn compare(
    ctx: &Ctx,
    name: &'static str,
    sides: [(&'static str, Side); 2],
) -> Report {
    let mut report = Report::new(name);
    report.columns = (sides[0].0, sides[1].0);
    report.param("connections", ctx.connections);
    report.param("burst_messages", ctx.messages);
    report.param("paced_messages", ctx.paced_messages);
    report.param("paced_per_s", ctx.paced_rate);
    report.param("size", ctx.size);
    let mut results = [None, None];
    let mut memory = [None, None];
    for (i, _) in ctx.order() {
        let (label, side) = sides[i];
        let (kind, transport) = side.clients();
        let mark = report.mark();
        match side.start(ctx, &mut report, label).await {
            Ok((server, cleanup)) => {
                let clients = Clients {
                    kind,
                    transport,
                    dial: &Dial::Plain,
                };
                let ran =
                    fanout::run(ctx, &[&server], &[], clients, ctx.deadline(), &mut || {}).await;
                match ran {
                    Ok(result) => {
                        let before = report.lost;
                        fanout::absorb(ctx, &mut report, label, &result);
                        if !matches!(side, Side::Roomcast(_)) && report.lost > before {
                            // A peer that falls behind is a finding, not the tool failing.
                            let behind = report.lost - before;
                            report.lost = before;
                            report.notes.push(format!(
                                "{label}: {behind} deliveries had not come 2 s after the last \
                                 publish (the peer fell behind; its `lost` row counts them)"
                            ));
                        }
                        results[i] = Some(result);
                    }
                    Err(error) => report.errors.push(format!("{label}: {error}")),
                }
                finish(server, &mut report, mark);
                drop(cleanup);
            }
            Err(error) => report.errors.push(format!("{label}: {error}")),
        }
        // Memory on a fresh server: an allocator keeps what the fan-out freed.
        let mark = report.mark();
        match side.start(ctx, &mut report, label).await {
            Ok((server, cleanup)) => {
                let dial = &Dial::Plain;
                let measured = idle::run(ctx, &server, kind, transport, dial, ctx.deadline()).await;
                match measured {
                    Ok(result) => memory[i] = Some(result),
                    Err(error) => report.errors.push(format!("{label} idle: {error}")),
                }
                finish(server, &mut report, mark);
                drop(cleanup);
            }
            Err(error) => report.errors.push(format!("{label}: {error}")),
        }
    }
    report.row(
        "idle connection: RSS per connection (KiB)",
        "idle_rss_per_conn_kib",
        pair(&memory, |r| Some(r.per_connection_kib)),
    );
    fanout::fanout_rows(ctx, &mut report, &results);
    report
}
