//! roomcast mounted in an axum application, beside the application's own routes.
//!
//! axum serves the application: `GET /` (a page), `GET /api/hello`, and `POST /api/announce`,
//! which publishes its JSON body to a room through roomcast's hub. roomcast's endpoints are
//! three more routes whose handler hands the request to [`Roomcast::handle`]: `/ws` (the
//! roomcast protocol over WebSocket), `/events` (SSE) and `/poll` (long-poll). `handle` takes
//! axum's request body as it is, and a WebSocket upgrade works because axum keeps hyper's
//! upgrade extension in the request. The sessions run on tokio through `roomcast-tokio`'s
//! runtime; authentication is roomcast's development mode (`?user=NAME`), see `smol-chat` for a
//! hook of your own.
//!
//! ```sh
//! cargo run -p roomcast-examples --bin axum-app -- --listen 127.0.0.1:8091
//! curl http://127.0.0.1:8091/api/hello
//! curl -N 'http://127.0.0.1:8091/events?user=alice&rooms=lobby'        # one terminal
//! curl -X POST 'http://127.0.0.1:8091/api/announce?room=lobby' -d '{"text":"hi"}'
//! python3 -m websockets 'ws://127.0.0.1:8091/ws?user=bob'              # WebSocket
//! ```
//!
//! Ctrl-C stops it gracefully: roomcast's shutdown tells every session to reconnect elsewhere
//! and ends its streams, so axum's graceful shutdown is not held open by them. (The other way to
//! mount roomcast is `roomcast_tokio::serve_with`: its own accept loop, which also serves a
//! connection that opens with a stream on the socket directly, without hyper behind it.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use roomcast_core::engine::{MemoryEngine, MemoryLimits};
use roomcast_core::envelope::Payload;
use roomcast_core::hub::{Hub, HubConfig};
use roomcast_core::names::RoomName;
use roomcast_hyper::{Options, Roomcast};
use roomcast_io::{Budget, spawn_hub};
use roomcast_tokio::TokioRuntime;

/// roomcast, as the application's shared state.
type Rc = Roomcast<TokioRuntime>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let runtime = TokioRuntime::current();
    let hub = spawn_hub(
        &runtime,
        Hub::new(HubConfig::default()),
        MemoryEngine::new(MemoryLimits::default(), seed()),
        Budget::default(),
    );
    let roomcast = Roomcast::new(runtime, hub, Options::default());

    let app = Router::new()
        // The application's own routes.
        .route("/", get(index))
        .route("/api/hello", get(hello))
        .route("/api/announce", post(announce))
        // roomcast's endpoints, each handed over whole.
        .route("/ws", get(roomcast_endpoint))
        .route("/events", get(roomcast_endpoint))
        .route("/poll", get(roomcast_endpoint))
        .with_state(roomcast.clone());

    let listener = tokio::net::TcpListener::bind(listen_arg("127.0.0.1:8091")).await?;
    // The tests read this line to learn the port.
    println!("listening on http://{}", listener.local_addr()?);
    // roomcast's per-IP limit needs each request's peer: axum's `ConnectInfo` gives it.
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            // Sessions are told to reconnect in 1 s, and streams end after their grace.
            roomcast.shutdown().trigger(1000);
        })
        .await
}

/// Hands a request to roomcast, with the address it came from.
async fn roomcast_endpoint(
    State(roomcast): State<Rc>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    // axum's request, body and all: `handle` drops the body (no endpoint reads one) and keeps
    // the extensions, where hyper's upgrade of `/ws` lives.
    roomcast.handle(peer.ip(), request).await.into_response()
}

async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html><title>axum and roomcast</title>\
         <p>An axum page. Live: <code>/ws?user=NAME</code>, <code>/events?user=NAME&amp;rooms=lobby</code>, \
         <code>/poll?user=NAME</code>.</p>",
    )
}

async fn hello() -> &'static str {
    "hello from axum\n"
}

/// `POST /api/announce?room=NAME` with a JSON body: the application publishes to a room.
async fn announce(
    State(roomcast): State<Rc>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(room) = query.get("room").and_then(|r| RoomName::new(r).ok()) else {
        return (StatusCode::BAD_REQUEST, "announce with ?room=NAME\n").into_response();
    };
    let Some(data) = std::str::from_utf8(&body)
        .ok()
        .and_then(|b| Payload::from_json(b).ok())
    else {
        return (StatusCode::BAD_REQUEST, "the body is not JSON\n").into_response();
    };
    match roomcast.hub().publish(room, data).await {
        Ok(Ok(published)) => format!(
            "{{\"id\":\"{}\",\"sessions\":{}}}\n",
            published.id, published.sessions
        )
        .into_response(),
        Ok(Err(error)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the hub has stopped\n").into_response(),
    }
}

/// `--listen ADDR`, or `default`.
fn listen_arg(default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == "--listen")
        .and_then(|at| args.get(at + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// A new seed per process: stream epochs differ across restarts, so a cursor of an earlier run
/// is answered `recovered: false`, never with another run's messages.
fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos() as u64)
}
