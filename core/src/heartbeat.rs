//! Heartbeats: when to ping, when to send an SSE keep-alive, and when a silent peer is dead.
//!
//! A [`Heartbeat`] is a timer table with no IO: feed it what happened (`on_inbound`,
//! `on_transmit`), ask when it next needs attention ([`poll_timeout`](Heartbeat::poll_timeout)),
//! and at that time ask what is due ([`handle_timeout`](Heartbeat::handle_timeout)).
//!
//! | Mode | Due | Expires |
//! |---|---|---|
//! | [`ping`](Heartbeat::ping) (WebSocket) | a ping every `interval`, counted from the last ping; up to 1/8 of it early with traffic | `timeout` after a ping with no inbound frame or pong since |
//! | [`keep_alive`](Heartbeat::keep_alive) (SSE) | a keep-alive after `interval` with nothing transmitted | never (the stream is one-way) |

use std::time::{Duration, Instant};

/// How often the server pings a WebSocket: 25 s.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);
/// How long after a ping the peer has to show a sign of life: 10 s.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an SSE stream may stay silent before a keep-alive comment: 15 s.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A ping may go this fraction of its interval early, with traffic ([`Heartbeat::ping_early`]).
pub const EARLY_PING_FRACTION: u32 = 8;

/// What [`Heartbeat::handle_timeout`] says is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Beat {
    /// Send a ping now (WebSocket).
    Ping,
    /// Send a keep-alive now (an SSE comment).
    KeepAlive,
    /// No sign of life within the timeout after a ping: the peer is gone. Reported once.
    Expired,
}

/// The heartbeat of one connection. See the [module docs](self) for the rules.
///
/// A zero `interval` disables the beat (nothing is ever due). Deadlines beyond what an
/// [`Instant`] can hold count as never. A `now` earlier than one seen before is harmless: nothing
/// becomes due and no deadline moves back.
///
/// ```
/// use std::time::{Duration, Instant};
/// use roomcast_core::heartbeat::{Beat, Heartbeat};
///
/// let start = Instant::now();
/// let secs = |s| start + Duration::from_secs(s);
/// let mut heartbeat = Heartbeat::ping(Duration::from_secs(25), Duration::from_secs(10), start);
/// assert_eq!(heartbeat.poll_timeout(), Some(secs(25)));
/// assert_eq!(heartbeat.handle_timeout(secs(25)), Some(Beat::Ping));
/// assert_eq!(heartbeat.poll_timeout(), Some(secs(35)), "the pong deadline");
/// assert_eq!(heartbeat.handle_timeout(secs(35)), Some(Beat::Expired));
/// assert_eq!(heartbeat.poll_timeout(), None);
/// ```
#[derive(Clone, Debug)]
pub struct Heartbeat {
    mode: Mode,
    interval: Duration,
    /// Ping mode: the last ping sent (or the start). Keep-alive mode: the last transmit.
    last: Instant,
    expired: bool,
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Ping {
        timeout: Duration,
        /// When the oldest ping still waiting for a sign of life was sent.
        unanswered: Option<Instant>,
        /// From when the next ping may go early, with traffic (`None`: never): worked out once
        /// per ping, as [`Heartbeat::ping_early`] is asked on every delivery.
        early_from: Option<Instant>,
    },
    KeepAlive,
}

impl Heartbeat {
    /// A WebSocket heartbeat: a ping every `interval`; `timeout` after a ping without any inbound
    /// frame or pong since, it expires. The first ping is due at `now + interval`.
    pub fn ping(interval: Duration, timeout: Duration, now: Instant) -> Self {
        let mut heartbeat = Self {
            mode: Mode::Ping {
                timeout,
                unanswered: None,
                early_from: None,
            },
            interval,
            last: now,
            expired: false,
        };
        heartbeat.pinged(now, false);
        heartbeat
    }

    /// An SSE heartbeat: a keep-alive whenever nothing was transmitted for `interval`. It never
    /// expires.
    pub fn keep_alive(interval: Duration, now: Instant) -> Self {
        Self {
            mode: Mode::KeepAlive,
            interval,
            last: now,
            expired: false,
        }
    }

    /// A sign of life from the peer: any inbound frame, or a pong. Answers every ping sent so far.
    pub fn on_inbound(&mut self, _now: Instant) {
        if let Mode::Ping { unanswered, .. } = &mut self.mode {
            *unanswered = None;
        }
    }

    /// Something was transmitted to the peer: an SSE keep-alive is not needed before
    /// `now + interval`. No effect in ping mode, where pings keep their own rhythm.
    pub fn on_transmit(&mut self, now: Instant) {
        if matches!(self.mode, Mode::KeepAlive) && now > self.last {
            self.last = now;
        }
    }

    /// Frames go out to the peer at `now` anyway: if the next ping is due within the last
    /// eighth of its interval, it is due now instead, counted as sent at `now`, so it goes in
    /// the same write. A connection that gets traffic then never needs a wake-up or a write for
    /// its pings. Returns whether a ping is due now; always false in keep-alive mode and once
    /// expired.
    pub fn ping_early(&mut self, now: Instant) -> bool {
        let early = match self.mode {
            Mode::Ping { early_from, .. } => early_from.is_some_and(|from| from <= now),
            Mode::KeepAlive => false,
        };
        if !early || self.expired {
            return false;
        }
        self.pinged(self.last.max(now), true);
        true
    }

    /// Ping mode: a ping went at `at` (`sent`), or the heartbeat started then.
    fn pinged(&mut self, at: Instant, sent: bool) {
        self.last = at;
        let early = self.interval - self.interval / EARLY_PING_FRACTION;
        if let Mode::Ping {
            unanswered,
            early_from,
            ..
        } = &mut self.mode
        {
            if sent {
                // A later ping does not forgive an earlier one: the oldest unanswered counts.
                unanswered.get_or_insert(at);
            }
            *early_from = if self.interval.is_zero() {
                None
            } else {
                at.checked_add(early)
            };
        }
    }

    /// True once [`Beat::Expired`] was reported.
    pub fn is_expired(&self) -> bool {
        self.expired
    }

    /// The next instant something is due, if any: a ping, a keep-alive or the expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.expired {
            return None;
        }
        let beat = self.next_beat();
        let expiry = self.expiry();
        match (beat, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What is due at `now`, if anything; call again until `None`. The expiry comes first and
    /// only once; a ping or keep-alive due is counted as sent at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Beat> {
        if self.expired {
            return None;
        }
        if self.expiry().is_some_and(|at| at <= now) {
            self.expired = true;
            return Some(Beat::Expired);
        }
        if self.next_beat().is_none_or(|at| at > now) {
            return None;
        }
        match self.mode {
            Mode::Ping { .. } => {
                self.pinged(now, true);
                Some(Beat::Ping)
            }
            Mode::KeepAlive => {
                self.last = now;
                Some(Beat::KeepAlive)
            }
        }
    }

    fn next_beat(&self) -> Option<Instant> {
        if self.interval.is_zero() {
            return None;
        }
        self.last.checked_add(self.interval)
    }

    fn expiry(&self) -> Option<Instant> {
        match self.mode {
            Mode::Ping {
                timeout,
                unanswered: Some(sent),
                ..
            } => sent.checked_add(timeout),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::start;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn websocket(t0: Instant) -> Heartbeat {
        Heartbeat::ping(DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, t0)
    }

    #[test]
    fn defaults_are_the_protocol_defaults() {
        assert_eq!(DEFAULT_PING_INTERVAL, Duration::from_millis(25_000));
        assert_eq!(DEFAULT_PING_TIMEOUT, Duration::from_millis(10_000));
        assert_eq!(DEFAULT_KEEP_ALIVE, Duration::from_millis(15_000));
    }

    #[test]
    fn pings_every_interval_from_the_last_ping() {
        let t0 = start();
        let mut hb = websocket(t0);
        assert_eq!(hb.handle_timeout(ms(t0, 24_999)), None);
        assert_eq!(hb.handle_timeout(ms(t0, 25_000)), Some(Beat::Ping));
        assert_eq!(
            hb.handle_timeout(ms(t0, 25_000)),
            None,
            "one ping per interval"
        );
        hb.on_inbound(ms(t0, 26_000));
        assert_eq!(hb.poll_timeout(), Some(ms(t0, 50_000)));
        // A late timer: the next ping is counted from when this one was really sent.
        assert_eq!(hb.handle_timeout(ms(t0, 53_000)), Some(Beat::Ping));
        assert_eq!(
            hb.poll_timeout(),
            Some(ms(t0, 63_000)),
            "the pong deadline first"
        );
        hb.on_inbound(ms(t0, 54_000));
        assert_eq!(hb.poll_timeout(), Some(ms(t0, 78_000)));
    }

    #[test]
    fn a_ping_due_within_the_last_eighth_goes_early_with_traffic() {
        let t0 = start();
        let mut hb = websocket(t0);
        // 25 s / 8 = 3,125 ms: not before that much is left.
        assert!(!hb.ping_early(ms(t0, 21_874)));
        assert_eq!(hb.poll_timeout(), Some(ms(t0, 25_000)), "nothing moved");
        assert!(hb.ping_early(ms(t0, 21_875)));
        assert_eq!(
            hb.poll_timeout(),
            Some(ms(t0, 31_875)),
            "sent at 21,875: its pong deadline"
        );
        assert!(
            !hb.ping_early(ms(t0, 21_876)),
            "one ping, not one per frame"
        );
        assert_eq!(
            hb.handle_timeout(ms(t0, 25_000)),
            None,
            "the timer finds it sent"
        );
        hb.on_inbound(ms(t0, 22_000));
        assert_eq!(
            hb.poll_timeout(),
            Some(ms(t0, 46_875)),
            "counted from the early one"
        );
        // An overdue ping (its timer late) goes with the traffic too.
        assert!(hb.ping_early(ms(t0, 50_000)));
        // Unanswered, it still expires `timeout` after it went.
        assert_eq!(hb.handle_timeout(ms(t0, 59_999)), None);
        assert_eq!(hb.handle_timeout(ms(t0, 60_000)), Some(Beat::Expired));
        assert!(!hb.ping_early(ms(t0, 74_000)), "nothing after the expiry");
        // Keep-alives are never early: traffic already puts them off.
        let mut sse = Heartbeat::keep_alive(DEFAULT_KEEP_ALIVE, t0);
        assert!(!sse.ping_early(ms(t0, 14_999)));
        assert!(!Heartbeat::ping(Duration::ZERO, DEFAULT_PING_TIMEOUT, t0).ping_early(t0));
    }

    #[test]
    fn expires_exactly_at_ping_plus_timeout_not_before() {
        let t0 = start();
        let mut hb = websocket(t0);
        assert_eq!(hb.handle_timeout(ms(t0, 25_000)), Some(Beat::Ping));
        assert_eq!(hb.poll_timeout(), Some(ms(t0, 35_000)));
        assert_eq!(hb.handle_timeout(ms(t0, 34_999)), None);
        assert!(!hb.is_expired());
        assert_eq!(hb.handle_timeout(ms(t0, 35_000)), Some(Beat::Expired));
        assert!(hb.is_expired());
    }

    #[test]
    fn expires_at_most_once() {
        let t0 = start();
        let mut hb = websocket(t0);
        hb.handle_timeout(ms(t0, 25_000));
        assert_eq!(hb.handle_timeout(ms(t0, 40_000)), Some(Beat::Expired));
        for later in [40_000, 60_000, 1_000_000] {
            assert_eq!(hb.handle_timeout(ms(t0, later)), None);
        }
        hb.on_inbound(ms(t0, 41_000));
        assert_eq!(hb.poll_timeout(), None, "nothing is due after the expiry");
        assert_eq!(hb.handle_timeout(ms(t0, 2_000_000)), None);
    }

    #[test]
    fn an_inbound_frame_between_pings_keeps_the_session_alive() {
        let t0 = start();
        let mut hb = websocket(t0);
        for round in 1..=10u64 {
            let ping = ms(t0, 25_000 * round);
            assert_eq!(hb.poll_timeout(), Some(ping));
            assert_eq!(hb.handle_timeout(ping), Some(Beat::Ping));
            hb.on_inbound(ping + Duration::from_millis(9_999));
        }
        assert!(!hb.is_expired());
    }

    #[test]
    fn an_inbound_frame_before_a_ping_does_not_answer_it() {
        let t0 = start();
        let mut hb = websocket(t0);
        hb.on_inbound(ms(t0, 24_000));
        assert_eq!(hb.handle_timeout(ms(t0, 25_000)), Some(Beat::Ping));
        assert_eq!(hb.handle_timeout(ms(t0, 35_000)), Some(Beat::Expired));
    }

    #[test]
    fn a_later_ping_does_not_forgive_an_earlier_one() {
        let t0 = start();
        let secs = Duration::from_secs;
        let mut hb = Heartbeat::ping(secs(4), secs(10), t0);
        assert_eq!(hb.handle_timeout(t0 + secs(4)), Some(Beat::Ping));
        assert_eq!(hb.handle_timeout(t0 + secs(8)), Some(Beat::Ping));
        assert_eq!(hb.handle_timeout(t0 + secs(12)), Some(Beat::Ping));
        assert_eq!(
            hb.poll_timeout(),
            Some(t0 + secs(14)),
            "10 s after the first ping"
        );
        assert_eq!(hb.handle_timeout(t0 + secs(14)), Some(Beat::Expired));
    }

    #[test]
    fn transmitting_does_not_move_pings() {
        let t0 = start();
        let mut hb = websocket(t0);
        hb.on_transmit(ms(t0, 20_000));
        assert_eq!(hb.poll_timeout(), Some(ms(t0, 25_000)));
    }

    #[test]
    fn keep_alive_only_when_idle() {
        let t0 = start();
        let mut hb = Heartbeat::keep_alive(DEFAULT_KEEP_ALIVE, t0);
        assert_eq!(hb.poll_timeout(), Some(ms(t0, 15_000)));
        hb.on_transmit(ms(t0, 10_000));
        assert_eq!(
            hb.handle_timeout(ms(t0, 15_000)),
            None,
            "sent something 5 s ago"
        );
        assert_eq!(hb.poll_timeout(), Some(ms(t0, 25_000)));
        assert_eq!(hb.handle_timeout(ms(t0, 25_000)), Some(Beat::KeepAlive));
        assert_eq!(hb.handle_timeout(ms(t0, 25_000)), None);
        assert_eq!(hb.poll_timeout(), Some(ms(t0, 40_000)));
    }

    #[test]
    fn keep_alive_never_expires_and_ignores_inbound() {
        let t0 = start();
        let mut hb = Heartbeat::keep_alive(DEFAULT_KEEP_ALIVE, t0);
        for round in 1..=100u64 {
            assert_eq!(
                hb.handle_timeout(ms(t0, 15_000 * round)),
                Some(Beat::KeepAlive)
            );
            hb.on_inbound(ms(t0, 15_000 * round + 1));
        }
        assert!(!hb.is_expired());
    }

    #[test]
    fn zero_interval_disables_and_huge_durations_never_fire() {
        let t0 = start();
        let mut off = Heartbeat::ping(Duration::ZERO, DEFAULT_PING_TIMEOUT, t0);
        assert_eq!(off.poll_timeout(), None);
        assert_eq!(off.handle_timeout(ms(t0, 1_000_000)), None);
        let mut huge = Heartbeat::ping(DEFAULT_PING_INTERVAL, Duration::MAX, t0);
        assert_eq!(huge.handle_timeout(ms(t0, 25_000)), Some(Beat::Ping));
        assert_eq!(
            huge.poll_timeout(),
            Some(ms(t0, 50_000)),
            "no pong deadline"
        );
        let never = Heartbeat::keep_alive(Duration::MAX, t0);
        assert_eq!(never.poll_timeout(), None);
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let t0 = start();
        let later = ms(t0, 30_000);
        let mut hb = Heartbeat::keep_alive(DEFAULT_KEEP_ALIVE, later);
        hb.on_transmit(t0);
        assert_eq!(
            hb.poll_timeout(),
            Some(ms(t0, 45_000)),
            "the deadline did not move back"
        );
        assert_eq!(hb.handle_timeout(t0), None);
        let mut ws = websocket(later);
        assert_eq!(ws.handle_timeout(t0), None);
        ws.on_inbound(t0);
        assert_eq!(ws.poll_timeout(), Some(ms(t0, 55_000)));
    }
}
