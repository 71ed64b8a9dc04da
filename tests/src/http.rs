//! A plain HTTP/1.1 client for the HTTP endpoints (hyper's client over smol's TCP), and an SSE
//! reader that decodes a streaming body with the core's decoder (conformance-tested against
//! Chromium's `EventSource`).

use std::net::SocketAddr;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use roomcast_core::sse::{Decoder, OwnedEvent};
use serde_json::Value;
use smol::net::TcpStream;
use smol_hyper::rt::FuturesIo;

use crate::within;

/// A response whose body has not been read yet. Dropping it closes its connection.
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    body: Incoming,
    _connection: smol::Task<()>,
}

/// `GET target` on a connection of its own, with these extra headers.
pub async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Response {
    request("GET", addr, target, headers).await
}

/// A request with an empty body on a connection of its own.
pub async fn request(
    method: &str,
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> Response {
    send(method, addr, target, headers, Bytes::new()).await
}

/// `POST target` with this body on a connection of its own, as `application/json` unless
/// `headers` name a `content-type` (the API takes JSON only).
pub async fn post(
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut headers = headers.to_vec();
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("content-type", "application/json"));
    }
    send(
        "POST",
        addr,
        target,
        &headers,
        Bytes::copy_from_slice(body.as_bytes()),
    )
    .await
}

/// A request with `body` on a connection of its own.
pub async fn send(
    method: &str,
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Response {
    let stream = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let (mut sender, connection) = within(
        "HTTP handshake",
        hyper::client::conn::http1::handshake(FuturesIo::new(stream)),
    )
    .await
    .expect("HTTP handshake");
    let connection = smol::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(target)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(http_body_util::Full::new(body))
        .expect("a request");
    let response = within("the response head", sender.send_request(request))
        .await
        .expect("a response");
    let (parts, body) = response.into_parts();
    Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
        _connection: connection,
    }
}

impl Response {
    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    /// The whole body, within `WAIT`.
    pub async fn text(self) -> String {
        let body = within("the body", self.body.collect())
            .await
            .expect("a body")
            .to_bytes();
        String::from_utf8(body.to_vec()).expect("UTF-8")
    }

    /// The body's next chunk of data, within `WAIT`; `None` once it ended.
    pub async fn chunk(&mut self) -> Option<Bytes> {
        loop {
            let frame = within("a chunk", self.body.frame()).await?;
            if let Ok(data) = frame.expect("a body").into_data() {
                return Some(data);
            }
        }
    }

    /// The whole body as JSON, within `WAIT`.
    pub async fn json(self) -> Value {
        let text = self.text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Reads the body as an event stream.
    pub fn events(self) -> EventStream {
        EventStream {
            response: self,
            decoder: Decoder::new(),
            pending: Bytes::new(),
            ended: false,
        }
    }
}

/// An SSE body, decoded as a browser would.
pub struct EventStream {
    response: Response,
    decoder: Decoder,
    pending: Bytes,
    ended: bool,
}

impl EventStream {
    /// The next event, or `None` once the body ended; each wait within `WAIT`.
    pub async fn next(&mut self) -> Option<OwnedEvent> {
        loop {
            let mut input: &[u8] = &self.pending;
            let before = input.len();
            let event = self
                .decoder
                .decode(&mut input)
                .expect("the stream is within the decoder's limits")
                .map(|event| event.into_owned());
            let consumed = before - input.len();
            self.pending.advance(consumed);
            if event.is_some() {
                return event;
            }
            assert!(self.pending.is_empty(), "the decoder takes all it is given");
            if self.ended {
                return None;
            }
            match within("the next chunk", self.response.body.frame()).await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending = data;
                    }
                }
                Some(Err(error)) => panic!("the stream failed: {error}"),
                None => self.ended = true,
            }
        }
    }

    /// The next event of type `kind`, skipping others; its data as JSON and its id.
    pub async fn next_of(&mut self, kind: &str) -> (Value, String) {
        loop {
            let event = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the stream ended before a {kind:?} event"));
            if event.event == kind {
                let data = serde_json::from_str(&event.data).expect("JSON data");
                return (data, event.id);
            }
        }
    }

    /// The reconnection delay the stream asked for.
    pub fn retry(&self) -> Option<u64> {
        self.decoder.retry()
    }

    /// The response head.
    pub fn response(&self) -> &Response {
        &self.response
    }
}
