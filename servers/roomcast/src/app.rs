//! The server's routes: the demo page and its client library, status, metrics and health, the
//! HTTP API (in `api`); everything else goes to the roomcast service (`/ws`, `/ws/echo`, `/events`, `/poll`).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use roomcast_hyper::{Body, Refusal, Roomcast};
use roomcast_io::{HubGone, Runtime};
use serde_json::json;

use crate::guard::check_key;
use crate::metrics::{Metrics, TRANSPORTS};

const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The client library, from its package (`clients/js`), as `npm` installs it.
const ROOMCAST_JS: &str = include_str!("../../../clients/js/roomcast.js");
/// The API's OpenAPI document, served without a key: it tells nothing a caller can misuse.
const OPENAPI_JSON: &str = include_str!("../assets/openapi.json");

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

/// [`App`] for one connection, as hyper wants a service.
pub(crate) struct AppService<R: Runtime> {
    app: Arc<App<R>>,
    peer: IpAddr,
}

// Not derived: that would ask for `R: Clone` on the struct's own terms.
impl<R: Runtime> Clone for AppService<R> {
    fn clone(&self) -> Self {
        Self {
            app: Arc::clone(&self.app),
            peer: self.peer,
        }
    }
}

impl<R: Runtime> App<R> {
    pub(crate) fn service(self: &Arc<Self>, peer: SocketAddr) -> AppService<R> {
        AppService {
            app: self.clone(),
            peer: peer.ip(),
        }
    }

    async fn handle(self: Arc<Self>, peer: IpAddr, request: Request<Incoming>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        let get = method == Method::GET || method == Method::HEAD;
        let response = match path.as_str() {
            "/" | "/index.html" if get => Ok(asset(INDEX_HTML, "text/html; charset=utf-8")),
            "/roomcast.js" if get => Ok(asset(ROOMCAST_JS, "text/javascript; charset=utf-8")),
            "/healthz" if get => Ok(self.health()),
            "/api/openapi.json" if get => Ok(asset(OPENAPI_JSON, "application/json")),
            "/admin" if get => Ok(asset(crate::admin::ADMIN_HTML, "text/html; charset=utf-8")),
            // The metrics key, or the API key the admin page holds for its other calls.
            "/api/admin/stream" if get => check_key(&request, self.metrics_key.as_deref())
                .or_else(|refusal| match self.api_key.as_deref() {
                    Some(key) => check_key(&request, Some(key)),
                    None => Err(refusal),
                })
                .map(|()| self.admin_stream()),
            "/metrics" if get => match check_key(&request, self.metrics_key.as_deref()) {
                Ok(()) => self.metrics().await,
                Err(refusal) => Err(refusal),
            },
            "/api/status" if get => match check_key(&request, self.metrics_key.as_deref()) {
                Ok(()) => self.status().await,
                Err(refusal) => Err(refusal),
            },
            "/" | "/index.html" | "/roomcast.js" | "/healthz" | "/metrics" | "/api/status"
            | "/api/openapi.json" | "/admin" | "/api/admin/stream" => Err(not_allowed("GET")),
            _ if path.starts_with("/api/") => crate::api::handle(&self, request).await,
            _ => return self.roomcast.handle(peer, request).await,
        };
        response.unwrap_or_else(|refusal| error(&refusal))
    }

    fn health(&self) -> Response<Body> {
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

    async fn metrics(&self) -> Result<Response<Body>, Refusal> {
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

    async fn status(&self) -> Result<Response<Body>, Refusal> {
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

pub(crate) fn gone(_: HubGone) -> Refusal {
    Refusal::new(503, "the hub has stopped")
}

pub(crate) fn not_allowed(allow: &'static str) -> Refusal {
    Refusal::new(405, format!("only {allow} is served here"))
}

fn asset(text: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::full(text));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    roomcast_hyper::json(status, value.to_string())
}

/// The same JSON error as the roomcast endpoints give, with `Allow` for a 405.
fn error(refusal: &Refusal) -> Response<Body> {
    let mut response = refusal.response();
    if refusal.status == 405 {
        let allow = if refusal.message.contains("POST") {
            "POST"
        } else {
            "GET"
        };
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

impl<R: Runtime> hyper::service::Service<Request<Incoming>> for AppService<R> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(Arc::clone(&this.app).handle(this.peer, request).await) })
    }
}
