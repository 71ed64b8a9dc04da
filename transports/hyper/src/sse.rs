//! `GET /events`: an SSE session as a `text/event-stream` streaming body.

use std::io;
use std::net::IpAddr;

use async_channel::Sender;
use async_trait::async_trait;
use bytes::Bytes;
use futures_lite::future;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use roomcast_core::event_stream::EventStream;
use roomcast_core::session::{SessionKind, Transmit};
use roomcast_io::{Inbound, Runtime, Transport, run_registered};

use crate::abort::{Abort, AfterStream};
use crate::body::{Body, Dropped, drop_signal};
use crate::handshake::{Refusal, query_param};
use crate::service::{Inner, allow_origin, parse_cursor};

/// Chunks waiting for hyper to write them: each is every event of one drain, so two are slack
/// enough; a client that reads slower than that holds the session's writer, whose write timeout
/// and queue budget then decide.
const CHUNKS: usize = 2;

pub(crate) async fn stream<R: Runtime>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<Incoming>,
) -> Result<Response<Body>, Refusal> {
    let admitted = inner.admit(peer, &request)?;
    // The browser's automatic `Last-Event-ID` is newer than any `lastEventId` the page chose.
    let header = request
        .headers()
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| Refusal::new(400, "Last-Event-ID is not text"))
        })
        .transpose()?;
    let cursor = match header {
        Some(id) => parse_cursor(Some(id), "Last-Event-ID")?,
        None => parse_cursor(query_param(request.uri(), "lastEventId"), "lastEventId")?,
    };
    let registered = inner
        .register_stream(&admitted, &request, cursor.clone())
        .await?;
    let (chunks, receiver) = async_channel::bounded(CHUNKS);
    let (signal, dropped) = drop_signal();
    let retry_ms = u64::try_from(inner.options.sse_retry.as_millis()).unwrap_or(u64::MAX);
    let transport = SseTransport {
        stream: EventStream::new(retry_ms, cursor),
        buffer: Vec::new(),
        chunks,
        dropped: dropped.clone(),
    };
    let (runtime, slot) = (inner.runtime.clone(), admitted.slot);
    let mut options = inner.options.session.clone();
    options.kind = SessionKind::Sse;
    options.transport = "sse";
    let write_timeout = options.write_timeout;
    // Pulled if the response cannot be finished; absent under a connection loop of the
    // application's own, which then keeps such a connection until TCP gives up.
    let abort = request.extensions().get::<Abort>().cloned();
    inner.runtime.spawn(async move {
        let _slot = slot;
        run_registered(&runtime, transport, registered, options).await;
        // The body ends with the session; hyper then has the write timeout to send what is
        // left, or the connection goes (a client that stopped reading holds nothing longer).
        let finished = async {
            dropped.wait().await;
            AfterStream::KeepServing
        };
        let stuck = async {
            runtime.sleep_until(runtime.now() + write_timeout).await;
            AfterStream::Drop
        };
        if future::or(finished, stuck).await == AfterStream::Drop {
            if let Some(abort) = abort {
                abort.pull();
            }
        }
    });
    let mut response = Response::new(Body::stream(receiver, signal));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    // Proxies such as nginx would otherwise hold events back to fill a buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    allow_origin(&mut response, admitted.origin);
    Ok(response)
}

/// An SSE connection: transmits become event-stream bytes, each drain one chunk of the body.
struct SseTransport {
    stream: EventStream,
    buffer: Vec<u8>,
    chunks: Sender<Bytes>,
    dropped: Dropped,
}

#[async_trait]
impl Transport for SseTransport {
    /// Nothing comes in on an SSE stream; it ends when hyper drops the body (the client left).
    async fn recv(&mut self) -> Option<Inbound> {
        self.dropped.wait().await;
        None
    }

    async fn send(&mut self, transmit: Transmit) -> io::Result<()> {
        // The close encodes nothing: the session ends, this transport is dropped with it, and so
        // the body ends.
        self.stream.encode(&transmit, &mut self.buffer);
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.chunks
            .send(chunk)
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}
