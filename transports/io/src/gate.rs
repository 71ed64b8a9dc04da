//! Reading a socket only when it said it may have something.
//!
//! A connection's task wakes for many reasons, mostly deliveries, and its read future is polled
//! each time. smol's sockets (async-io) try a `recvfrom` before they wait for readiness, so each
//! such poll cost a syscall that failed with EAGAIN and an epoll re-arm, and the layers above add
//! their own (tungstenite zero-fills its read buffer before each read). The gate is the waker the
//! socket's reads see: it records that the socket itself woke the task, and a read that last
//! found nothing is tried again only then. It serves hyper's connections on smol ([`GatedIo`]);
//! a session's own socket and timer ring its mailbox instead (`mailbox.rs`), which a delivery
//! reads anyway.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_lite::{AsyncRead, AsyncWrite};

/// A future's gate, owned by the one task that polls through it.
#[derive(Debug)]
pub(crate) struct Gate {
    shared: Arc<Shared>,
    /// The waker the gated future sees, made once.
    waker: Waker,
    /// The task waker `shared` holds, compared without its lock.
    registered: Option<Waker>,
    /// The last poll was pending: poll again only once the future woke the gate.
    armed: bool,
}

/// What the gated future's waker reaches.
#[derive(Debug, Default)]
struct Shared {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Default for Gate {
    fn default() -> Self {
        let shared = Arc::<Shared>::default();
        Self {
            waker: Waker::from(Arc::clone(&shared)),
            shared,
            registered: None,
            armed: false,
        }
    }
}

impl Gate {
    /// Polls through the gate: `poll` runs with the gate's waker unless its last poll was
    /// pending and nothing has woken it since. The task's waker is kept either way, so the
    /// future's wake reaches the task. With the same task polling (the usual case) this takes
    /// no lock.
    pub(crate) fn poll<T>(
        &mut self,
        cx: &Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        if !self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            let task = cx.waker().clone();
            *self
                .shared
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task.clone());
            self.registered = Some(task);
        }
        // Read before clearing: mostly the flag is clear, and a read leaves the line shared.
        let woken = self.shared.woken.load(Ordering::Acquire)
            && self.shared.woken.swap(false, Ordering::AcqRel);
        if self.armed && !woken {
            return Poll::Pending;
        }
        let polled = poll(&mut Context::from_waker(&self.waker));
        self.armed = polled.is_pending();
        polled
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

/// A byte stream whose reads go through a gate; writes pass straight through. For a
/// server's accepted sockets on smol: hyper polls a connection's read side whenever its task
/// wakes, also while it only streams a response (an SSE stream).
#[derive(Debug)]
pub struct GatedIo<S> {
    inner: S,
    gate: Gate,
}

impl<S> GatedIo<S> {
    /// Wraps a byte stream.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            gate: Gate::default(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GatedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.gate
            .poll(cx, |cx| Pin::new(&mut this.inner).poll_read(cx, buf))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GatedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::AtomicUsize;

    use futures_lite::AsyncReadExt;
    use futures_lite::future::{block_on, poll_once};

    use super::*;

    /// A socket whose reads are counted: it has `data` to give, else it is not ready.
    #[derive(Default)]
    pub(crate) struct Counted {
        pub(crate) reads: Arc<AtomicUsize>,
        pub(crate) data: Arc<Mutex<(Vec<u8>, Option<Waker>)>>,
    }

    impl AsyncRead for Counted {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let mut data = self.data.lock().expect("not poisoned");
            if data.0.is_empty() {
                data.1 = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(data.0.len());
            buf[..n].copy_from_slice(&data.0[..n]);
            data.0.drain(..n);
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Counted {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_pending_future_is_polled_again_once_woken() {
        let polls = AtomicUsize::new(0);
        let stored = Mutex::new(None::<Waker>);
        let mut gate = Gate::default();
        let poll = |gate: &mut Gate| {
            block_on(poll_once(std::future::poll_fn(|cx| {
                gate.poll(cx, |cx| {
                    polls.fetch_add(1, Ordering::SeqCst);
                    *stored.lock().expect("not poisoned") = Some(cx.waker().clone());
                    Poll::<()>::Pending
                })
            })))
        };
        poll(&mut gate);
        poll(&mut gate);
        assert_eq!(polls.load(Ordering::SeqCst), 1, "not woken: not polled");
        let waker = stored.lock().expect("not poisoned").take();
        waker.expect("registered").wake();
        poll(&mut gate);
        assert_eq!(polls.load(Ordering::SeqCst), 2, "woken: polled");
    }

    #[test]
    fn a_read_that_found_nothing_waits_for_the_socket_to_wake_it() {
        let socket = Counted::default();
        let (reads, data) = (Arc::clone(&socket.reads), Arc::clone(&socket.data));
        let mut io = GatedIo::new(socket);
        let mut buf = [0u8; 8];
        assert!(block_on(poll_once(io.read(&mut buf))).is_none());
        for _ in 0..5 {
            assert!(block_on(poll_once(io.read(&mut buf))).is_none());
        }
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1,
            "polled again, not read again"
        );
        let waker = {
            let mut data = data.lock().expect("not poisoned");
            data.0.extend_from_slice(b"hi");
            data.1.take().expect("the socket kept a waker")
        };
        waker.wake();
        let read = block_on(poll_once(io.read(&mut buf)));
        assert_eq!(read.map(|r| r.expect("read")), Some(2));
        assert_eq!(&buf[..2], b"hi");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
