//! `GET /events` as a connection's first request: the session's task owns the socket and writes
//! each drain as one HTTP/1.1 chunk, the response head with the first; the checks, registration
//! and head are the endpoint's own (`endpoints/sse.rs`).

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, future};
use http::Request;
use roomcast_core::event_stream::EventStream;
use roomcast_core::session::Transmit;
use roomcast_io::{Ended, Inbound, Runtime, Transport, recycle, run_registered};

use crate::context::Inner;
use crate::endpoints::sse::{Opened, open};
use crate::head::{Framing, head_bytes};
use crate::io::HyperIo;
use crate::raw::refuse::refuse;

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

/// Serves the stream `request` asks for on `io`, the connection it came on: a refusal is
/// answered and the connection closed; an opened stream gets a task of its own, which runs the
/// session, then ends the response and the connection. Its own task, not the connection's: each
/// level of future nesting is another cache line every delivery touches (docs/performance.md).
pub(crate) async fn serve<R, I>(
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
