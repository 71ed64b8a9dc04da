//! `fanout-stomp`: roomcast's STOMP over WebSocket against its roomcast.v1 WebSocket in one
//! run: C receivers subscribed to one room (`SUBSCRIBE /topic/bench`, or `join`), one v1
//! publisher, paced and burst (the fan-out figures); then the server's memory per idle STOMP
//! connection (connected, subscribed to nothing) against an idle v1 one. `fanout-rabbitmq`:
//! the same STOMP receivers against RabbitMQ's Web-STOMP (`rabbitmq.rs`).

use super::dial::Dial;
use super::fanout::{self, Clients, Transport};
use super::procs::ServerProc;
use super::report::Report;
use super::scenarios::{finish, pair, start_with};
use super::{Ctx, Kind, idle, rabbitmq};

/// The `fanout-stomp` scenario: roomcast's STOMP against its roomcast.v1.
pub(crate) async fn report(ctx: &Ctx) -> Report {
    let sides = [
        ("stomp", Side::Roomcast(Transport::Stomp)),
        ("v1", Side::Roomcast(Transport::Ws)),
    ];
    compare(ctx, "fanout-stomp", sides).await
}

/// The `fanout-rabbitmq` scenario: roomcast's STOMP against RabbitMQ's Web-STOMP, the same
/// STOMP receivers on both, each server's own publisher (roomcast.v1 publishes, answered once
/// stored; a STOMP `SEND` to RabbitMQ's `/topic/`).
pub(crate) async fn rabbitmq_report(ctx: &Ctx) -> Report {
    let sides = [
        ("roomcast", Side::Roomcast(Transport::Stomp)),
        ("rabbitmq", Side::RabbitMq),
    ];
    compare(ctx, "fanout-rabbitmq", sides).await
}

/// A server and its receivers: roomcast over a transport, or RabbitMQ over Web-STOMP.
#[derive(Clone, Copy)]
enum Side {
    Roomcast(Transport),
    RabbitMq,
}

impl Side {
    /// Who the clients speak to (`Kind::Baseline`: the peer), and how.
    fn clients(self) -> (Kind, Transport) {
        match self {
            Self::Roomcast(transport) => (Kind::Roomcast, transport),
            Self::RabbitMq => (Kind::Baseline, Transport::Stomp),
        }
    }

    /// Starts the side's server on a fresh state; RabbitMQ with what stops its `epmd`.
    async fn start(
        self,
        ctx: &Ctx,
        report: &mut Report,
        label: &'static str,
    ) -> Result<(ServerProc, Option<rabbitmq::Cleanup>), String> {
        match self {
            Self::Roomcast(_) => start_with(ctx, report, Kind::Roomcast, "", label, &[])
                .await
                .map(|server| (server, None)),
            Self::RabbitMq => {
                let started = rabbitmq::start(label).await?;
                let command = started.server.spec.command_line();
                report.param(&format!("{label}_command"), command);
                Ok((started.server, Some(started.cleanup)))
            }
        }
    }
}

/// Two sides, each on a fresh server: C receivers subscribed to one room, one publisher, paced
/// and burst (the fan-out figures); then, on another fresh server, the memory per idle
/// connection (connected, subscribed to nothing).
async fn compare(ctx: &Ctx, name: &'static str, sides: [(&'static str, Side); 2]) -> Report {
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
                        if matches!(side, Side::RabbitMq) && report.lost > before {
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
