//! The HTTP side of the load clients: an SSE stream reader and a keep-alive HTTP/1.1 client
//! (the SSE publisher, and roomcast's `/metrics`), both on hyper's client.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use roomcast_core::sse::Decoder;

use super::client::{AbortOnDrop, OP_TIMEOUT, tcp};
use super::dial::Dial;

/// An SSE stream read through hyper's HTTP/1.1 client and roomcast's WHATWG decoder.
pub(crate) struct SseClient {
    body: Incoming,
    decoder: Decoder,
    /// The connection's task, when the stream has the connection to itself (HTTP/1.1).
    _conn: Option<AbortOnDrop>,
}

impl SseClient {
    pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Result<Self, String> {
        let open = async {
            let (mut sender, conn) =
                http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp(addr).await?))
                    .await
                    .map_err(|e| format!("HTTP handshake: {e}"))?;
            let conn = AbortOnDrop(tokio::spawn(async move {
                let _ = conn.await;
            }));
            let request = Request::get(path)
                .header(header::HOST, addr.to_string())
                .header(header::ACCEPT, "text/event-stream")
                .body(Empty::new())
                .map_err(|e| e.to_string())?;
            Self::from_response(path, sender.send_request(request).await, Some(conn))
        };
        tokio::time::timeout(OP_TIMEOUT, open)
            .await
            .map_err(|_| format!("GET {path}: timed out"))?
    }

    /// The stream of an answer to `GET path` (over any connection; `conn` its task, if the
    /// stream has it to itself).
    pub(crate) fn from_response(
        path: &str,
        response: hyper::Result<http::Response<Incoming>>,
        conn: Option<AbortOnDrop>,
    ) -> Result<Self, String> {
        let response = response.map_err(|e| format!("GET {path}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {path}: {}", response.status()));
        }
        Ok(Self {
            body: response.into_body(),
            decoder: Decoder::new(),
            _conn: conn,
        })
    }

    /// Reads the next chunk and hands each complete event's type and data to `each`;
    /// `Ok(false)` at the end of the stream.
    pub(crate) async fn read(&mut self, mut each: impl FnMut(&str, &str)) -> Result<bool, String> {
        let Some(frame) = self.body.frame().await else {
            return Ok(false);
        };
        let frame = frame.map_err(|e| format!("SSE body: {e}"))?;
        if let Ok(data) = frame.into_data() {
            let mut input = &data[..];
            while let Some(event) = self.decoder.decode(&mut input).map_err(|e| e.to_string())? {
                each(event.event, event.data);
            }
        }
        Ok(true)
    }

    /// Reads until an event of type `event` arrives (or any chunk, when `event` is empty).
    pub(crate) async fn wait_for(&mut self, event: &str) -> Result<(), String> {
        let wait = async {
            loop {
                let mut seen = event.is_empty();
                if !self.read(|kind, _| seen |= kind == event).await? {
                    return Err(format!("SSE stream ended before `{event}`"));
                }
                if seen {
                    return Ok(());
                }
            }
        };
        tokio::time::timeout(OP_TIMEOUT, wait)
            .await
            .map_err(|_| format!("waiting for SSE `{event}`: timed out"))?
    }
}

/// One keep-alive HTTP/1.1 connection for POSTs, one at a time, opened again when the server
/// closed it (servers close idle keep-alive connections, roomcast after 10 s).
pub(crate) struct HttpClient {
    sender: http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    dial: Dial,
    host: String,
    _conn: AbortOnDrop,
}

impl HttpClient {
    /// A client over `dial` (plain or TLS).
    pub(crate) async fn connect_via(addr: SocketAddr, dial: &Dial) -> Result<Self, String> {
        let (sender, conn) = dial.http1(addr).await?;
        Ok(Self {
            sender,
            addr,
            dial: dial.clone(),
            host: addr.to_string(),
            _conn: conn,
        })
    }

    /// POSTs `body` and reads the whole answer; a status other than 2xx is an error.
    pub(crate) async fn post(&mut self, path: &str, body: String) -> Result<(), String> {
        self.request(http::Method::POST, path, body).await.map(drop)
    }

    /// GETs `path`: the answer's body.
    pub(crate) async fn get(&mut self, path: &str) -> Result<String, String> {
        let body = self.request(http::Method::GET, path, String::new()).await?;
        String::from_utf8(body.to_vec()).map_err(|e| format!("GET {path}: {e}"))
    }

    async fn request(
        &mut self,
        method: http::Method,
        path: &str,
        body: String,
    ) -> Result<Bytes, String> {
        if self.sender.ready().await.is_err() {
            *self = Self::connect_via(self.addr, &self.dial.clone()).await?;
        }
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {body:?}"));
        }
        Ok(body)
    }
}

/// roomcast's own count of what went wrong, from its `/metrics`: sessions the hub dropped as
/// slow consumers, 4000 and 4001 closes, and presence frames written.
pub(crate) async fn roomcast_counters(addr: SocketAddr, dial: &Dial) -> String {
    let scrape = async {
        let text = HttpClient::connect_via(addr, dial)
            .await?
            .get("/metrics")
            .await?;
        let sum = |name: &str| -> f64 {
            text.lines()
                .filter(|line| line.starts_with(name))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Ok::<_, String>(format!(
            "hub_slow_consumers={} slow_consumer_closes={} heartbeat_closes={} presence_frames_out={}",
            sum("roomcast_hub_slow_consumers"),
            sum("roomcast_slow_consumer_closes_total"),
            sum("roomcast_heartbeat_closes_total"),
            sum("roomcast_messages_out_total{transport=\"websocket\",type=\"presence\"}")
                + sum("roomcast_messages_out_total{transport=\"sse\",type=\"presence\"}"),
        ))
    };
    tokio::time::timeout(OP_TIMEOUT, scrape)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
        .unwrap_or_else(|e| format!("(metrics: {e})"))
}
