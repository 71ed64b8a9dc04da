//! Admission of new sessions: a token bucket on the sessions a node opens per second, so that
//! a restarted node with 10,000 clients coming back stays responsive. A session past the
//! bucket is refused with 429 and a `Retry-After` that spreads the refused over the seconds
//! ahead: the k-th refused of a storm is told to come back after k / rate seconds (in whole
//! seconds, at least 1), so each second brings about as many back as the bucket admits.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::refusal::Refusal;

/// New sessions per second and the burst a node admits at once; 0 per second admits all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewSessions {
    /// Sessions per second, over time: 5,000. 0: no limit.
    pub per_second: u32,
    /// Sessions at once, from a bucket that was full: 5,000.
    pub burst: u32,
}

impl Default for NewSessions {
    fn default() -> Self {
        Self {
            per_second: 5000,
            burst: 5000,
        }
    }
}

/// In a request's extensions: its session took its token already (a STOMP session whose
/// credential comes in `CONNECT`, admitted anonymously first), so admitting it takes none.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenTaken;

/// The bucket, shared by a service's endpoints.
#[derive(Debug)]
pub(crate) struct Admission {
    limit: NewSessions,
    state: Mutex<Bucket>,
    refused: AtomicU64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    /// Sessions refused and told to come back, not yet due: they take the tokens ahead.
    owed: f64,
    at: Option<Instant>,
}

impl Admission {
    pub(crate) fn new(limit: NewSessions) -> Self {
        Self {
            limit,
            state: Mutex::new(Bucket {
                tokens: f64::from(limit.burst.max(1)),
                owed: 0.0,
                at: None,
            }),
            refused: AtomicU64::new(0),
        }
    }

    /// Takes a token for a new session at `now`, or refuses it with 429, `Retry-After` and
    /// the code `rate_limited`.
    pub(crate) fn admit(&self, now: Instant) -> Result<(), Refusal> {
        let rate = f64::from(self.limit.per_second);
        if rate == 0.0 {
            return Ok(());
        }
        // Held for a few arithmetic steps, never across an await.
        let mut bucket = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = bucket
            .at
            .map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
        bucket.at = Some(bucket.at.map_or(now, |at| at.max(now)));
        let burst = f64::from(self.limit.burst.max(1));
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.owed = (bucket.owed - elapsed * rate).max(0.0);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        bucket.owed += 1.0;
        let wait = Duration::from_secs_f64(bucket.owed / rate);
        drop(bucket);
        self.refused.fetch_add(1, Ordering::Relaxed);
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        Err(Refusal::new(
            429,
            format!(
                "too many new sessions (at most {} a second): come back after Retry-After",
                self.limit.per_second
            ),
        )
        .with_code("rate_limited")
        .retry_after(ms))
    }

    /// Gives back the token of a session that did not open after all (its credential was
    /// refused, or its address's limit reached): a failed handshake is no new session.
    pub(crate) fn refund(&self) {
        if self.limit.per_second == 0 {
            return;
        }
        let mut bucket = self.state.lock().unwrap_or_else(|e| e.into_inner());
        bucket.tokens = (bucket.tokens + 1.0).min(f64::from(self.limit.burst.max(1)));
    }

    /// Sessions refused so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_s(refusal: &Refusal) -> u64 {
        refusal
            .retry_after_ms
            .expect("Retry-After")
            .div_ceil(1000)
            .max(1)
    }

    #[test]
    fn a_storm_past_the_burst_is_told_to_come_back_in_batches_of_the_rate() {
        let admission = Admission::new(NewSessions {
            per_second: 100,
            burst: 100,
        });
        let now = Instant::now();
        for _ in 0..100 {
            assert!(admission.admit(now).is_ok(), "within the burst");
        }
        let told: Vec<u64> = (0..250)
            .map(|_| retry_s(&admission.admit(now).expect_err("past the burst")))
            .collect();
        assert_eq!(admission.refused(), 250);
        // 100 a second: the first 100 after 1 s, the next 100 after 2 s, the rest after 3 s.
        let count = |s: u64| told.iter().filter(|&&t| t == s).count();
        assert_eq!((count(1), count(2), count(3)), (100, 100, 50), "{told:?}");
        // A second later the bucket has 100 tokens again, for the first batch.
        let later = now + Duration::from_secs(1);
        for _ in 0..100 {
            assert!(admission.admit(later).is_ok(), "the first batch is back");
        }
        assert!(admission.admit(later).is_err());
    }

    #[test]
    fn a_refunded_token_admits_the_next_session() {
        let admission = Admission::new(NewSessions {
            per_second: 1,
            burst: 1,
        });
        let now = Instant::now();
        admission.admit(now).expect("the one token");
        admission.refund();
        admission.admit(now).expect("given back");
        assert!(admission.admit(now).is_err());
    }

    #[test]
    fn refusals_answer_429_rate_limited_with_retry_after() {
        let admission = Admission::new(NewSessions {
            per_second: 1,
            burst: 1,
        });
        let now = Instant::now();
        admission.admit(now).expect("the one token");
        let refusal = admission.admit(now).expect_err("refused");
        let response = refusal.response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(refusal.code(), "rate_limited");
        let unlimited = Admission::new(NewSessions {
            per_second: 0,
            burst: 0,
        });
        for _ in 0..10_000 {
            assert!(unlimited.admit(now).is_ok(), "0 a second: no limit");
        }
    }
}
