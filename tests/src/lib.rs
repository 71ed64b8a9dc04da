//! What roomcast's end-to-end tests share: a server on 127.0.0.1 with its hub, and a WebSocket
//! client that speaks JSON, every wait bounded in time.
#![allow(missing_docs)]

pub mod browser;
pub mod http;
pub mod proxy;
pub mod redis;
pub mod sim;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::handshake::client::{Request, Response};
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::StreamExt;
use roomcast_core::engine::{MemoryEngine, MemoryLimits};
use roomcast_core::hub::{Hub, HubConfig};
use roomcast_hyper::{Options, Roomcast};
use roomcast_io::{Budget, HubHandle, HubStats, Shutdown, spawn_hub};
use roomcast_smol::SmolRuntime;
use roomcast_tokio::TokioRuntime;
use serde_json::Value;
use smol::net::TcpStream;

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// `future`'s output, or a panic naming `what` if it takes longer than `WAIT`.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    let timeout = async {
        smol::Timer::after(WAIT).await;
        None
    };
    match futures_lite::future::or(async { Some(future.await) }, timeout).await {
        Some(output) => output,
        None => panic!("{what}: not done within {WAIT:?}"),
    }
}

/// The runtime a test server runs on: the same service, the same tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// roomcast-smol: hyper on smol through smol-hyper.
    Smol,
    /// roomcast-tokio: hyper on tokio through hyper-util, on a runtime of its own.
    Tokio,
}

/// Instantiates each named test function (taking a [`Flavor`]) once per runtime, as
/// `smol::NAME` and `tokio::NAME`.
#[macro_export]
macro_rules! on_every_runtime {
    ($($name:ident),* $(,)?) => {
        mod on_smol {
            $( #[test] fn $name() { super::$name($crate::Flavor::Smol) } )*
        }
        mod on_tokio {
            $( #[test] fn $name() { super::$name($crate::Flavor::Tokio) } )*
        }
    };
}

/// Checks a `shutdown`'s `reconnect_ms` against the server's `hint`: each session adds a jitter
/// of up to half the hint, so that clients do not all come back at once.
pub fn assert_reconnect_hint(notice: &Value, hint: u64) {
    let got = notice["reconnect_ms"].as_u64().expect("reconnect_ms");
    assert!(
        (hint..=hint + hint / 2).contains(&got),
        "reconnect_ms {got} is not {hint} plus up to half of it"
    );
}

/// The entry for `stream` in a `streams` message.
pub fn stream_entry(streams: &Value, stream: &str) -> Value {
    streams["streams"]
        .as_array()
        .expect("a list of streams")
        .iter()
        .find(|entry| entry["stream"] == stream)
        .unwrap_or_else(|| panic!("no {stream} in {streams}"))
        .clone()
}

/// A listener on 127.0.0.1:`port`, for a server that takes over the port of one that stopped:
/// retried every 20 ms, within `WAIT`, while the old server's accept loop lets go of it.
pub async fn listen_on(port: u16) -> std::net::TcpListener {
    let tries = WAIT.as_millis() / 20;
    let mut last = None;
    for _ in 0..tries {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => return listener,
            Err(error) => last = Some(error),
        }
        smol::Timer::after(Duration::from_millis(20)).await;
    }
    panic!("127.0.0.1:{port} still taken after {WAIT:?}: {last:?}");
}

/// A roomcast server on an ephemeral loopback port, serving until the test process ends.
pub struct Server {
    pub addr: SocketAddr,
    pub hub: HubHandle,
    pub shutdown: Shutdown,
}

impl Server {
    pub async fn start(
        flavor: Flavor,
        config: HubConfig,
        options: Options,
        session_capacity: usize,
    ) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        Self::start_on(flavor, listener, config, options, session_capacity, 7).await
    }

    /// As [`start`](Self::start), on this listener (see [`listen_on`]), with this hub seed: a
    /// server restarted on the same port gets a fresh hub whose stream epochs differ, as
    /// `roomcast serve` seeds each process anew.
    pub async fn start_on(
        flavor: Flavor,
        listener: std::net::TcpListener,
        config: HubConfig,
        options: Options,
        session_capacity: usize,
        seed: u64,
    ) -> Self {
        let addr = listener.local_addr().expect("local address");
        listener.set_nonblocking(true).expect("non-blocking");
        let shutdown = options.session.shutdown.clone();
        let hub = Hub::new(config);
        let engine = || MemoryEngine::new(MemoryLimits::default(), seed);
        let hub = match flavor {
            Flavor::Smol => {
                let hub = spawn_hub(
                    &SmolRuntime,
                    hub,
                    engine(),
                    Budget::frames(session_capacity),
                );
                let roomcast = Roomcast::new(SmolRuntime, hub.clone(), options);
                let listener = smol::net::TcpListener::try_from(listener).expect("async listener");
                smol::spawn(roomcast_smol::serve(listener, roomcast)).detach();
                hub
            }
            Flavor::Tokio => {
                // A runtime per server, kept for the life of the test process.
                let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .enable_all()
                        .build()
                        .expect("a tokio runtime"),
                ));
                let tokio = TokioRuntime::new(runtime.handle().clone());
                let hub = spawn_hub(&tokio, hub, engine(), Budget::frames(session_capacity));
                let roomcast = Roomcast::new(tokio, hub.clone(), options);
                let listener = {
                    let _entered = runtime.enter();
                    tokio::net::TcpListener::from_std(listener).expect("async listener")
                };
                runtime.spawn(roomcast_tokio::serve(listener, roomcast));
                hub
            }
        };
        Self {
            addr,
            hub,
            shutdown,
        }
    }

    pub async fn default(flavor: Flavor) -> Self {
        Self::start(flavor, HubConfig::default(), Options::default(), 64).await
    }

    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/ws?{query}", self.addr)
    }

    /// Connects as `user`, and reads the `welcome` and `streams` messages.
    pub async fn client(&self, user: &str) -> Client {
        let mut client = Client::connect(&self.url(&format!("user={user}")))
            .await
            .expect("handshake");
        assert_eq!(client.next_json().await["type"], "welcome");
        assert_eq!(client.next_json().await["type"], "streams");
        client
    }

    /// Connects with this query string (`user=...&cursor=...`); returns the client with its
    /// `welcome` and `streams` messages.
    pub async fn connect(&self, query: &str) -> (Client, Value, Value) {
        let mut client = within("handshake", Client::connect(&self.url(query)))
            .await
            .expect("handshake");
        let welcome = client.next_json().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let streams = client.next_json().await;
        assert_eq!(streams["type"], "streams", "{streams}");
        (client, welcome, streams)
    }

    /// Polls the hub's figures every 10 ms until `done` holds (within `WAIT`); returns them.
    pub async fn wait_for_stats(&self, what: &str, done: impl Fn(&HubStats) -> bool) -> HubStats {
        let polls = WAIT.as_millis() / 10;
        let mut stats = HubStats::default();
        for _ in 0..polls {
            stats = self.hub.stats().await.expect("hub running");
            if done(&stats) {
                return stats;
            }
            smol::Timer::after(Duration::from_millis(10)).await;
        }
        panic!("{what}: not reached within {WAIT:?}; last stats {stats:?}");
    }
}

/// A WebSocket client.
pub struct Client {
    pub ws: WebSocketStream<TcpStream>,
}

/// What a read found.
#[derive(Debug)]
pub enum Read {
    Json(Value),
    Close(Option<CloseFrame>),
    Other(Message),
    Gone(String),
}

impl Client {
    pub async fn connect(url: &str) -> Result<Self, WsError> {
        let host = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let stream = TcpStream::connect(host).await.map_err(WsError::Io)?;
        let (ws, _) = async_tungstenite::client_async(url, stream).await?;
        Ok(Self { ws })
    }

    /// Connects with a request of its own (extra headers); returns the server's response too.
    pub async fn connect_request(request: Request) -> Result<(Self, Response), WsError> {
        let host = request
            .uri()
            .authority()
            .map(|authority| authority.as_str().to_owned())
            .unwrap_or_default();
        let stream = TcpStream::connect(host).await.map_err(WsError::Io)?;
        let (ws, response) = async_tungstenite::client_async(request, stream).await?;
        Ok((Self { ws }, response))
    }

    pub async fn send_json(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next WebSocket message as it came (`None` once the stream ended), within `WAIT`.
    pub async fn next_message(&mut self) -> Option<Result<Message, WsError>> {
        within("the next message", self.ws.next()).await
    }

    /// The next message, within `WAIT`.
    pub async fn read(&mut self) -> Read {
        match self.next_message().await {
            None => Read::Gone("stream ended".into()),
            Some(Err(error)) => Read::Gone(error.to_string()),
            Some(Ok(Message::Text(text))) => {
                Read::Json(serde_json::from_str(text.as_str()).expect("JSON"))
            }
            Some(Ok(Message::Close(frame))) => Read::Close(frame),
            Some(Ok(other)) => Read::Other(other),
        }
    }

    /// The next JSON message, skipping pings.
    pub async fn next_json(&mut self) -> Value {
        loop {
            match self.read().await {
                Read::Json(value) => return value,
                Read::Other(_) => continue,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// The next message of type `kind`, skipping others (presence, typing...).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let value = self.next_json().await;
            if value["type"] == kind {
                return value;
            }
        }
    }

    /// Reads until the `reply` or `error` whose `ref` is `reference`; returns it, and every JSON
    /// message that came before it.
    pub async fn answer(&mut self, reference: &Value) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let value = self.next_json().await;
            let answer = value["type"] == "reply" || value["type"] == "error";
            if answer && value["ref"] == *reference {
                return (value, before);
            }
            before.push(value);
        }
    }

    /// A round trip through the hub: a `leave` of a room this client is not in, answered
    /// `not_member` with its `ref` through the same ordered channel as every hub delivery. Returns
    /// what arrived before the answer: anything the hub queued for this session before the
    /// barrier. (Pings and malformed frames are answered by the session itself, so they are no
    /// barrier.)
    pub async fn barrier(&mut self) -> Vec<Value> {
        let reference = Value::from("barrier");
        self.send_json(serde_json::json!(
            {"type": "leave", "ref": reference.clone(), "room": "roomcast-tests.barrier"}
        ))
        .await;
        let (answer, before) = self.answer(&reference).await;
        assert_eq!(answer["code"], "not_member", "{answer}");
        before
    }

    /// Closes with 1000 and reads until the server has answered the close (or dropped the
    /// connection). The server disconnects its session from the hub before it answers.
    pub async fn close_and_wait(&mut self) {
        within("close", self.ws.close(None))
            .await
            .expect("send close");
        for _ in 0..10_000 {
            match self.read().await {
                Read::Close(_) | Read::Gone(_) => return,
                _ => continue,
            }
        }
        panic!("no close after 10,000 messages");
    }

    /// Reads until the server's close frame; returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.read().await {
                Read::Close(frame) => {
                    // Answer the close as a real client does (tungstenite queued the reply).
                    let _ = futures_util::SinkExt::flush(&mut self.ws).await;
                    return frame.map(|f| f.code.into());
                }
                Read::Gone(_) => return None,
                _ => continue,
            }
        }
    }
}
