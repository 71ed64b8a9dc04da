//! The response body of every roomcast endpoint: a whole body, or a stream of chunks (SSE) fed
//! by a session task through a small bounded channel.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use async_channel::Receiver;
use bytes::Bytes;
use event_listener::{Event, EventListener};
use futures_lite::Stream;
use http_body::{Frame, SizeHint};

/// A response body.
#[derive(Debug)]
pub struct Body {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    /// Chunks pulled from a stream of the caller's (a SockJS receiver), which learns of the
    /// body's drop by its own.
    Chunks(Chunks),
    Stream {
        // async-channel's receiver is not `Unpin` (it holds a listener while waiting).
        chunks: Pin<Box<Receiver<Bytes>>>,
        _dropped: DropSignal,
    },
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Self {
            kind: Kind::Full(None),
        }
    }

    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// A streaming body: each chunk received is sent as it comes, and the body ends when every
    /// sender is gone. `dropped` fires when hyper drops the body (the client went away).
    pub(crate) fn stream(chunks: Receiver<Bytes>, dropped: DropSignal) -> Self {
        Self {
            kind: Kind::Stream {
                chunks: Box::pin(chunks),
                _dropped: dropped,
            },
        }
    }
}

/// A stream of chunks, shown by its name only.
struct Chunks(Pin<Box<dyn Stream<Item = Bytes> + Send>>);

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Chunks")
    }
}

impl Body {
    /// A body of the chunks `stream` yields, ending with it: hyper asks for the next chunk
    /// once it has room for it, so a long body is made as it is sent.
    pub fn chunks(stream: impl Stream<Item = Bytes> + Send + 'static) -> Self {
        Self {
            kind: Kind::Chunks(Chunks(Box::pin(stream))),
        }
    }

    /// A whole body's bytes (empty for none); `None` for a stream.
    pub(crate) fn into_full(self) -> Option<Bytes> {
        match self.kind {
            Kind::Full(bytes) => Some(bytes.unwrap_or_default()),
            Kind::Stream { .. } | Kind::Chunks(_) => None,
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Kind::Chunks(Chunks(chunks)) => chunks
                .as_mut()
                .poll_next(cx)
                .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes)))),
            Kind::Stream { chunks, .. } => chunks
                .as_mut()
                .poll_next(cx)
                .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream { .. } | Kind::Chunks(_) => SizeHint::default(),
        }
    }
}

/// Fires its [`Dropped`] when dropped: how a session task learns that hyper let go of its
/// streaming body, so a client that goes away frees its session at once, not at the next write.
#[derive(Debug)]
pub(crate) struct DropSignal {
    event: Arc<(Event, std::sync::atomic::AtomicBool)>,
}

/// Completes once its [`DropSignal`] is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Dropped {
    event: Arc<(Event, std::sync::atomic::AtomicBool)>,
}

pub(crate) fn drop_signal() -> (DropSignal, Dropped) {
    let event = Arc::new((Event::new(), std::sync::atomic::AtomicBool::new(false)));
    (
        DropSignal {
            event: event.clone(),
        },
        Dropped { event },
    )
}

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.event
            .1
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.event.0.notify(usize::MAX);
    }
}

impl Dropped {
    /// Completes once the signal is dropped.
    pub(crate) async fn wait(&self) {
        let mut listener = None;
        std::future::poll_fn(|cx| self.poll_wait(&mut listener, cx)).await;
    }

    /// Ready once the signal is dropped; `listener` is the caller's, kept between polls.
    pub(crate) fn poll_wait(
        &self,
        listener: &mut Option<EventListener>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        loop {
            // Checked again once listening: a drop between a check and the listening is seen.
            if self.event.1.load(std::sync::atomic::Ordering::SeqCst) {
                return Poll::Ready(());
            }
            match listener {
                None => *listener = Some(self.event.0.listen()),
                Some(waiting) => {
                    ready!(Pin::new(waiting).poll(cx));
                    *listener = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    fn poll(body: &mut Body) -> Poll<Option<Bytes>> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        Pin::new(body)
            .poll_frame(&mut cx)
            .map(|frame| frame.map(|f| f.expect("infallible").into_data().expect("data")))
    }

    #[test]
    fn a_full_body_yields_its_bytes_once() {
        let mut body = Body::full("hello");
        assert_eq!(body.size_hint().exact(), Some(5));
        assert_eq!(poll(&mut body), Poll::Ready(Some(Bytes::from("hello"))));
        assert_eq!(poll(&mut body), Poll::Ready(None));
        assert!(body.is_end_stream());
        assert!(Body::empty().is_end_stream());
    }

    #[test]
    fn a_stream_body_ends_with_its_senders_and_signals_its_drop() {
        let (tx, rx) = async_channel::bounded(2);
        let (signal, dropped) = drop_signal();
        let mut body = Body::stream(rx, signal);
        assert_eq!(poll(&mut body), Poll::Pending);
        tx.try_send(Bytes::from("a")).expect("room");
        assert_eq!(poll(&mut body), Poll::Ready(Some(Bytes::from("a"))));
        drop(tx);
        assert_eq!(poll(&mut body), Poll::Ready(None));
        drop(body);
        futures_lite::future::block_on(dropped.wait());
    }
}
