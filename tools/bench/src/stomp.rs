//! `fanout-stomp`: roomcast's STOMP over WebSocket against its roomcast.v1 WebSocket in one
//! run: C receivers subscribed to one room (`SUBSCRIBE /topic/bench`, or `join`), one v1
//! publisher, paced and burst (the fan-out figures); then the server's memory per idle STOMP
//! connection (connected, subscribed to nothing) against an idle v1 one.

use super::dial::Dial;
use super::fanout::{self, Clients, Transport};
use super::report::Report;
use super::scenarios::{finish, pair, start_with};
use super::{Ctx, Kind, idle};

/// The `fanout-stomp` scenario.
pub(crate) async fn report(ctx: &Ctx) -> Report {
    let mut report = Report::new("fanout-stomp");
    report.columns = ("stomp", "v1");
    report.param("connections", ctx.connections);
    report.param("burst_messages", ctx.messages);
    report.param("paced_messages", ctx.paced_messages);
    report.param("paced_per_s", ctx.paced_rate);
    report.param("size", ctx.size);
    let mut results = [None, None];
    let mut memory = [None, None];
    for (i, kind) in ctx.order() {
        // Side 0 receives over STOMP, side 1 over roomcast.v1; both are roomcast.
        let (label, transport) = match kind {
            Kind::Roomcast => ("stomp", Transport::Stomp),
            Kind::Baseline => ("v1", Transport::Ws),
        };
        let mark = report.mark();
        match start_with(ctx, &mut report, Kind::Roomcast, "", label, &[]).await {
            Ok(server) => {
                let clients = Clients {
                    kind: Kind::Roomcast,
                    transport,
                    dial: &Dial::Plain,
                };
                let ran =
                    fanout::run(ctx, &[&server], &[], clients, ctx.deadline(), &mut || {}).await;
                match ran {
                    Ok(result) => {
                        fanout::absorb(ctx, &mut report, label, &result);
                        results[i] = Some(result);
                    }
                    Err(error) => report.errors.push(format!("{label}: {error}")),
                }
                finish(server, &mut report, mark);
            }
            Err(error) => report.errors.push(format!("{label}: {error}")),
        }
        // Memory on a fresh server: an allocator keeps what the fan-out freed.
        let mark = report.mark();
        match start_with(ctx, &mut report, Kind::Roomcast, "", label, &[]).await {
            Ok(server) => {
                let measured = idle::run(
                    ctx,
                    &server,
                    Kind::Roomcast,
                    transport,
                    &Dial::Plain,
                    ctx.deadline(),
                )
                .await;
                match measured {
                    Ok(result) => memory[i] = Some(result),
                    Err(error) => report.errors.push(format!("{label} idle: {error}")),
                }
                finish(server, &mut report, mark);
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
