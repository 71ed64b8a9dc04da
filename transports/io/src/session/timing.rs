//! The session timer's policies, as pure functions: when a timer for a deadline wakes (a grid
//! every session shares), and whether a timer already set is kept or reset.

use std::time::{Duration, Instant};

/// What a session's timer is set for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Armed {
    /// The deadline it was set for (it wakes at or a little after it, see [`wake_at`]).
    pub(crate) deadline: Instant,
    /// The latest deadline it is kept for: an early wake-up costs less than a reset.
    pub(crate) kept_until: Instant,
}

/// What to do with the timer for the next deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// It is set for this deadline or a little earlier: leave it.
    Keep,
    /// Reset it to wake at `wake`.
    Set {
        /// When it wakes.
        wake: Instant,
        /// What it is then set for.
        armed: Armed,
    },
    /// No deadline: stop polling it.
    Idle,
}

/// Keep or reset the timer (`armed`, `None` if not set) for the session's next `deadline`.
///
/// A timer set for this deadline or a little earlier stays: an early wake-up finds nothing due
/// and sets the later deadline then. An SSE keep-alive's deadline moves on with every write, and
/// a reset per write is a timer-wheel operation per drain; kept for half the time it had when
/// set, its timer is reset once every half interval. A deadline that jumps further is a reset: a
/// pong moves the deadline from the pong's (10 s away when set) to the next ping's, 15 s later,
/// and the old timer would wake the session for nothing. Two comparisons: this runs on every
/// input.
pub(crate) fn keep_or_reset(
    armed: Option<Armed>,
    deadline: Option<Instant>,
    now: Instant,
    grid: Grid,
) -> Plan {
    match (deadline, armed) {
        (Some(deadline), Some(armed))
            if armed.deadline <= deadline && deadline <= armed.kept_until =>
        {
            Plan::Keep
        }
        (Some(deadline), _) => {
            let half = deadline.saturating_duration_since(now) / 2;
            Plan::Set {
                wake: grid.wake_at(deadline, now),
                armed: Armed {
                    deadline,
                    kept_until: deadline.checked_add(half).unwrap_or(deadline),
                },
            }
        }
        (None, _) => Plan::Idle,
    }
}

/// The timer for a write that has to wait: it fires at `deadline` exactly, and is kept only for
/// that deadline.
pub(crate) fn exactly(armed: Option<Armed>, deadline: Instant) -> Plan {
    let exact = Armed {
        deadline,
        kept_until: deadline,
    };
    if armed == Some(exact) {
        Plan::Keep
    } else {
        Plan::Set {
            wake: deadline,
            armed: exact,
        }
    }
}

/// The grid timers wake on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    /// Where the grid starts: the same for every session of a process.
    pub(crate) anchor: Instant,
    /// How late a timer may wake, at most (zero: exactly on time).
    pub(crate) slack: Duration,
}

impl Grid {
    /// When a timer for `deadline` wakes: put off to the next point of a grid every session
    /// shares, whose spacing is the largest power of two milliseconds within the slack and
    /// within 1/16 of the time left, so it is never early and at most 6.25 % late. Heartbeats
    /// are due at a phase of their own in each session: 10,000 WebSockets pinged every 25 s
    /// woke a server 400 times a second, each time to send one ping and again to read one pong
    /// (docs/performance.md, "Heartbeats on a shared grid"). On the grid they wake it a few
    /// times a second. Grids of different spacing nest, so sessions with different time left
    /// still share points.
    pub(crate) fn wake_at(self, deadline: Instant, now: Instant) -> Instant {
        let room = self.slack.min(deadline.saturating_duration_since(now) / 16);
        let room_ms = u64::try_from(room.as_millis()).unwrap_or(u64::MAX);
        let Some(since) = deadline
            .checked_duration_since(self.anchor)
            .filter(|_| room_ms > 0)
        else {
            return deadline;
        };
        let spacing = u128::from(1_000_000u64 << room_ms.ilog2().min(20));
        let points = since.as_nanos().div_ceil(spacing);
        u64::try_from(points * spacing)
            .map(|nanos| self.anchor + Duration::from_nanos(nanos))
            .unwrap_or(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLACK: Duration = Duration::from_millis(250);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn timers_wake_on_a_shared_grid_never_early_and_within_the_slack() {
        let start = Instant::now();
        let grid = Grid {
            anchor: start,
            slack: SLACK,
        };
        // Sessions a few milliseconds apart, each due 25 s from its own start.
        let wakes: Vec<Instant> = (0..200u64)
            .map(|i| {
                let now = start + ms(i * 3);
                let deadline = now + Duration::from_secs(25);
                let wake = grid.wake_at(deadline, now);
                assert!(wake >= deadline, "never early");
                assert!(wake - deadline < ms(128), "within the grid");
                wake
            })
            .collect();
        let mut points = wakes.clone();
        points.dedup();
        assert!(
            points.len() <= 6,
            "600 ms of deadlines fall on {} points",
            points.len()
        );
    }

    #[test]
    fn the_grid_table() {
        let anchor = Instant::now();
        let at = |n| anchor + ms(n);
        // (now, deadline, slack) -> wake, all in ms from the anchor.
        let table: [(u64, u64, u64, u64); 8] = [
            // 25 s away, 250 ms slack: a 128 ms grid.
            (0, 25_001, 250, 25_088),
            // Exactly on a point stays.
            (0, 25_088, 250, 25_088),
            // 40 ms away: 1/16 is 2.5 ms, a 2 ms grid.
            (0, 41, 250, 42),
            // Zero slack: exact.
            (0, 12_345, 0, 12_345),
            // Passed already: not put off.
            (1_000, 0, 250, 0),
            // Under 16 ms away: less than a millisecond of room, exact.
            (100, 115, 250, 115),
            // 1 s away: 62 ms of room, a 32 ms grid.
            (0, 1_001, 250, 1_024),
            // A slack of 3 ms: a 2 ms grid.
            (0, 10_001, 3, 10_002),
        ];
        for (now, deadline, slack, wake) in table {
            let grid = Grid {
                anchor,
                slack: ms(slack),
            };
            assert_eq!(
                grid.wake_at(at(deadline), at(now)),
                at(wake),
                "now {now}, deadline {deadline}, slack {slack}"
            );
        }
        // A far deadline with a huge slack stays within 1/16 and never overflows.
        let grid = Grid {
            anchor,
            slack: Duration::MAX,
        };
        let far = anchor + Duration::from_secs(3600);
        assert!(grid.wake_at(far, anchor) - far <= Duration::from_secs(3600) / 16);
    }

    #[test]
    fn the_keep_or_reset_table() {
        let t0 = Instant::now();
        let at = |n| t0 + ms(n);
        let grid = Grid {
            anchor: t0,
            slack: Duration::ZERO,
        };
        let armed = |deadline, kept_until| {
            Some(Armed {
                deadline: at(deadline),
                kept_until: at(kept_until),
            })
        };
        let set = |deadline, kept_until| Plan::Set {
            wake: at(deadline),
            armed: Armed {
                deadline: at(deadline),
                kept_until: at(kept_until),
            },
        };
        // (armed, deadline, now) -> plan, times in ms.
        let table = [
            // Nothing set: the first ping, 25 s away, kept until 37.5 s.
            (None, Some(25_000), 0, set(25_000, 37_500)),
            // A ping rode with a delivery at 22 s: the deadline is its pong's, 32 s, within
            // 37.5 s: kept.
            (armed(25_000, 37_500), Some(32_000), 22_000, Plan::Keep),
            // The pong: the next ping at 47 s, past 37.5 s: reset.
            (
                armed(25_000, 37_500),
                Some(47_000),
                22_100,
                set(47_000, 59_450),
            ),
            // An earlier deadline: reset, or the timer would be late.
            (
                armed(25_000, 37_500),
                Some(24_000),
                1_000,
                set(24_000, 35_500),
            ),
            // The same deadline: kept.
            (armed(25_000, 37_500), Some(25_000), 1_000, Plan::Keep),
            // At the edge of what it is kept for: kept.
            (armed(25_000, 37_500), Some(37_500), 1_000, Plan::Keep),
            // No deadline (the session closed): idle.
            (armed(25_000, 37_500), None, 1_000, Plan::Idle),
            (None, None, 0, Plan::Idle),
        ];
        for (n, (armed, deadline, now, plan)) in table.into_iter().enumerate() {
            assert_eq!(
                keep_or_reset(armed, deadline.map(at), at(now), grid),
                plan,
                "row {n}"
            );
        }
    }

    #[test]
    fn a_write_deadline_is_kept_only_for_itself() {
        let t0 = Instant::now();
        let exact = Armed {
            deadline: t0,
            kept_until: t0,
        };
        assert_eq!(exactly(Some(exact), t0), Plan::Keep);
        let later = t0 + ms(1);
        assert!(matches!(exactly(Some(exact), later), Plan::Set { wake, .. } if wake == later));
        let kept = Armed {
            deadline: t0,
            kept_until: later,
        };
        assert!(matches!(exactly(Some(kept), t0), Plan::Set { wake, .. } if wake == t0));
        assert!(matches!(exactly(None, t0), Plan::Set { .. }));
    }
}
