//! Readiness memos: which of a task's sources woke it, so the task polls only those.
//!
//! A connection's task wakes for many reasons, mostly deliveries. Polling every source on every
//! wake-up costs: smol's sockets (async-io) try a `recvfrom` before they wait for readiness, so
//! each such poll was a syscall that failed with EAGAIN and an epoll re-arm, tungstenite
//! zero-fills its read buffer before each read, and a timer's poll reads its shared state. So
//! each source is polled with a [bell](bell): a waker that notes its source in a memo
//! ([`Rung`]) before it wakes the task, and a source whose last poll was pending is polled
//! again only once its bell rang ([`Sources::poll`]).
//!
//! Two places keep such a memo:
//! - a session's mailbox (`mailbox.rs`): its socket and its timer ring
//!   the memo that sits beside the deliveries, which a delivery reads anyway, so a delivery
//!   learns that neither needs a poll at no extra cache line (docs/performance.md, "Cache
//!   lines per delivery");
//! - [`GatedIo`]: a byte stream's reads, for hyper's connections on smol (hyper polls a
//!   connection's read side whenever its task wakes, also while it only streams a response).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_lite::{AsyncRead, AsyncWrite};

/// The memo: a bit per source that rang since it was last [answered](Self::answer).
#[derive(Debug, Default)]
pub(crate) struct Rung(AtomicU8);

impl Rung {
    /// Notes that `source` rang.
    pub(crate) fn ring(&self, source: u8) {
        self.0.fetch_or(source, Ordering::Release);
    }

    /// The sources that rang and were not answered since.
    pub(crate) fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }

    /// `source` is about to be polled: a ring from now on is a new one.
    pub(crate) fn answer(&self, source: u8) {
        self.0.fetch_and(!source, Ordering::AcqRel);
    }
}

/// What a bell rings: a memo, and the task to wake after noting the source in it.
pub(crate) trait Belfry: Send + Sync + 'static {
    /// The memo.
    fn rung(&self) -> &Rung;

    /// Wakes the task, if it waits. A task that registers its waker after a ring must find the
    /// ring in the memo: it reads the memo after registering ([`Sources::missed`]).
    fn wake_task(&self);
}

/// The waker a source is polled with: notes `source` in its belfry's memo, then wakes the task.
struct Bell<B> {
    belfry: Arc<B>,
    source: u8,
}

impl<B: Belfry> Wake for Bell<B> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.belfry.rung().ring(self.source);
        self.belfry.wake_task();
    }
}

/// A bell for `source` of `belfry`, made once per task and source.
pub(crate) fn bell<B: Belfry>(belfry: &Arc<B>, source: u8) -> Waker {
    Waker::from(Arc::new(Bell {
        belfry: Arc::clone(belfry),
        source,
    }))
}

/// The polling task's side of a memo: which sources' last poll was pending.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sources {
    waiting: u8,
}

impl Sources {
    /// Polls `source` unless its last poll was pending and it has not rung since (`rung` is the
    /// memo as the task read it this turn). A ring is answered before the poll, so one during
    /// the poll counts.
    pub(crate) fn poll<T>(
        &mut self,
        rung: u8,
        source: u8,
        memo: &Rung,
        poll: impl FnOnce() -> Poll<T>,
    ) -> Poll<T> {
        if rung & source != 0 {
            memo.answer(source);
        } else if self.waiting & source != 0 {
            return Poll::Pending;
        }
        let polled = poll();
        if polled.is_pending() {
            self.waiting |= source;
        } else {
            self.waiting &= !source;
        }
        polled
    }

    /// `source` is new (a timer reset): its next poll goes through.
    pub(crate) fn forget(&mut self, source: u8) {
        self.waiting &= !source;
    }

    /// Whether a source that waits rang while the task's waker was out of its place (taken by
    /// the wake that led to this poll): that ring woke nobody, so the task must wake itself.
    /// Read after the task's waker is back in place.
    pub(crate) fn missed(&self, memo: &Rung) -> bool {
        memo.get() & self.waiting != 0
    }
}

/// The one source of a [`GatedIo`].
const READ: u8 = 1;

/// A gate's belfry: the memo and the task waker, for one source.
#[derive(Debug, Default)]
struct Gate {
    rung: Rung,
    task: Mutex<Option<Waker>>,
}

impl Belfry for Gate {
    fn rung(&self) -> &Rung {
        &self.rung
    }

    fn wake_task(&self) {
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

/// A byte stream whose reads are polled only when the socket said it may have something;
/// writes pass straight through. For a server's accepted sockets on smol.
#[derive(Debug)]
pub struct GatedIo<S> {
    inner: S,
    gate: Arc<Gate>,
    /// The waker the socket's reads see, made once.
    bell: Waker,
    /// The task waker the gate holds, compared without its lock.
    registered: Option<Waker>,
    sources: Sources,
}

impl<S> GatedIo<S> {
    /// Wraps a byte stream.
    pub fn new(inner: S) -> Self {
        let gate = Arc::<Gate>::default();
        Self {
            inner,
            bell: bell(&gate, READ),
            gate,
            registered: None,
            sources: Sources::default(),
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
        // The task's waker, kept for the bell to wake; with the same task polling (the usual
        // case) this takes no lock.
        if !this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            let task = cx.waker().clone();
            *this
                .gate
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task.clone());
            this.registered = Some(task);
        }
        let rung = this.gate.rung.get();
        let (inner, bell) = (&mut this.inner, &this.bell);
        this.sources.poll(rung, READ, &this.gate.rung, || {
            Pin::new(inner).poll_read(&mut Context::from_waker(bell), buf)
        })
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
    fn a_source_is_polled_again_only_once_it_rang() {
        let memo = Rung::default();
        let mut sources = Sources::default();
        let mut polls = 0;
        let mut poll = |sources: &mut Sources, memo: &Rung| {
            let rung = memo.get();
            sources.poll(rung, READ, memo, || {
                polls += 1;
                Poll::<()>::Pending
            })
        };
        assert!(poll(&mut sources, &memo).is_pending());
        assert!(poll(&mut sources, &memo).is_pending());
        assert!(!sources.missed(&memo));
        memo.ring(READ);
        assert!(sources.missed(&memo), "a ring of a waiting source");
        assert!(poll(&mut sources, &memo).is_pending());
        assert_eq!(memo.get(), 0, "answered");
        assert!(poll(&mut sources, &memo).is_pending());
        sources.forget(READ);
        assert!(poll(&mut sources, &memo).is_pending());
        assert_eq!(polls, 3, "the first poll, after the ring, after forget");
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
