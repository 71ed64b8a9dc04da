//! A runtime whose clock a test moves by hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener};

use crate::runtime::{AsyncTimer, Runtime};

/// A runtime whose clock a test moves by hand: `now()` is the inner runtime's time plus every
/// [`advance`](Self::advance) so far, and timers fire as soon as an advance passes their
/// deadline. A 35-second heartbeat expiry then takes a moment, not 35 seconds.
#[derive(Clone)]
pub struct ManualClock<R> {
    inner: R,
    shared: Arc<Shared>,
}

struct Shared {
    offset_nanos: AtomicU64,
    advanced: Event,
}

impl<R: Runtime> ManualClock<R> {
    /// Wraps `inner`, starting with no offset.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared {
                offset_nanos: AtomicU64::new(0),
                advanced: Event::new(),
            }),
        }
    }

    /// Moves the clock forward by `by` and wakes every timer to check its deadline.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.shared.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
        self.shared.advanced.notify(usize::MAX);
    }
}

impl Shared {
    fn offset(&self) -> Duration {
        Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst))
    }
}

/// [`ManualClock`]'s timer: the inner runtime's timer set to the real moment the deadline
/// would come without further advances, and a listener for the advances.
pub struct ManualTimer<R: Runtime> {
    clock: ManualClock<R>,
    deadline: Instant,
    /// Set for the real moment the deadline comes, as of the offset when it was last set.
    real: R::Timer,
    /// The offset `real` was set with.
    offset: Duration,
    advanced: Option<EventListener>,
}

// Its fields are never pinned (the listener is polled through `Pin::new`, being `Unpin`).
impl<R: Runtime> Unpin for ManualTimer<R> {}

impl<R: Runtime> ManualTimer<R> {
    /// The real moment `deadline` comes at the current offset.
    fn real_deadline(&self, offset: Duration) -> Instant {
        self.deadline.checked_sub(offset).unwrap_or(self.deadline)
    }
}

impl<R: Runtime> AsyncTimer for ManualTimer<R> {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.offset = self.clock.shared.offset();
        let real = self.real_deadline(self.offset);
        self.real.reset(real);
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            // Listen before reading the clock, so an advance in between is not missed.
            let shared = &self.clock.shared;
            let listener = self
                .advanced
                .get_or_insert_with(|| shared.advanced.listen());
            let advanced = Pin::new(listener).poll(cx).is_ready();
            if advanced {
                self.advanced = None;
            }
            if self.clock.now() >= self.deadline {
                return Poll::Ready(());
            }
            let offset = self.clock.shared.offset();
            if offset != self.offset {
                self.offset = offset;
                let real = self.real_deadline(offset);
                self.real.reset(real);
            }
            if self.real.poll_expired(cx).is_ready() {
                // The real moment came, a little before the clock says so (a timer of
                // millisecond grain): look again soon.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !advanced {
                return Poll::Pending;
            }
        }
    }
}

impl<R: Runtime> Runtime for ManualClock<R> {
    type Timer = ManualTimer<R>;

    fn now(&self) -> Instant {
        self.inner.now() + self.shared.offset()
    }

    fn new_timer(&self, deadline: Instant) -> ManualTimer<R> {
        let offset = self.shared.offset();
        let real = deadline.checked_sub(offset).unwrap_or(deadline);
        ManualTimer {
            clock: self.clone(),
            deadline,
            real: self.inner.new_timer(real),
            offset,
            advanced: None,
        }
    }

    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.spawn(task);
    }
}
