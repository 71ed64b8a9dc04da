//! Is the pub/sub link alive? A connection can stay open and deliver nothing (after a
//! Sentinel failover, a proxy that lost its peer, `CLIENT KILL TYPE pubsub` on a server that
//! does not close it): publishes still succeed and health stays green while followers hear
//! nothing (centrifugo#1189). So the listener notes when it last heard anything, and a link
//! silent for `probe_idle` is probed: the node publishes to its own channel and must hear it
//! back within `probe_timeout`, else the link is deaf and the driver reconnects (the hub then
//! reads what it missed). A listener whose stream ended says so at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the listener tells the driver.
#[derive(Debug)]
pub(super) struct Health {
    origin: Instant,
    /// When anything was last heard on the pub/sub link, in ms since `origin`.
    heard: AtomicU64,
    /// The connections' generation, and whether its stream ended.
    generation: AtomicU64,
    ended: AtomicBool,
}

impl Health {
    pub(super) fn new(origin: Instant) -> Self {
        Self {
            origin,
            heard: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        }
    }

    /// A new generation of connections: what an older listener says is ignored.
    pub(super) fn next_generation(&self) -> u64 {
        self.ended.store(false, Ordering::Relaxed);
        self.heard.store(self.ms(Instant::now()), Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether `generation` is the connections' now.
    pub(super) fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Relaxed) == generation
    }

    pub(super) fn heard(&self) {
        self.heard.store(self.ms(Instant::now()), Ordering::Relaxed);
    }

    pub(super) fn ended(&self, generation: u64) {
        if self.generation.load(Ordering::Relaxed) == generation {
            self.ended.store(true, Ordering::Relaxed);
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }
}

/// The driver's side: when to probe, and whether the link is deaf.
#[derive(Debug, Default)]
pub(super) struct Probe {
    /// A probe sent and not heard back: when, in ms since the origin.
    sent: Option<u64>,
}

/// What to do about the link now.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing.
    Fine,
    /// Publish a probe to the node's own channel.
    Probe,
    /// Reconnect: the stream ended, or a probe was not heard back.
    Deaf(&'static str),
}

impl Probe {
    pub(super) fn check(
        &mut self,
        health: &Health,
        now: Instant,
        idle: Duration,
        timeout: Duration,
    ) -> Verdict {
        if health.ended.load(Ordering::Relaxed) {
            return Verdict::Deaf("the pub/sub connection ended");
        }
        let now = health.ms(now);
        let heard = health.heard.load(Ordering::Relaxed);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match self.sent {
            Some(sent) if heard >= sent => {
                self.sent = None;
                Verdict::Fine
            }
            Some(sent) if now.saturating_sub(sent) >= ms(timeout) => {
                self.sent = None;
                Verdict::Deaf("a probe of the pub/sub link was not heard back")
            }
            Some(_) => Verdict::Fine,
            None if now.saturating_sub(heard) >= ms(idle) => {
                self.sent = Some(now);
                Verdict::Probe
            }
            None => Verdict::Fine,
        }
    }

    /// A new generation of connections: no probe outstanding.
    pub(super) fn reset(&mut self) {
        self.sent = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_link_is_probed_and_deaf_if_the_probe_is_not_heard() {
        let origin = Instant::now();
        let health = Health::new(origin);
        health.next_generation();
        let (idle, timeout) = (Duration::from_secs(5), Duration::from_secs(2));
        let at = |s: u64| origin + Duration::from_secs(s);
        let mut probe = Probe::default();
        assert_eq!(probe.check(&health, at(1), idle, timeout), Verdict::Fine);
        assert_eq!(probe.check(&health, at(5), idle, timeout), Verdict::Probe);
        assert_eq!(probe.check(&health, at(6), idle, timeout), Verdict::Fine);
        assert!(matches!(
            probe.check(&health, at(7), idle, timeout),
            Verdict::Deaf(_)
        ));
        // Heard back in time: fine, and probed again only after another quiet spell.
        let mut probe = Probe::default();
        assert_eq!(probe.check(&health, at(5), idle, timeout), Verdict::Probe);
        health.heard.store(5_500, Ordering::Relaxed);
        assert_eq!(probe.check(&health, at(6), idle, timeout), Verdict::Fine);
        assert_eq!(probe.check(&health, at(9), idle, timeout), Verdict::Fine);
        assert_eq!(probe.check(&health, at(11), idle, timeout), Verdict::Probe);
    }

    #[test]
    fn an_ended_stream_is_deaf_at_once_unless_an_older_generation_says_so() {
        let health = Health::new(Instant::now());
        let first = health.next_generation();
        let second = health.next_generation();
        let mut probe = Probe::default();
        health.ended(first);
        let now = Instant::now();
        let (idle, timeout) = (Duration::from_secs(5), Duration::from_secs(2));
        assert_eq!(probe.check(&health, now, idle, timeout), Verdict::Fine);
        health.ended(second);
        assert!(matches!(
            probe.check(&health, now, idle, timeout),
            Verdict::Deaf(_)
        ));
    }
}
