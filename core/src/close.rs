//! Why a session ends: close codes (RFC 6455 section 7.4, and roomcast's 4000 range) and reasons.

use std::fmt;

/// A close code and a human-readable reason, as sent in a WebSocket close frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// The code.
    pub code: CloseCode,
    /// Why, for people; at most 123 bytes so it fits a close frame.
    pub reason: String,
}

/// The close codes roomcast uses (see `docs/protocol.md`, "Close codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: normal close.
    Normal,
    /// 1001: the server is going away (shutdown), after a `shutdown` message.
    GoingAway,
    /// 1008: policy violation, such as sustained abuse of the rate limit.
    Policy,
    /// 1009: a frame larger than the session accepts.
    TooBig,
    /// 1011: the server failed.
    Internal,
    /// 4000: slow consumer, the outbound queue overflowed: reconnect and resume from the cursor.
    SlowConsumer,
    /// 4001: no sign of life within the heartbeat timeout: reconnect and resume.
    HeartbeatTimeout,
    /// 4003: credentials missing, invalid or expired.
    Unauthorized,
    /// 4008: the connection did not complete its handshake in time.
    HandshakeTimeout,
    /// Any other code, as a peer sent it (1002, 1006, 3xxx, ...), so it can be echoed as is.
    Other(u16),
}

impl CloseCode {
    /// The number on the wire.
    pub fn as_u16(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::GoingAway => 1001,
            Self::Policy => 1008,
            Self::TooBig => 1009,
            Self::Internal => 1011,
            Self::SlowConsumer => 4000,
            Self::HeartbeatTimeout => 4001,
            Self::Unauthorized => 4003,
            Self::HandshakeTimeout => 4008,
            Self::Other(code) => code,
        }
    }

    /// The code for a number on the wire.
    pub fn from_u16(code: u16) -> Self {
        match code {
            1000 => Self::Normal,
            1001 => Self::GoingAway,
            1008 => Self::Policy,
            1009 => Self::TooBig,
            1011 => Self::Internal,
            4000 => Self::SlowConsumer,
            4001 => Self::HeartbeatTimeout,
            4003 => Self::Unauthorized,
            4008 => Self::HandshakeTimeout,
            other => Self::Other(other),
        }
    }

    /// True when the client should reconnect and resume from its cursor, promptly.
    pub fn resumable(self) -> bool {
        matches!(
            self,
            Self::GoingAway | Self::SlowConsumer | Self::HeartbeatTimeout
        )
    }
}

impl Close {
    /// A close with this code and reason; the reason is cut to 123 bytes on a character boundary.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        if reason.len() > 123 {
            let mut end = 123;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Self { code, reason }
    }
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.as_u16(), self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_a_close_frame() {
        let close = Close::new(CloseCode::Policy, "é".repeat(100));
        assert!(close.reason.len() <= 123);
        assert!(close.reason.chars().all(|c| c == 'é'));
        assert_eq!(
            Close::new(CloseCode::SlowConsumer, "slow").to_string(),
            "4000 slow"
        );
    }

    #[test]
    fn resumable_codes_are_the_ones_the_protocol_says() {
        let resumable: Vec<u16> = [
            CloseCode::Normal,
            CloseCode::GoingAway,
            CloseCode::Policy,
            CloseCode::TooBig,
            CloseCode::Internal,
            CloseCode::SlowConsumer,
            CloseCode::HeartbeatTimeout,
            CloseCode::Unauthorized,
            CloseCode::HandshakeTimeout,
            CloseCode::Other(1006),
        ]
        .into_iter()
        .filter(|code| code.resumable())
        .map(CloseCode::as_u16)
        .collect();
        assert_eq!(resumable, [1001, 4000, 4001]);
    }

    #[test]
    fn codes_read_back_from_the_wire() {
        for code in [
            1000, 1001, 1002, 1006, 1008, 1009, 1011, 3000, 4000, 4001, 4003, 4008, 4999,
        ] {
            assert_eq!(CloseCode::from_u16(code).as_u16(), code);
        }
        assert_eq!(CloseCode::from_u16(4000), CloseCode::SlowConsumer);
    }
}
