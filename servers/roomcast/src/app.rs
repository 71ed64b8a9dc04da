//! What every request may need ([`App`]: the roomcast service, the metrics, the keys and
//! limits of the API), and the node's own answers: health, metrics, status and its figures.
//! The routes that reach them are `routes`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderValue, Response, StatusCode, header};
use roomcast_hyper::{Body, Refusal, Roomcast};
use roomcast_io::Runtime;
use serde_json::json;

use crate::metrics::{Metrics, TRANSPORTS};
use crate::reply::{gone, json};

/// Everything a request may need, shared by every connection.
pub(crate) struct App<R: Runtime> {
    pub(crate) roomcast: Roomcast<R>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) api_key: Option<String>,
    /// The key of `/metrics` and `/api/status`: `--metrics-key`, else the API key.
    pub(crate) metrics_key: Option<String>,
    /// Origins whose pages may call the API.
    pub(crate) allowed_origins: Vec<String>,
    /// Largest API request body: the frame limit, as for a WebSocket message.
    pub(crate) max_body: usize,
    /// Longest an API request body may take to arrive: the handshake timeout.
    pub(crate) body_timeout: std::time::Duration,
    /// Whether the engine's link is up, for an engine over a network (Redis); `None` for an
    /// engine in the process, always there.
    pub(crate) engine_link: Option<Arc<AtomicBool>>,
    /// On Redis: this node's name and number, and the node registry.
    pub(crate) nodes: Option<Nodes>,
}

/// This node among the nodes of one Redis.
pub(crate) struct Nodes {
    pub(crate) name: String,
    pub(crate) number: u64,
    pub(crate) registry: Arc<roomcast_redis::driver::Registry>,
}

impl<R: Runtime> App<R> {
    pub(crate) fn health(&self) -> Response<Body> {
        if self.roomcast.shutdown().reconnect_ms().is_some() {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "shutting_down"}),
            );
        }
        if !self.engine_link_up() {
            let reason = "redis is unreachable: messages cannot be stored; reconnecting";
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "engine_unreachable", "reason": reason}),
            );
        }
        json(StatusCode::OK, json!({"status": "ok"}))
    }

    fn engine_link_up(&self) -> bool {
        self.engine_link
            .as_ref()
            .is_none_or(|up| up.load(Ordering::Relaxed))
    }

    pub(crate) async fn metrics(&self) -> Result<Response<Body>, Refusal> {
        let stats = self.roomcast.hub().stats().await.map_err(gone)?;
        self.metrics.engine_link(self.engine_link_up());
        self.metrics
            .sockjs_sessions(self.roomcast.sockjs_sessions());
        self.metrics
            .admission_refusals(self.roomcast.admission_refusals());
        let mut response = Response::new(Body::full(self.metrics.render(&stats)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        Ok(response)
    }

    pub(crate) async fn status(&self) -> Result<Response<Body>, Refusal> {
        Ok(json(StatusCode::OK, self.status_value().await?))
    }

    /// `/api/status`: this node's figures, and on Redis every live node's.
    pub(crate) async fn status_value(&self) -> Result<serde_json::Value, Refusal> {
        let mut status = self.figures().await?;
        if let Some(nodes) = &self.nodes {
            // Every live node's figures as the registry last read them (each node reports
            // every 2 s; the registry is read at each presence refresh).
            let mut all: Vec<serde_json::Value> = nodes
                .registry
                .nodes()
                .iter()
                .filter_map(|figures| serde_json::from_str(figures).ok())
                .collect();
            all.sort_by(|a, b| a["node"].as_str().cmp(&b["node"].as_str()));
            status["nodes"] = all.into();
        }
        Ok(status)
    }

    /// This node's figures: `/api/status` without the other nodes'.
    pub(crate) async fn figures(&self) -> Result<serde_json::Value, Refusal> {
        let stats = self.roomcast.hub().stats().await.map_err(gone)?;
        let active = self.metrics.active();
        let connections: serde_json::Map<String, serde_json::Value> = TRANSPORTS
            .iter()
            .zip(active)
            .map(|(transport, n)| ((*transport).to_owned(), n.into()))
            .collect();
        let mut figures = json!({
            "connections": connections,
            "sessions": stats.sessions,
            "users": stats.users,
            "rooms": stats.rooms,
            "stored_messages": stats.stored_messages,
            "stored_bytes": stats.stored_bytes,
            "rooms_with_history": stats.rooms_with_history,
            "outboxes": stats.outboxes,
            "pending_operations": stats.pending_operations,
            "slow_consumers": stats.slow_consumers,
            "engine_link_up": self.engine_link_up(),
        });
        if let Some(nodes) = &self.nodes {
            figures["node"] = nodes.name.clone().into();
        }
        Ok(figures)
    }

    /// On Redis: reports this node's figures to the node registry every 2 s, while the hub
    /// runs.
    pub(crate) async fn report_figures(self: Arc<Self>, runtime: R) {
        let Some(nodes) = &self.nodes else {
            return;
        };
        loop {
            let Ok(mut figures) = self.figures().await else {
                return;
            };
            // Redis holds what is stored: a node's own stored figures are zeros.
            if let Some(map) = figures.as_object_mut() {
                for key in [
                    "stored_messages",
                    "stored_bytes",
                    "rooms_with_history",
                    "outboxes",
                ] {
                    map.remove(key);
                }
            }
            nodes.registry.report(nodes.number, figures.to_string());
            runtime
                .sleep_until(runtime.now() + std::time::Duration::from_secs(2))
                .await;
        }
    }
}
