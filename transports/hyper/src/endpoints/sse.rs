//! `GET /events`: an SSE session as `text/event-stream`, written one of two ways.
//!
//! - **Direct** (`raw/sse.rs`): when the stream is the first request of a connection that
//!   roomcast's own loop accepted (`serve_connection`), the session's task owns the socket and
//!   writes each drain as one HTTP/1.1 chunk, as a WebSocket session does. No hyper connection
//!   stays behind it: hyper keeps an 8 KiB read buffer and its connection state for the life of a
//!   response, and an SSE response lives as long as its client.
//! - **Through hyper** ([`serve`]): under [`Roomcast::handle`](crate::Roomcast::handle) (an
//!   application's own connection loop, or a later request on a keep-alive connection), as a
//!   streaming body fed by the session's task.
//!
//! Both run the same checks and registration ([`open`]) and send the same headers and bytes.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use async_channel::{SendError, Sender, TrySendError};
use bytes::Bytes;
use event_listener::EventListener;
use futures_lite::future;
use http::{HeaderValue, Request, Response, StatusCode, header};
use roomcast_core::event_stream::EventStream;
use roomcast_core::session::{SessionKind, Transmit};
use roomcast_io::{Inbound, Registered, Runtime, SessionOptions, Transport, run_registered};

use crate::abort::{Abort, AfterStream};
use crate::auth::query_param;
use crate::body::{Body, Dropped, drop_signal};
use crate::context::{Inner, parse_cursor};
use crate::per_ip::Slot;
use crate::refusal::Refusal;
use crate::response::allow_origin;

/// Chunks waiting for hyper to write them: each is every event of one drain, so two are slack
/// enough; a client that reads slower than that holds the session's writer, whose write timeout
/// and queue budget then decide.
const CHUNKS: usize = 2;

/// A stream admitted and registered: what either way of writing it needs.
pub(crate) struct Opened<R> {
    pub(crate) runtime: R,
    pub(crate) registered: Registered,
    pub(crate) slot: Slot,
    pub(crate) stream: EventStream,
    /// The response without its body: status and headers.
    pub(crate) head: Response<()>,
    pub(crate) options: SessionOptions,
}

/// The checks (origin, authentication, per-IP limit), the cursor from `Last-Event-ID` or
/// `?lastEventId=`, and the registration with the hub.
pub(crate) async fn open<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: &Request<B>,
) -> Result<Opened<R>, Refusal> {
    let admitted = inner.admit_session(peer, request, "sse").await?;
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
        .register_stream(&admitted, request, cursor.clone())
        .await?;
    let retry_ms = u64::try_from(inner.options.sse_retry.as_millis()).unwrap_or(u64::MAX);
    let mut head = Response::new(());
    *head.status_mut() = StatusCode::OK;
    let headers = head.headers_mut();
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
    allow_origin(&mut head, admitted.origin);
    let mut options = inner.options.session.clone();
    options.kind = SessionKind::Sse;
    options.transport = "sse";
    Ok(Opened {
        runtime: inner.runtime.clone(),
        registered,
        slot: admitted.slot,
        stream: EventStream::new(retry_ms, cursor),
        head,
        options,
    })
}

/// The stream as a hyper streaming body, fed by the session's task.
pub(crate) async fn serve<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    let Opened {
        runtime,
        registered,
        slot,
        stream,
        head,
        options,
    } = open(inner, peer, &request).await?;
    let (chunks, receiver) = async_channel::bounded(CHUNKS);
    let (signal, dropped) = drop_signal();
    let transport = SseTransport {
        stream,
        buffer: Vec::new(),
        chunks,
        sending: None,
        dropped: dropped.clone(),
        listener: None,
    };
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
        if future::or(finished, stuck).await == AfterStream::Drop
            && let Some(abort) = abort
        {
            abort.pull();
        }
    });
    let (parts, ()) = head.into_parts();
    Ok(Response::from_parts(parts, Body::stream(receiver, signal)))
}

/// An SSE connection under hyper: transmits become event-stream bytes, each drain one chunk of
/// the body.
struct SseTransport {
    stream: EventStream,
    buffer: Vec<u8>,
    chunks: Sender<Bytes>,
    /// A chunk waiting for room in `chunks` (the client reads slower than the session writes).
    sending: Option<Sending>,
    dropped: Dropped,
    /// Listening for `dropped`, between polls.
    listener: Option<EventListener>,
}

type Sending = Pin<Box<dyn Future<Output = Result<(), SendError<Bytes>>> + Send>>;

impl Transport for SseTransport {
    /// A pending poll listens for the body's drop.
    const RECV_WAKES: bool = true;

    /// Nothing comes in on an SSE stream; it ends when hyper drops the body (the client left).
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        ready!(self.dropped.poll_wait(&mut self.listener, cx));
        Poll::Ready(None)
    }

    /// Ready once the last chunk is in the channel.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.sending.is_some() {
            ready!(self.poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        // The close encodes nothing: the session ends, this transport is dropped with it, and so
        // the body ends.
        self.stream.encode(&transmit, &mut self.buffer);
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let gone = || io::Error::from(io::ErrorKind::BrokenPipe);
        if let Some(sending) = &mut self.sending {
            let sent = ready!(sending.as_mut().poll(cx));
            self.sending = None;
            sent.map_err(|_| gone())?;
        }
        if self.buffer.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        match self.chunks.try_send(chunk) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(TrySendError::Closed(_)) => Poll::Ready(Err(gone())),
            // No room: wait for it (an allocation, only for a client that reads slowly).
            Err(TrySendError::Full(chunk)) => {
                let chunks = self.chunks.clone();
                self.sending = Some(Box::pin(async move { chunks.send(chunk).await }));
                self.poll_flush(cx)
            }
        }
    }
}
