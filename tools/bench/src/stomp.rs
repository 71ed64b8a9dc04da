//! `fanout-stomp`: roomcast's STOMP over WebSocket against its roomcast.v1 WebSocket in one
//! run: C receivers subscribed to one room (`SUBSCRIBE /topic/bench`, or `join`), one v1
//! publisher, paced and burst (the fan-out figures); then the server's memory per idle STOMP
//! connection (connected, subscribed to nothing) against an idle v1 one. `fanout-rabbitmq`:
//! the same STOMP receivers against RabbitMQ's Web-STOMP (`rabbitmq.rs`). Both run through
//! `versus.rs`.

use super::Ctx;
use super::fanout::Transport;
use super::report::Report;
use super::versus::{Side, compare};

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
