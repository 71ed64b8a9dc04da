//! Graceful shutdown: one signal for every session of a server, and a count of the live ones.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use event_listener::{Event, EventListener};

/// A server's shutdown switch, shared by its accept loops and sessions (clones share it).
///
/// [`trigger`](Self::trigger) makes every session send `shutdown` with the reconnect hint and close
/// with 1001 after its grace period (in-flight frames keep flowing until then), and accept loops
/// stop accepting. [`drained`](Self::drained) completes once no session is left.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The reconnect hint in milliseconds, plus one; 0 while not triggered.
    hint: AtomicU64,
    /// How long after the hint the sessions spread their clients' return over, in
    /// milliseconds: set before the hint.
    window: AtomicU64,
    triggered: Event,
    sessions: AtomicUsize,
    changed: Event,
}

impl Inner {
    fn reconnect_ms(&self) -> Option<u64> {
        match self.hint.load(Ordering::SeqCst) {
            0 => None,
            hint => Some(hint - 1),
        }
    }
}

impl Shutdown {
    /// A switch that is off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown; clients are told to reconnect after `reconnect_ms`, each session's
    /// client up to half of it later again. Later calls change nothing.
    pub fn trigger(&self, reconnect_ms: u64) {
        self.trigger_spread(reconnect_ms, 0);
    }

    /// [`trigger`](Self::trigger), with the clients' return spread over a window sized to the
    /// sessions live now and the rate the next server admits new sessions at
    /// (`sessions / admitted_per_second`; 0: no rate, half the hint): 10,000 clients of a
    /// server that admits 5,000 a second come back over 2 s, not in one instant.
    pub fn trigger_spread(&self, reconnect_ms: u64, admitted_per_second: u32) {
        if self.inner.hint.load(Ordering::SeqCst) != 0 {
            return;
        }
        let sessions = self.sessions() as u64;
        let window = match u64::from(admitted_per_second) {
            0 => 0,
            rate => sessions.saturating_mul(1000) / rate,
        };
        self.inner.window.store(window, Ordering::SeqCst);
        let hint = reconnect_ms.saturating_add(1);
        if self
            .inner
            .hint
            .compare_exchange(0, hint, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.inner.triggered.notify(usize::MAX);
        }
    }

    /// The reconnect hint, once triggered.
    pub fn reconnect_ms(&self) -> Option<u64> {
        self.inner.reconnect_ms()
    }

    /// The window the clients' return is spread over after the hint, once triggered by
    /// [`trigger_spread`](Self::trigger_spread) (0 otherwise).
    pub fn window_ms(&self) -> u64 {
        self.inner.window.load(Ordering::SeqCst)
    }

    /// Completes once triggered, with the reconnect hint.
    pub fn triggered(&self) -> Triggered {
        Triggered {
            inner: Arc::clone(&self.inner),
            listener: None,
            registered: None,
        }
    }

    /// Live sessions.
    pub fn sessions(&self) -> usize {
        self.inner.sessions.load(Ordering::SeqCst)
    }

    /// Completes once no session is left.
    pub async fn drained(&self) {
        loop {
            let listener = self.inner.changed.listen();
            if self.sessions() == 0 {
                return;
            }
            listener.await;
        }
    }

    /// Counts a session as live until the guard is dropped.
    pub(crate) fn enter(&self) -> SessionGuard {
        self.inner.sessions.fetch_add(1, Ordering::SeqCst);
        SessionGuard {
            shutdown: self.clone(),
        }
    }
}

/// [`Shutdown::triggered`]'s future. A session keeps one across its wake-ups and polls it on
/// each, mostly for deliveries: once its waker is registered, a poll with the same waker only
/// reads the hint, instead of locking the listener list every session shares.
#[derive(Debug)]
pub struct Triggered {
    /// The switch's shared state, held here rather than reached through the session's options,
    /// a cache line of their own that each poll would touch.
    inner: Arc<Inner>,
    listener: Option<EventListener>,
    /// The waker the listener was last polled with.
    registered: Option<Waker>,
}

impl Triggered {
    /// [`Shutdown::window_ms`].
    pub fn window_ms(&self) -> u64 {
        self.inner.window.load(Ordering::SeqCst)
    }
}

impl Future for Triggered {
    type Output = u64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let this = &mut *self;
        loop {
            // The hint is set before the listeners are told, so it is read after listening.
            if let Some(ms) = this.inner.reconnect_ms() {
                return Poll::Ready(ms);
            }
            let Some(listener) = &mut this.listener else {
                this.listener = Some(this.inner.triggered.listen());
                this.registered = None;
                continue;
            };
            if this
                .registered
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                return Poll::Pending;
            }
            match Pin::new(listener).poll(cx) {
                Poll::Ready(()) => this.listener = None,
                Poll::Pending => {
                    this.registered = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

/// A live session, for [`Shutdown::drained`].
pub(crate) struct SessionGuard {
    shutdown: Shutdown,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.shutdown.inner.sessions.fetch_sub(1, Ordering::SeqCst);
        self.shutdown.inner.changed.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_triggers_once_and_counts_sessions() {
        let shutdown = Shutdown::new();
        assert_eq!(shutdown.reconnect_ms(), None);
        shutdown.trigger(0);
        shutdown.trigger(5000);
        assert_eq!(shutdown.reconnect_ms(), Some(0), "the first trigger wins");
        let guard = shutdown.enter();
        assert_eq!(shutdown.sessions(), 1);
        drop(guard);
        assert_eq!(shutdown.sessions(), 0);
        futures_lite::future::block_on(async {
            assert_eq!(shutdown.triggered().await, 0);
            shutdown.drained().await;
        });
    }

    #[test]
    fn a_waiting_trigger_wakes_its_task_once_told() {
        let shutdown = Shutdown::new();
        let mut triggered = Box::pin(shutdown.triggered());
        let waker = Arc::new(Woken::default());
        let as_waker = Waker::from(Arc::clone(&waker));
        let mut cx = Context::from_waker(&as_waker);
        assert!(triggered.as_mut().poll(&mut cx).is_pending());
        assert!(
            triggered.as_mut().poll(&mut cx).is_pending(),
            "polled again"
        );
        assert_eq!(waker.0.load(Ordering::SeqCst), 0);
        shutdown.trigger(250);
        assert_eq!(
            waker.0.load(Ordering::SeqCst),
            1,
            "the registered waker is woken"
        );
        assert_eq!(triggered.as_mut().poll(&mut cx), Poll::Ready(250));
        // A new waker (the future moved to another task) is registered anew.
        let other = Shutdown::new();
        let mut triggered = Box::pin(other.triggered());
        assert!(triggered.as_mut().poll(&mut cx).is_pending());
        let second = Arc::new(Woken::default());
        let second_waker = Waker::from(Arc::clone(&second));
        assert!(
            triggered
                .as_mut()
                .poll(&mut Context::from_waker(&second_waker))
                .is_pending()
        );
        other.trigger(0);
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "the latest waker is woken"
        );
    }

    #[derive(Default)]
    struct Woken(AtomicUsize);

    impl std::task::Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
