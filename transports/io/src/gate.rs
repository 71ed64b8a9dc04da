//! Reading a socket only when it said it may have something.
//!
//! A connection's task wakes for many reasons, mostly deliveries, and its read future is polled
//! each time. smol's sockets (async-io) try a `recvfrom` before they wait for readiness, so each
//! such poll cost a syscall that failed with EAGAIN and an epoll re-arm, and the layers above add
//! their own (tungstenite zero-fills its read buffer before each read). The gate is the waker the
//! socket's reads see: it records that the socket itself woke the task, and a read that last
//! found nothing is tried again only then.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_lite::{AsyncRead, AsyncWrite};

#[derive(Debug, Default)]
pub(crate) struct ReadGate {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl ReadGate {
    /// The waker to read with, or `None` (stay pending) when the last read found nothing
    /// (`armed`) and the socket has not woken the gate since. The task's waker is kept, so the
    /// socket's wake reaches it either way.
    pub(crate) fn open(self: &Arc<Self>, cx: &Context<'_>, armed: bool) -> Option<Waker> {
        {
            let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let woken = self.woken.swap(false, Ordering::AcqRel);
        (!armed || woken).then(|| Waker::from(Arc::clone(self)))
    }
}

impl Wake for ReadGate {
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

/// A byte stream whose reads go through a [`ReadGate`]; writes pass straight through. For a
/// server's accepted sockets on smol: hyper polls a connection's read side whenever its task
/// wakes, also while it only streams a response (an SSE stream).
#[derive(Debug)]
pub struct GatedIo<S> {
    inner: S,
    gate: Arc<ReadGate>,
    armed: bool,
}

impl<S> GatedIo<S> {
    /// Wraps a byte stream.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            gate: Arc::default(),
            armed: false,
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
        let Some(waker) = this.gate.open(cx, this.armed) else {
            return Poll::Pending;
        };
        let polled = Pin::new(&mut this.inner).poll_read(&mut Context::from_waker(&waker), buf);
        this.armed = polled.is_pending();
        polled
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
