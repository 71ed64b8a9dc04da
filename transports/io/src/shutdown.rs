//! Graceful shutdown: one signal for every session of a server, and a count of the live ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use event_listener::Event;

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
    triggered: Event,
    sessions: AtomicUsize,
    changed: Event,
}

impl Shutdown {
    /// A switch that is off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown; clients are told to reconnect after `reconnect_ms`. Later calls
    /// change nothing.
    pub fn trigger(&self, reconnect_ms: u64) {
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
        match self.inner.hint.load(Ordering::SeqCst) {
            0 => None,
            hint => Some(hint - 1),
        }
    }

    /// Completes once triggered, with the reconnect hint.
    pub async fn triggered(&self) -> u64 {
        loop {
            let listener = self.inner.triggered.listen();
            if let Some(ms) = self.reconnect_ms() {
                return ms;
            }
            listener.await;
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
}
