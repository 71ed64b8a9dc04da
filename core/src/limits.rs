//! Limits: the knobs and defaults of every session limit ([`SessionConfig`]), and a token bucket
//! in integer arithmetic, so rate limits decide the same way on every platform and in replays.
//!
//! A session uses two buckets: one for the inbound message rate (default 100 messages/s, burst
//! 200), and one that the rejected messages draw from, which tells sustained abuse from a burst.

use std::time::{Duration, Instant};

use crate::envelope::DEFAULT_MAX_FRAME;
use crate::heartbeat::{DEFAULT_KEEP_ALIVE, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT};

/// The outbound queue budget of a session, in bytes: 1 MiB.
pub const DEFAULT_QUEUE_BYTES: usize = 1024 * 1024;
/// The outbound queue budget of a session, in frames: 4096.
pub const DEFAULT_QUEUE_FRAMES: usize = 4096;
/// Inbound messages a session may send per second: 100.
pub const DEFAULT_RATE_PER_SEC: u32 = 100;
/// Inbound messages a session may send at once, above the rate: 200.
pub const DEFAULT_BURST: u32 = 200;
/// Rejected messages per second a session may keep sending without being closed: 10.
pub const DEFAULT_ABUSE_RATE_PER_SEC: u32 = 10;
/// Rejected messages a session may send at once before it is closed for abuse: 100.
pub const DEFAULT_ABUSE_BURST: u32 = 100;

/// How long a connection may take from `Session::new` to `Session::accept`: 10 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing WebSocket session waits for the peer's close frame: 5 s.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long frames keep flowing after `Session::shutdown` before the close: 5 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The limits and timings of a [`Session`], also known as `session::SessionConfig`. Every
/// field is a knob; [`Default`] gives the protocol's defaults (`docs/protocol.md`, section 11).
/// Change fields on a default value: `let mut config = SessionConfig::default();`, then
/// `config.burst = 50;`.
///
/// [`Session`]: crate::session::Session
// `repr(C)`: the queue budget, which every delivery checks, stays in the session's first lines.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct SessionConfig {
    /// Largest inbound frame, in bytes (64 KiB); announced in `welcome`. A larger one closes the
    /// session with 1009. It replaces the limit of the session's `Codec`.
    pub max_frame: usize,
    /// Outbound queue budget, in bytes of frames (1 MiB); over it, the session closes (4000).
    pub queue_bytes: usize,
    /// Outbound queue budget, in frames (4096); over it, the session closes (4000).
    pub queue_frames: usize,
    /// Inbound messages per second (100); 0 is unlimited. Over it: `rate_limited`.
    pub rate_per_sec: u32,
    /// Inbound messages at once above the rate (200).
    pub burst: u32,
    /// Rate at which rejected messages are forgiven, per second (10); 0 never closes.
    pub abuse_rate_per_sec: u32,
    /// Rejected messages tolerated at once (100); one more closes the session with 1008.
    pub abuse_burst: u32,
    /// WebSocket ping interval (25 s); zero disables pings.
    pub ping_interval: Duration,
    /// Time after a ping for any sign of life (10 s); else the session closes with 4001.
    pub ping_timeout: Duration,
    /// SSE: a keep-alive after this long with nothing transmitted (15 s); zero disables.
    pub keep_alive: Duration,
    /// Time from `Session::new` to `Session::accept` (10 s); else the session closes with 4008.
    pub handshake_timeout: Duration,
    /// Time a closing WebSocket session waits for the peer's close before it is closed (5 s).
    pub close_timeout: Duration,
    /// Time frames keep flowing after `Session::shutdown` before the close, 1001 (5 s).
    pub shutdown_grace: Duration,
    /// How long before its credentials expire a session is told so (`expiring`), at most; a
    /// session whose credentials last less than twice this is told halfway (60 s).
    pub expiry_warning: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            queue_frames: DEFAULT_QUEUE_FRAMES,
            rate_per_sec: DEFAULT_RATE_PER_SEC,
            burst: DEFAULT_BURST,
            abuse_rate_per_sec: DEFAULT_ABUSE_RATE_PER_SEC,
            abuse_burst: DEFAULT_ABUSE_BURST,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            keep_alive: DEFAULT_KEEP_ALIVE,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            expiry_warning: Duration::from_secs(60),
        }
    }
}

/// Nano-tokens per token: the bucket counts in billionths of a token, so a rate of `r` tokens
/// per second adds exactly `r` nano-tokens per nanosecond, with no division and no rounding.
const NANOS_PER_TOKEN: u64 = 1_000_000_000;

/// A token bucket: holds at most `burst` tokens, refills at `rate_per_sec` tokens per second, and
/// each accepted event takes one token.
///
/// It starts full. Time is an argument: a `now` earlier than one seen before counts as no time
/// passing, and a `now` far in the future fills the bucket without overflow. A rate of 0 means
/// unlimited (every [`try_take`](Self::try_take) succeeds); a burst of 0 with a non-zero rate
/// never holds a token, so it refuses everything.
///
/// ```
/// use std::time::{Duration, Instant};
/// use roomcast_core::limits::TokenBucket;
///
/// let start = Instant::now();
/// let mut bucket = TokenBucket::new(4, 2, start); // 4 per second, burst of 2
/// assert!(bucket.try_take(start));
/// assert!(bucket.try_take(start));
/// assert!(!bucket.try_take(start), "the burst is spent");
/// let quarter = start + Duration::from_millis(250); // exactly one token later
/// assert!(!bucket.try_take(quarter - Duration::from_nanos(1)));
/// assert!(bucket.try_take(quarter));
/// assert!(!bucket.try_take(quarter));
/// ```
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate_per_sec: u32,
    burst: u32,
    /// Tokens held, in nano-tokens; never over `burst * NANOS_PER_TOKEN` (fits: < 2^63).
    nanos: u64,
    /// The latest time seen: refills are measured from here.
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `rate_per_sec`; a rate of 0 is unlimited.
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        Self {
            rate_per_sec,
            burst,
            nanos: capacity(burst),
            last: now,
        }
    }

    /// Takes one token if the bucket holds one after refilling up to `now`; false if it is empty.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.is_unlimited() {
            return true;
        }
        self.refill(now);
        match self.nanos.checked_sub(NANOS_PER_TOKEN) {
            Some(rest) => {
                self.nanos = rest;
                true
            }
            None => false,
        }
    }

    /// The whole tokens available at `now`, without taking any (`u32::MAX` when unlimited).
    pub fn available(&self, now: Instant) -> u32 {
        if self.is_unlimited() {
            return u32::MAX;
        }
        let whole = self.refilled(now) / NANOS_PER_TOKEN;
        u32::try_from(whole).unwrap_or(u32::MAX)
    }

    /// The refill rate, in tokens per second; 0 is unlimited.
    pub fn rate_per_sec(&self) -> u32 {
        self.rate_per_sec
    }

    /// The most tokens the bucket holds.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// True when the rate is 0: nothing is ever refused.
    pub fn is_unlimited(&self) -> bool {
        self.rate_per_sec == 0
    }

    fn refill(&mut self, now: Instant) {
        self.nanos = self.refilled(now);
        if now > self.last {
            self.last = now;
        }
    }

    /// The nano-tokens held at `now`: `elapsed_ns * rate`, saturating, capped at the burst.
    fn refilled(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        let added = elapsed.saturating_mul(u128::from(self.rate_per_sec));
        let total = added.saturating_add(u128::from(self.nanos));
        let cap = capacity(self.burst);
        u64::try_from(total).map_or(cap, |total| total.min(cap))
    }
}

fn capacity(burst: u32) -> u64 {
    u64::from(burst) * NANOS_PER_TOKEN
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::start;

    fn take_all(bucket: &mut TokenBucket, now: Instant) -> u32 {
        let mut taken = 0;
        while bucket.try_take(now) {
            taken += 1;
            assert!(taken <= 1_000_000, "the bucket never runs dry");
        }
        taken
    }

    #[test]
    fn starts_full_then_refuses_past_the_burst() {
        let t0 = start();
        let mut bucket = TokenBucket::new(100, 200, t0);
        assert_eq!(bucket.available(t0), 200);
        assert_eq!(take_all(&mut bucket, t0), 200);
        assert!(!bucket.try_take(t0));
        assert_eq!(bucket.available(t0), 0);
    }

    #[test]
    fn refills_at_exactly_the_rate() {
        let t0 = start();
        let mut bucket = TokenBucket::new(3, 10, t0);
        take_all(&mut bucket, t0);
        let third = Duration::from_secs(1) / 3; // 333_333_333 ns: just short of one token
        assert!(
            !bucket.try_take(t0 + third),
            "1/3 s holds 0.999999999 tokens"
        );
        assert!(bucket.try_take(t0 + third + Duration::from_nanos(1)));
        assert!(!bucket.try_take(t0 + third + Duration::from_nanos(1)));
        // Over a long run the count is exact: 3 per second, no drift from rounding.
        let mut taken = 0;
        for ms in 1..=10_000u64 {
            taken += u64::from(bucket.try_take(t0 + Duration::from_millis(ms)));
        }
        assert_eq!(
            taken,
            30 - 1,
            "30 tokens in 10 s, one of them taken at 1/3 s"
        );
    }

    #[test]
    fn never_holds_more_than_the_burst() {
        let t0 = start();
        let mut bucket = TokenBucket::new(100, 5, t0);
        take_all(&mut bucket, t0);
        assert_eq!(bucket.available(t0 + Duration::from_secs(3600)), 5);
        assert_eq!(take_all(&mut bucket, t0 + Duration::from_secs(3600)), 5);
    }

    #[test]
    fn no_overflow_far_in_the_future() {
        let t0 = start();
        let mut bucket = TokenBucket::new(u32::MAX, u32::MAX, t0);
        let far = t0 + Duration::from_secs(100 * 365 * 24 * 3600);
        assert!(bucket.try_take(far));
        assert_eq!(bucket.available(far), u32::MAX - 1);
        let mut slow = TokenBucket::new(1, 1, t0);
        assert!(slow.try_take(t0));
        assert!(slow.try_take(far));
        assert!(!slow.try_take(far));
    }

    #[test]
    fn time_going_backwards_counts_as_no_time() {
        let t0 = start();
        let later = t0 + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(1, 2, t0);
        take_all(&mut bucket, later);
        assert!(
            !bucket.try_take(t0),
            "earlier than the last reading: no refill, no panic"
        );
        assert_eq!(bucket.available(t0), 0);
        // Refills are still measured from the latest reading, not the earlier one.
        assert!(!bucket.try_take(later + Duration::from_millis(999)));
        assert!(bucket.try_take(later + Duration::from_secs(1)));
    }

    #[test]
    fn rate_zero_is_unlimited_and_burst_zero_refuses() {
        let t0 = start();
        let mut unlimited = TokenBucket::new(0, 0, t0);
        assert!((0..10_000).all(|_| unlimited.try_take(t0)));
        assert!(unlimited.is_unlimited());
        let mut closed = TokenBucket::new(10, 0, t0);
        assert!(!closed.try_take(t0 + Duration::from_secs(60)));
    }
}
