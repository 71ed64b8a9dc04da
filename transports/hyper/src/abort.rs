//! A connection's abort switch, for an SSE stream whose client stopped reading.
//!
//! Once a stream's session has ended, its body ends, and hyper writes what is left of the
//! response. A client that stopped reading would keep hyper waiting (and its buffers held) for
//! as long as TCP keeps the connection. So the session's task gives hyper the write timeout to
//! finish the response, then pulls this switch, and [`serve_connection`] drops the connection.
//!
//! The session keeps a task of its own rather than running in the connection's task: measured
//! with `roomcast-bench fanout-sse` (1,000 streams, burst), one task per stream polled both on
//! every wake-up, and cost 2.8x to 3.8x the server CPU of two tasks.
//!
//! [`serve_connection`]: crate::serve_connection

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// What the connection does once a stream's session has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterStream {
    /// hyper finished the response: the connection goes on (keep-alive).
    KeepServing,
    /// hyper could not finish it within the write timeout: drop the connection.
    Drop,
}

/// The switch a request carries in its extensions (see [`serve_connection`]).
///
/// [`serve_connection`]: crate::serve_connection
#[derive(Clone, Debug, Default)]
pub(crate) struct Abort {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pulled: AtomicBool,
    /// The connection's task, woken when the switch is pulled.
    waker: Mutex<Option<Waker>>,
}

impl Abort {
    /// Drops the connection at its task's next turn.
    pub(crate) fn pull(&self) {
        self.inner.pulled.store(true, Ordering::Release);
        let waker = self.lock().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ready once the switch is pulled.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.pulled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        {
            let mut waker = self.lock();
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        // Pulled between the check and the registration: its wake may have found no waker.
        if self.inner.pulled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        self.inner
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn pulling_wakes_the_connection_which_then_ends() {
        let abort = Abort::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        assert_eq!(abort.poll(&mut cx), Poll::Pending);
        abort.clone().pull();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken");
        assert_eq!(abort.poll(&mut cx), Poll::Ready(()));
    }
}
