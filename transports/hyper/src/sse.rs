//! `GET /events`: an SSE session as `text/event-stream`, written one of two ways.
//!
//! - **Direct** ([`serve_direct`]): when the stream is the first request of a connection that
//!   roomcast's own loop accepted (`serve_connection`), the session's task owns the socket and
//!   writes each drain as one HTTP/1.1 chunk, as a WebSocket session does. No hyper connection
//!   stays behind it: hyper keeps an 8 KiB read buffer and its connection state for the life of a
//!   response, and an SSE response lives as long as its client.
//! - **Through hyper** ([`stream`]): under [`Roomcast::handle`](crate::Roomcast::handle) (an
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
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, future};
use http::{HeaderValue, Request, Response, StatusCode, header};
use roomcast_core::event_stream::EventStream;
use roomcast_core::session::{SessionKind, Transmit};
use roomcast_io::{
    Ended, Inbound, Registered, Runtime, SessionOptions, Transport, recycle, run_registered,
};

use crate::abort::{Abort, AfterStream};
use crate::body::{Body, Dropped, drop_signal};
use crate::direct::{Framing, head_bytes, refuse};
use crate::handshake::{Refusal, query_param};
use crate::io::HyperIo;
use crate::per_ip::Slot;
use crate::service::{Inner, allow_origin, parse_cursor};

/// Chunks waiting for hyper to write them: each is every event of one drain, so two are slack
/// enough; a client that reads slower than that holds the session's writer, whose write timeout
/// and queue budget then decide.
const CHUNKS: usize = 2;

/// A direct stream's write buffer keeps at most this much capacity between writes.
const KEEP_CAPACITY: usize = 16 * 1024;

thread_local! {
    /// A chunk buffer for the direct streams this thread writes: a stream takes it to encode a
    /// drain's events and gives it back once the chunk is written, so the next stream encodes
    /// into memory still in the cache. A buffer of each stream's own was cold at 10,000 streams,
    /// a few lines missed per event, and memory an idle stream held. A stream whose write has
    /// to wait keeps the buffer until it is done.
    static SPARE_CHUNK: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A stream admitted and registered: what either way of writing it needs.
struct Opened<R> {
    runtime: R,
    registered: Registered,
    slot: Slot,
    stream: EventStream,
    /// The response without its body: status and headers.
    head: Response<()>,
    options: SessionOptions,
}

/// The checks (origin, authentication, per-IP limit), the cursor from `Last-Event-ID` or
/// `?lastEventId=`, and the registration with the hub.
async fn open<R: Runtime, B>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: &Request<B>,
) -> Result<Opened<R>, Refusal> {
    let admitted = inner.admit(peer, request)?;
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
pub(crate) async fn stream<R: Runtime, B: Send + 'static>(
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
        if future::or(finished, stuck).await == AfterStream::Drop {
            if let Some(abort) = abort {
                abort.pull();
            }
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

/// Serves the stream `request` asks for on `io`, the connection it came on: a refusal is
/// answered and the connection closed; an opened stream gets a task of its own, which runs the
/// session, then ends the response and the connection. Its own task, not the connection's: each
/// level of future nesting is another cache line every delivery touches (docs/performance.md).
pub(crate) async fn serve_direct<R, I>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<()>,
    io: HyperIo<I>,
) where
    R: Runtime,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let opened = match inner.unavailable() {
        Some(refusal) => Err(refusal),
        None => open(inner, peer, &request).await,
    };
    let Opened {
        runtime,
        registered,
        slot,
        stream,
        head,
        options,
    } = match opened {
        Ok(opened) => opened,
        Err(refusal) => return refuse(inner, &refusal, io).await,
    };
    inner.runtime.spawn(async move {
        let _slot = slot;
        let write_timeout = options.write_timeout;
        let mut transport = DirectTransport {
            io,
            stream,
            head: Some(head_bytes(&head, Framing::Chunked)),
            chunk: Vec::new(),
            first: Vec::new(),
            written: None,
        };
        let ended = run_registered(&runtime, &mut transport, registered, options).await;
        if ended != Ended::Lost {
            // The last chunk, within the write timeout; the connection closes either way.
            let last = async {
                let _ = transport.io.write_all(b"0\r\n\r\n").await;
                let _ = transport.io.close().await;
            };
            let _ = future::or(last, runtime.sleep_until(runtime.now() + write_timeout)).await;
        }
    });
}

/// An SSE connection that owns its socket: each drain's events go out as one chunk, in one
/// write (the response head with the first).
struct DirectTransport<I> {
    io: HyperIo<I>,
    stream: EventStream,
    /// The response head, until it is written.
    head: Option<Vec<u8>>,
    /// This drain's chunk: room for its size line, then the events as they are encoded, so the
    /// events are written where they were encoded, not copied behind a size line. Taken from
    /// the thread's spare (`SPARE_CHUNK`) and given back once written.
    chunk: Vec<u8>,
    /// The first chunk behind the response head, while it is written.
    first: Vec<u8>,
    /// While a flush writes: how far it got, in `first` if that is not empty, else in `chunk`.
    written: Option<usize>,
}

/// Room for a chunk's size line: at most 16 hex digits and CRLF.
const SIZE_LINE: usize = 18;

/// Writes `len` in hex and CRLF at the end of `room`; returns where the line starts.
fn put_size_line(room: &mut [u8; SIZE_LINE], mut len: usize) -> usize {
    let mut start = SIZE_LINE - 2;
    room[start..].copy_from_slice(b"\r\n");
    loop {
        start -= 1;
        room[start] = b"0123456789abcdef"[len & 0xf];
        len >>= 4;
        if len == 0 {
            return start;
        }
    }
}

impl<I: hyper::rt::Read + hyper::rt::Write + Unpin + Send> Transport for &mut DirectTransport<I> {
    /// A pending read registered the waker with the socket.
    const RECV_WAKES: bool = true;

    /// A client sends nothing once its stream is open: EOF, an error or any byte (a pipelined
    /// request, which a stream never answers) ends the stream.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let mut byte = [0u8; 1];
        let _ = ready!(Pin::new(&mut self.io).poll_read(cx, &mut byte));
        Poll::Ready(None)
    }

    /// Ready once the last chunk is written.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.written.is_some() {
            ready!(self.poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        if self.chunk.capacity() == 0 {
            self.chunk = SPARE_CHUNK.take();
        }
        if self.chunk.is_empty() {
            self.chunk.resize(SIZE_LINE, 0);
        }
        self.stream.encode(&transmit, &mut self.chunk);
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut **self;
        if this.written.is_none() {
            let mut start = this.chunk.len();
            if this.chunk.len() > SIZE_LINE {
                let mut room = [0u8; SIZE_LINE];
                start = put_size_line(&mut room, this.chunk.len() - SIZE_LINE);
                this.chunk[start..SIZE_LINE].copy_from_slice(&room[start..]);
                this.chunk.extend_from_slice(b"\r\n");
            }
            match this.head.take() {
                Some(mut head) => {
                    head.extend_from_slice(&this.chunk[start..]);
                    this.first = head;
                    start = 0;
                }
                None if start == this.chunk.len() => return Poll::Ready(Ok(())),
                None => {}
            }
            this.written = Some(start);
        }
        let (io, written) = (&mut this.io, this.written.as_mut().expect("set above"));
        let bytes = if this.first.is_empty() {
            &this.chunk
        } else {
            &this.first
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut *io).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        ready!(Pin::new(io).poll_flush(cx))?;
        this.written = None;
        this.first = Vec::new();
        recycle(&mut this.chunk, KEEP_CAPACITY);
        // Back to the thread's spare, unless another stream's buffer is there already.
        let spare = SPARE_CHUNK.take();
        if spare.capacity() < this.chunk.capacity() {
            SPARE_CHUNK.set(std::mem::take(&mut this.chunk));
        } else {
            SPARE_CHUNK.set(spare);
            this.chunk = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_line_is_hex_and_crlf() {
        for (len, line) in [
            (0, "0\r\n"),
            (10, "a\r\n"),
            (0x1f2e, "1f2e\r\n"),
            (usize::MAX, "ffffffffffffffff\r\n"),
        ] {
            let mut room = [0u8; SIZE_LINE];
            let start = put_size_line(&mut room, len);
            assert_eq!(&room[start..], line.as_bytes(), "{len}");
        }
    }
}
