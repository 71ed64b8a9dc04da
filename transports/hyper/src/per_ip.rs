//! The per-IP connection limit: how many connections (each TCP connection, and the sessions it
//! carries) one address may hold at once.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Live sessions per address. The map holds only addresses with a live session, so its size is
/// bounded by the sessions themselves.
#[derive(Clone, Debug)]
pub(crate) struct PerIp {
    limit: usize,
    live: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// A connection counted against its address until every clone is dropped: the connection and
/// a session it carries, which may outlive it (an upgraded WebSocket), hold one count together.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    _held: Arc<Held>,
}

/// A TLS handshake's count against its address (see
/// [`Roomcast::hold_handshake`](crate::Roomcast::hold_handshake)); freed when dropped.
#[derive(Debug)]
#[must_use = "the count is freed when the hold is dropped"]
pub struct HandshakeHold {
    pub(crate) _slot: Option<Slot>,
}

#[derive(Debug)]
struct Held {
    per_ip: PerIp,
    ip: IpAddr,
}

impl PerIp {
    /// At most `limit` sessions per address.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            live: Arc::default(),
        }
    }

    /// A slot for `ip`, or `None` at the limit.
    pub(crate) fn acquire(&self, ip: IpAddr) -> Option<Slot> {
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = live.entry(ip).or_insert(0);
        if *count >= self.limit {
            if *count == 0 {
                live.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(Slot {
            _held: Arc::new(Held {
                per_ip: self.clone(),
                ip,
            }),
        })
    }

    /// Live sessions of `ip`.
    #[cfg(test)]
    fn count(&self, ip: IpAddr) -> usize {
        let live = self
            .live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        live.get(&ip).copied().unwrap_or(0)
    }
}

impl Slot {
    /// `future` run as a task that holds this slot until it ends. The task is the future and
    /// the slot, nothing more: an `async` block awaiting a future it captured keeps two copies
    /// of it (the capture, and the one awaited), for an idle session 2 KiB a connection.
    pub(crate) fn hold<F: Future + Unpin>(self, future: F) -> Holding<F> {
        Holding {
            future,
            _slot: self,
        }
    }
}

/// See [`Slot::hold`].
pub(crate) struct Holding<F> {
    future: F,
    _slot: Slot,
}

impl<F: Future + Unpin> Future for Holding<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().future).poll(cx).map(drop)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut live = self
            .per_ip
            .live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = live.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                live.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_per_address_and_frees_on_drop() {
        let per_ip = PerIp::new(2);
        let a = IpAddr::from([127, 0, 0, 1]);
        let b = IpAddr::from([127, 0, 0, 2]);
        let first = per_ip.acquire(a).expect("room");
        let second = per_ip.acquire(a).expect("room");
        assert!(per_ip.acquire(a).is_none(), "the third is refused");
        let other = per_ip
            .acquire(b)
            .expect("another address has its own count");
        drop(first);
        assert_eq!(per_ip.count(a), 1);
        let third = per_ip.acquire(a).expect("room again");
        let shared = third.clone();
        drop(third);
        assert_eq!(per_ip.count(a), 2, "a clone holds the count");
        drop((second, shared, other));
        assert!(
            per_ip.live.lock().expect("lock").is_empty(),
            "no entry left"
        );
        assert!(PerIp::new(0).acquire(a).is_none());
        assert!(PerIp::new(0).live.lock().expect("lock").is_empty());
    }
}
