//! The `heart-beat` header and the intervals it negotiates ("Heart-beating").

use std::time::Duration;

/// One side's `heart-beat` header: what it can send and what it wants to receive, in
/// milliseconds, 0 meaning none. A missing header is `0,0` ([`HeartBeat::NONE`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeartBeat {
    /// The first number: the smallest interval at which this side can guarantee to send
    /// heart-beats (0: it cannot send any).
    pub can_send_ms: u64,
    /// The second number: the interval at which this side would like to receive them (0: it
    /// wants none).
    pub wants_ms: u64,
}

/// A `heart-beat` header that is not two integers separated by a comma.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BadHeartBeat;

impl std::fmt::Display for BadHeartBeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a heart-beat header must be two integers separated by a comma")
    }
}

impl std::error::Error for BadHeartBeat {}

/// The heart-beat intervals of a session, from one side's point of view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeartBeats {
    /// How often this side must send something (a frame, or an EOL when it has none).
    pub send: Option<Duration>,
    /// How often this side should receive something; after this long with nothing, plus a
    /// margin for timing errors, it may deem the connection dead.
    pub receive: Option<Duration>,
}

impl HeartBeat {
    /// `0,0`: no heart-beats either way, what a missing header means.
    pub const NONE: Self = Self {
        can_send_ms: 0,
        wants_ms: 0,
    };

    /// A side that can send every `can_send_ms` and wants to receive every `wants_ms`.
    pub fn new(can_send_ms: u64, wants_ms: u64) -> Self {
        Self {
            can_send_ms,
            wants_ms,
        }
    }

    /// Reads a `heart-beat` header's value, `None` when the frame had none. The spec says "two
    /// positive integers separated by a comma": ASCII digits only, no sign, no spaces.
    pub fn parse(value: Option<&str>) -> Result<Self, BadHeartBeat> {
        let Some(value) = value else {
            return Ok(Self::NONE);
        };
        let (x, y) = value.split_once(',').ok_or(BadHeartBeat)?;
        Ok(Self::new(parse_ms(x)?, parse_ms(y)?))
    }

    /// The header's value: `<can_send_ms>,<wants_ms>`.
    pub fn header_value(&self) -> String {
        format!("{},{}", self.can_send_ms, self.wants_ms)
    }

    /// The intervals for this side (`self`), given the other side's header (`theirs`): this
    /// side sends every `max(ours.can_send, theirs.wants)` unless either is 0, and receives
    /// every `max(theirs.can_send, ours.wants)` unless either is 0.
    ///
    /// ```
    /// use std::time::Duration;
    /// use roomcast_core::stomp::HeartBeat;
    ///
    /// let client = HeartBeat::parse(Some("1000,5000"))?; // from the CONNECT frame
    /// let server = HeartBeat::new(10_000, 10_000); // the server's CONNECTED header
    /// let beats = server.negotiate(client);
    /// assert_eq!(beats.send, Some(Duration::from_secs(10))); // max(sx 10000, cy 5000)
    /// assert_eq!(beats.receive, Some(Duration::from_secs(10))); // max(cx 1000, sy 10000)
    /// # Ok::<(), roomcast_core::stomp::BadHeartBeat>(())
    /// ```
    pub fn negotiate(self, theirs: HeartBeat) -> HeartBeats {
        HeartBeats {
            send: interval(self.can_send_ms, theirs.wants_ms),
            receive: interval(theirs.can_send_ms, self.wants_ms),
        }
    }
}

fn interval(can_send_ms: u64, wants_ms: u64) -> Option<Duration> {
    (can_send_ms != 0 && wants_ms != 0).then(|| Duration::from_millis(can_send_ms.max(wants_ms)))
}

fn parse_ms(digits: &str) -> Result<u64, BadHeartBeat> {
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(BadHeartBeat);
    }
    digits.parse().map_err(|_| BadHeartBeat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_integers() {
        let table = [
            (None, Ok(HeartBeat::NONE)), // missing: 0,0
            (Some("0,0"), Ok(HeartBeat::NONE)),
            (Some("1000,5000"), Ok(HeartBeat::new(1000, 5000))),
            (Some("007,10"), Ok(HeartBeat::new(7, 10))),
            (
                Some("18446744073709551615,0"),
                Ok(HeartBeat::new(u64::MAX, 0)),
            ),
            (Some("18446744073709551616,0"), Err(BadHeartBeat)), // past u64
            (Some(""), Err(BadHeartBeat)),
            (Some("1000"), Err(BadHeartBeat)),
            (Some("1000,"), Err(BadHeartBeat)),
            (Some(",1000"), Err(BadHeartBeat)),
            (Some("1,2,3"), Err(BadHeartBeat)),
            (Some("-1,0"), Err(BadHeartBeat)),
            (Some("+1,0"), Err(BadHeartBeat)),
            (Some("1, 2"), Err(BadHeartBeat)), // never trimmed
            (Some("1.5,2"), Err(BadHeartBeat)),
        ];
        for (value, expected) in table {
            assert_eq!(HeartBeat::parse(value), expected, "{value:?}");
        }
        assert_eq!(HeartBeat::new(1, 2).header_value(), "1,2");
    }

    #[test]
    fn negotiation_follows_the_spec() {
        let ms = |ms: u64| Some(Duration::from_millis(ms));
        // (cx, cy) from CONNECT, (sx, sy) the server's: the server's send and receive.
        let table = [
            ((0, 0), (10_000, 10_000), None, None),
            ((1000, 0), (10_000, 10_000), None, ms(10_000)), // cy 0: the client wants none
            ((0, 1000), (10_000, 10_000), ms(10_000), None), // cx 0: the client sends none
            ((1000, 5000), (10_000, 10_000), ms(10_000), ms(10_000)),
            ((20_000, 30_000), (10_000, 10_000), ms(30_000), ms(20_000)),
            ((20_000, 30_000), (0, 0), None, None),
            ((20_000, 30_000), (5000, 0), ms(30_000), None), // sy 0: the server wants none
            ((20_000, 30_000), (0, 5000), None, ms(20_000)), // sx 0: the server sends none
        ];
        for ((cx, cy), (sx, sy), send, receive) in table {
            let client = HeartBeat::new(cx, cy);
            let server = HeartBeat::new(sx, sy);
            let beats = server.negotiate(client);
            assert_eq!(
                (beats.send, beats.receive),
                (send, receive),
                "{client:?} {server:?}"
            );
            // The client's view is the mirror image.
            let mirror = client.negotiate(server);
            assert_eq!((mirror.send, mirror.receive), (receive, send));
        }
    }
}
