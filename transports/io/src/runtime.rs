//! The runtime a driver runs on: a clock, timers and task spawning. Nothing else is needed, so
//! the run loops work on smol, tokio or anything else.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use event_listener::Event;

/// A clock, timers and a spawner.
#[async_trait]
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The current time; every input to the core is stamped with it.
    fn now(&self) -> Instant;

    /// Completes at `deadline` (at once if it has passed).
    async fn sleep_until(&self, deadline: Instant);

    /// Runs `task` in the background.
    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static;
}

/// A runtime whose clock a test moves by hand: `now()` is the inner runtime's time plus every
/// [`advance`](Self::advance) so far, and sleepers wake as soon as an advance passes their
/// deadline. A 35-second heartbeat expiry then takes a moment, not 35 seconds.
#[derive(Clone)]
pub struct ManualClock<R> {
    inner: R,
    offset_nanos: Arc<AtomicU64>,
    advanced: Arc<Event>,
}

impl<R: Runtime> ManualClock<R> {
    /// Wraps `inner`, starting with no offset.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            offset_nanos: Arc::new(AtomicU64::new(0)),
            advanced: Arc::new(Event::new()),
        }
    }

    /// Moves the clock forward by `by` and wakes every sleeper to check its deadline.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
        self.advanced.notify(usize::MAX);
    }

    fn offset(&self) -> Duration {
        Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst))
    }
}

#[async_trait]
impl<R: Runtime> Runtime for ManualClock<R> {
    fn now(&self) -> Instant {
        self.inner.now() + self.offset()
    }

    async fn sleep_until(&self, deadline: Instant) {
        loop {
            // Listen before reading the clock, so an advance in between is not missed.
            let listener = self.advanced.listen();
            let now = self.now();
            if now >= deadline {
                return;
            }
            let real = self.inner.now() + (deadline - now);
            futures_lite::future::or(self.inner.sleep_until(real), listener).await;
        }
    }

    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.spawn(task);
    }
}
