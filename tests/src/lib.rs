//! What roomcast's end-to-end tests share: a server on 127.0.0.1 with its hub, and a WebSocket
//! client that speaks JSON, every wait bounded in time.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::StreamExt;
use roomcast_core::hub::{Hub, HubConfig};
use roomcast_io::{HubHandle, spawn_hub};
use roomcast_smol::{ServeOptions, SmolRuntime, serve};
use serde_json::Value;
use smol::net::{TcpListener, TcpStream};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A roomcast server on an ephemeral loopback port, serving until the test process ends.
pub struct Server {
    pub addr: SocketAddr,
    pub hub: HubHandle,
}

impl Server {
    pub async fn start(config: HubConfig, options: ServeOptions, session_capacity: usize) -> Self {
        let hub = spawn_hub(&SmolRuntime, Hub::new(config, 7), 1024, session_capacity);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        smol::spawn(serve(listener, hub.clone(), options)).detach();
        Self { addr, hub }
    }

    pub async fn default() -> Self {
        Self::start(HubConfig::default(), ServeOptions::default(), 64).await
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

    pub async fn send_json(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next message, within `WAIT`.
    pub async fn read(&mut self) -> Read {
        let next = async { self.ws.next().await };
        let timeout = async {
            smol::Timer::after(WAIT).await;
            None
        };
        match futures_lite::future::or(async { Some(next.await) }, timeout).await {
            None => panic!("nothing arrived within {WAIT:?}"),
            Some(None) => Read::Gone("stream ended".into()),
            Some(Some(Err(error))) => Read::Gone(error.to_string()),
            Some(Some(Ok(Message::Text(text)))) => {
                Read::Json(serde_json::from_str(text.as_str()).expect("JSON"))
            }
            Some(Some(Ok(Message::Close(frame)))) => Read::Close(frame),
            Some(Some(Ok(other))) => Read::Other(other),
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

    /// Reads until the server's close frame; returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.read().await {
                Read::Close(frame) => return frame.map(|f| f.code.into()),
                Read::Gone(_) => return None,
                _ => continue,
            }
        }
    }
}
