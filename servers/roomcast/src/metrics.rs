//! `/metrics` in the Prometheus text format (prometheus-client), fed by the session loops'
//! reports. Every labelled counter is created up front and kept by index, so a report is one
//! atomic add: no map lookup, no lock, on the fan-out path.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use roomcast_core::close::CloseCode;
use roomcast_core::envelope::{ErrorCode, message_type};
use roomcast_io::{Ended, HubStats, Observer};
use serde::Deserialize;

/// The transports, as labelled.
pub(crate) const TRANSPORTS: [&str; 5] = ["websocket", "sse", "poll", "stomp", "sockjs"];
const IN_TYPES: [&str; 8] = [
    "join", "leave", "publish", "typing", "direct", "read", "ping", "app",
];
const OUT_TYPES: [&str; 14] = [
    "welcome",
    "reply",
    "error",
    "message",
    "presence",
    "typing",
    "direct",
    "notify",
    "receipt",
    "broadcast",
    "streams",
    "read",
    "shutdown",
    "other",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    transport: String,
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

/// Every metric of the server.
pub(crate) struct Metrics {
    registry: Registry,
    active: Vec<Gauge>,
    opened: Vec<Counter>,
    messages_in: Vec<Vec<Counter>>,
    messages_out: Vec<Vec<Counter>>,
    errors: Vec<Counter>,
    slow_consumer_closes: Counter,
    heartbeat_closes: Counter,
    sessions: Gauge,
    rooms: Gauge,
    users: Gauge,
    stored_messages: Gauge,
    stored_bytes: Gauge,
    rooms_with_history: Gauge,
    outboxes: Gauge,
    pending_operations: Gauge,
    /// Cumulative figures of the hub's, as counters (they only grow).
    hub_slow_consumers: Counter<u64, AtomicU64>,
    receipts_lost: Counter<u64, AtomicU64>,
    presence_sent: Counter<u64, AtomicU64>,
    engine_link_up: Gauge,
    sockjs_sessions: Gauge,
    admission_refusals: Counter<u64, AtomicU64>,
}

impl Metrics {
    pub(crate) fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("roomcast");
        let by_transport = |label: &str| TransportLabel {
            transport: label.to_owned(),
        };
        let active_family = Family::<TransportLabel, Gauge>::default();
        registry.register(
            "connections_active",
            "Live sessions, by transport",
            active_family.clone(),
        );
        let opened_family = Family::<TransportLabel, Counter>::default();
        registry.register(
            "connections",
            "Sessions opened since the start, by transport",
            opened_family.clone(),
        );
        let in_family = Family::<TypeLabels, Counter>::default();
        registry.register(
            "messages_in",
            "Client messages accepted, by transport and type",
            in_family.clone(),
        );
        let out_family = Family::<TypeLabels, Counter>::default();
        registry.register(
            "messages_out",
            "Server messages written, by transport and type",
            out_family.clone(),
        );
        let errors_family = Family::<CodeLabel, Counter>::default();
        registry.register(
            "errors",
            "Error replies sent, by code",
            errors_family.clone(),
        );
        let slow_consumer_closes = Counter::default();
        registry.register(
            "slow_consumer_closes",
            "Sessions closed as slow consumers (4000)",
            slow_consumer_closes.clone(),
        );
        let heartbeat_closes = Counter::default();
        registry.register(
            "heartbeat_closes",
            "Sessions closed for a missed heartbeat (4001)",
            heartbeat_closes.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let sessions = gauge(&mut registry, "hub_sessions", "Sessions the hub holds");
        let rooms = gauge(&mut registry, "hub_rooms", "Rooms with members");
        let users = gauge(
            &mut registry,
            "hub_users",
            "Users with a session or stored messages",
        );
        let stored_messages = gauge(
            &mut registry,
            "hub_stored_messages",
            "Messages held in room histories, outboxes and the broadcast feed",
        );
        let stored_bytes = gauge(
            &mut registry,
            "hub_stored_bytes",
            "Bytes of the messages held",
        );
        let rooms_with_history = gauge(
            &mut registry,
            "hub_rooms_with_history",
            "Rooms with stored messages, with or without members",
        );
        let outboxes = gauge(
            &mut registry,
            "hub_offline_outboxes",
            "Outboxes holding messages for users who are away (--max-offline-outboxes)",
        );
        let pending_operations = gauge(
            &mut registry,
            "hub_pending_operations",
            "Storage operations sent and not yet committed (--max-pending-writes)",
        );
        let hub_slow_consumers = Counter::<u64, AtomicU64>::default();
        registry.register(
            "hub_slow_consumers",
            "Sessions the hub dropped because their channel was full, since the start",
            hub_slow_consumers.clone(),
        );
        let sockjs_sessions = gauge(
            &mut registry,
            "sockjs_sessions",
            "SockJS sessions over HTTP held, the ended among them until they expire (5 s)",
        );
        let admission_refusals = Counter::<u64, AtomicU64>::default();
        registry.register(
            "admission_refusals",
            "New sessions refused past --max-new-sessions (429 rate_limited), since the start",
            admission_refusals.clone(),
        );
        let engine_link_up = gauge(
            &mut registry,
            "engine_link_up",
            "1 while the node reaches its engine (always, but for Redis), 0 while it does not",
        );
        let receipts_lost = Counter::<u64, AtomicU64>::default();
        registry.register(
            "hub_receipts_lost",
            "Read receipts the storage refused (a budget reached, or unavailable), since the start",
            receipts_lost.clone(),
        );
        let presence_sent = Counter::<u64, AtomicU64>::default();
        registry.register(
            "presence_frames",
            "Presence frames delivered, one per recipient (coalesced per room and window)",
            presence_sent.clone(),
        );
        let typed = |family: &Family<TypeLabels, Counter>, types: &[&str]| {
            TRANSPORTS
                .iter()
                .map(|transport| {
                    types
                        .iter()
                        .map(|kind| {
                            family
                                .get_or_create(&TypeLabels {
                                    transport: (*transport).to_owned(),
                                    r#type: (*kind).to_owned(),
                                })
                                .clone()
                        })
                        .collect()
                })
                .collect()
        };
        Arc::new(Self {
            active: TRANSPORTS
                .iter()
                .map(|t| active_family.get_or_create(&by_transport(t)).clone())
                .collect(),
            opened: TRANSPORTS
                .iter()
                .map(|t| opened_family.get_or_create(&by_transport(t)).clone())
                .collect(),
            messages_in: typed(&in_family, &IN_TYPES),
            messages_out: typed(&out_family, &OUT_TYPES),
            errors: ErrorCode::ALL
                .iter()
                .map(|code| code.as_str())
                .chain(["other"])
                .map(|code| {
                    errors_family
                        .get_or_create(&CodeLabel {
                            code: code.to_owned(),
                        })
                        .clone()
                })
                .collect(),
            slow_consumer_closes,
            heartbeat_closes,
            sessions,
            rooms,
            users,
            stored_messages,
            stored_bytes,
            rooms_with_history,
            outboxes,
            pending_operations,
            hub_slow_consumers,
            receipts_lost,
            presence_sent,
            engine_link_up,
            sockjs_sessions,
            admission_refusals,
            registry,
        })
    }

    /// Live sessions per transport, in the order of [`TRANSPORTS`].
    pub(crate) fn active(&self) -> Vec<i64> {
        self.active.iter().map(Gauge::get).collect()
    }

    /// Frames received from clients, frames sent to them, and of those the stored messages
    /// delivered (`message`, `direct`, `notify`, `broadcast`), since the start: the admin
    /// page's rates.
    pub(crate) fn traffic(&self) -> (u64, u64, u64) {
        let sum = |rows: &[Vec<Counter>], pick: &dyn Fn(&str) -> bool, types: &[&str]| -> u64 {
            rows.iter()
                .flat_map(|row| row.iter().zip(types))
                .filter(|(_, kind)| pick(kind))
                .map(|(counter, _)| counter.get())
                .sum()
        };
        let all = |_: &str| true;
        let stored = |kind: &str| matches!(kind, "message" | "direct" | "notify" | "broadcast");
        (
            sum(&self.messages_in, &all, &IN_TYPES),
            sum(&self.messages_out, &all, &OUT_TYPES),
            sum(&self.messages_out, &stored, &OUT_TYPES),
        )
    }

    /// New sessions refused by admission so far, for the next exposition.
    pub(crate) fn admission_refusals(&self, total: u64) {
        let counter = &self.admission_refusals;
        counter.inc_by(total.saturating_sub(counter.get()));
    }

    /// SockJS sessions over HTTP held now, for the next exposition.
    pub(crate) fn sockjs_sessions(&self, held: usize) {
        self.sockjs_sessions
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    /// Whether the engine's link is up, for the next exposition.
    pub(crate) fn engine_link(&self, up: bool) {
        self.engine_link_up.set(i64::from(up));
    }

    /// The text exposition, with the hub's figures as of `stats`.
    pub(crate) fn render(&self, stats: &HubStats) -> String {
        let gauge = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        self.sessions.set(gauge(stats.sessions));
        self.rooms.set(gauge(stats.rooms));
        self.users.set(gauge(stats.users));
        self.stored_messages.set(gauge(stats.stored_messages));
        self.stored_bytes.set(gauge(stats.stored_bytes));
        self.rooms_with_history.set(gauge(stats.rooms_with_history));
        self.outboxes.set(gauge(stats.outboxes));
        self.pending_operations.set(gauge(stats.pending_operations));
        // The hub counts; the counters catch up (two renders at once may each add a part).
        let catch_up = |counter: &Counter<u64, AtomicU64>, total: u64| {
            counter.inc_by(total.saturating_sub(counter.get()));
        };
        catch_up(&self.hub_slow_consumers, stats.slow_consumers);
        catch_up(&self.receipts_lost, stats.receipts_lost);
        catch_up(&self.presence_sent, stats.presence_sent);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

fn transport_index(transport: &str) -> Option<usize> {
    TRANSPORTS.iter().position(|t| *t == transport)
}

#[derive(Deserialize)]
struct ErrorHead<'a> {
    code: &'a str,
}

impl Observer for Metrics {
    fn opened(&self, transport: &'static str) {
        if let Some(i) = transport_index(transport) {
            self.active[i].inc();
            self.opened[i].inc();
        }
    }

    fn closed(&self, transport: &'static str, ended: &Ended) {
        if let Some(i) = transport_index(transport) {
            self.active[i].dec();
        }
        if let Ended::Closed(close) = ended {
            match close.code {
                CloseCode::SlowConsumer => self.slow_consumer_closes.inc(),
                CloseCode::HeartbeatTimeout => self.heartbeat_closes.inc(),
                _ => 0,
            };
        }
    }

    fn inbound(&self, transport: &'static str, kind: &str) {
        if let Some(i) = transport_index(transport) {
            let j = IN_TYPES
                .iter()
                .position(|t| *t == kind)
                .unwrap_or(IN_TYPES.len() - 1);
            self.messages_in[i][j].inc();
        }
    }

    fn outbound(&self, transport: &'static str, frame: &str) {
        let Some(i) = transport_index(transport) else {
            return;
        };
        let kind = message_type(frame);
        let j = OUT_TYPES
            .iter()
            .position(|t| *t == kind)
            .unwrap_or(OUT_TYPES.len() - 1);
        self.messages_out[i][j].inc();
        if kind == "error" {
            // Error frames are few: reading their code costs nothing that matters.
            let code = serde_json::from_str::<ErrorHead<'_>>(frame).map_or("other", |h| h.code);
            let k = ErrorCode::from_wire(code)
                .and_then(|code| ErrorCode::ALL.iter().position(|c| *c == code))
                .unwrap_or(ErrorCode::ALL.len());
            self.errors[k].inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_core::close::Close;

    #[test]
    fn reports_show_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.opened("websocket");
        metrics.opened("sse");
        metrics.inbound("websocket", "publish");
        metrics.outbound("websocket", r#"{"type":"message","room":"a"}"#);
        metrics.outbound(
            "websocket",
            r#"{"type":"error","ref":"x\",\"code\":\"internal","code":"not_member","message":"m"}"#,
        );
        metrics.closed(
            "websocket",
            &Ended::Closed(Close::new(CloseCode::SlowConsumer, "slow")),
        );
        let stats = HubStats {
            sessions: 1,
            stored_messages: 3,
            ..HubStats::default()
        };
        let text = metrics.render(&stats);
        for line in [
            r#"roomcast_connections_active{transport="websocket"} 0"#,
            r#"roomcast_connections_active{transport="sse"} 1"#,
            r#"roomcast_connections_total{transport="websocket"} 1"#,
            r#"roomcast_messages_in_total{transport="websocket",type="publish"} 1"#,
            r#"roomcast_messages_out_total{transport="websocket",type="message"} 1"#,
            r#"roomcast_errors_total{code="not_member"} 1"#,
            r#"roomcast_errors_total{code="internal"} 0"#,
            "roomcast_slow_consumer_closes_total 1",
            "roomcast_hub_stored_messages 3",
            "roomcast_hub_sessions 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
