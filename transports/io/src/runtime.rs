//! The runtime a driver runs on: a clock, resettable timers and task spawning. Nothing else is
//! needed, so the run loops work on smol, tokio or anything else.

use std::future::{Future, poll_fn};
use std::task::{Context, Poll};
use std::time::Instant;

use async_trait::async_trait;

/// A timer a task keeps for its whole life and moves with [`reset`](Self::reset), as quinn's
/// `AsyncTimer`: a session's deadline moves with almost every frame it writes (an SSE
/// keep-alive, a ping riding with a delivery), and a new sleep future per move was an
/// allocation and a timer-wheel entry each time.
///
/// tokio's `Sleep::reset`, async-io's `Timer::set_at` and `hyper::rt::Timer::reset` back it.
pub trait AsyncTimer: Send + Unpin + 'static {
    /// Fires at `deadline` instead (at once if it has passed), whether or not it fired before.
    fn reset(&mut self, deadline: Instant);

    /// Ready once the deadline has passed; registers `cx`'s waker otherwise. Ready again on
    /// every poll until [`reset`](Self::reset).
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// A clock, timers and a spawner.
#[async_trait]
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The runtime's timer.
    type Timer: AsyncTimer;

    /// The current time; every input to the core is stamped with it.
    fn now(&self) -> Instant;

    /// A timer that fires at `deadline`.
    fn new_timer(&self, deadline: Instant) -> Self::Timer;

    /// Runs `task` in the background.
    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Completes at `deadline` (at once if it has passed): a timer used once.
    async fn sleep_until(&self, deadline: Instant) {
        let mut timer = self.new_timer(deadline);
        poll_fn(|cx| timer.poll_expired(cx)).await;
    }
}
