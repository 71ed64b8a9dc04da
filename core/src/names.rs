//! Validated names: rooms and users. Checked once at the edge, then cheap to clone.

use smol_str::SmolStr;

/// Longest room name, in bytes.
pub const MAX_ROOM_LEN: usize = 64;
/// Longest user id, in bytes.
pub const MAX_USER_LEN: usize = 128;

/// A room name: 1 to 64 bytes of ASCII letters, digits and `_ - . : /`.
///
/// The alphabet keeps names safe inside cursors, SSE ids and URLs without escaping.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoomName(SmolStr);

/// A user id: 1 to 128 bytes of UTF-8, not only whitespace, without control characters and
/// without the bidirectional controls that make a name display as another (U+202E...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(SmolStr);

/// Why a name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than its limit.
    TooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The name holds a character its kind does not allow.
    BadCharacter(char),
    /// The name is only whitespace.
    Blank,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::TooLong { limit } => write!(f, "is longer than {limit} bytes"),
            Self::BadCharacter(c) => {
                write!(f, "contains the character {c:?}, which is not allowed")
            }
            Self::Blank => f.write_str("is only whitespace"),
        }
    }
}

impl std::error::Error for NameError {}

impl RoomName {
    /// Checks and wraps a room name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        check_len(name, MAX_ROOM_LEN)?;
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')))
        {
            return Err(NameError::BadCharacter(c));
        }
        Ok(Self(SmolStr::new(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl UserId {
    /// Checks and wraps a user id.
    pub fn new(id: &str) -> Result<Self, NameError> {
        check_len(id, MAX_USER_LEN)?;
        if let Some(c) = id.chars().find(|&c| c.is_control() || is_bidi_control(c)) {
            return Err(NameError::BadCharacter(c));
        }
        if id.chars().all(char::is_whitespace) {
            return Err(NameError::Blank);
        }
        Ok(Self(SmolStr::new(id)))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The characters that reorder text for display (Unicode's bidirectional formatting
/// characters): in a user id they make one name look like another.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn check_len(name: &str, limit: usize) -> Result<(), NameError> {
    match name.len() {
        0 => Err(NameError::Empty),
        len if len > limit => Err(NameError::TooLong { limit }),
        _ => Ok(()),
    }
}

macro_rules! name_traits {
    ($name:ident) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

name_traits!(RoomName);
name_traits!(UserId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_take_a_url_and_cursor_safe_alphabet() {
        for ok in [
            "lobby",
            "a",
            "team-1/general",
            "org:acme.chat_2",
            &"r".repeat(64),
        ] {
            assert_eq!(RoomName::new(ok).map(|r| r.to_string()), Ok(ok.to_string()));
        }
        assert_eq!(RoomName::new(""), Err(NameError::Empty));
        assert_eq!(
            RoomName::new(&"r".repeat(65)),
            Err(NameError::TooLong { limit: 64 })
        );
        for (bad, c) in [
            ("a,b", ','),
            ("a=b", '='),
            ("a b", ' '),
            ("caf\u{e9}", '\u{e9}'),
            ("a\nb", '\n'),
        ] {
            assert_eq!(RoomName::new(bad), Err(NameError::BadCharacter(c)));
        }
    }

    #[test]
    fn user_ids_take_any_text_without_control_characters() {
        for ok in [
            "alice",
            "Zoë Müller",
            "user@example.com",
            "a,b=c",
            &"u".repeat(128),
        ] {
            assert!(UserId::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(UserId::new(""), Err(NameError::Empty));
        assert_eq!(
            UserId::new(&"u".repeat(129)),
            Err(NameError::TooLong { limit: 128 })
        );
        assert_eq!(UserId::new("a\u{0}"), Err(NameError::BadCharacter('\u{0}')));
        assert_eq!(UserId::new("a\r"), Err(NameError::BadCharacter('\r')));
    }

    #[test]
    fn user_ids_cannot_be_blank_or_display_as_another() {
        assert_eq!(UserId::new(" "), Err(NameError::Blank));
        assert_eq!(UserId::new("\u{3000}\u{a0}"), Err(NameError::Blank));
        assert!(UserId::new("a b").is_ok());
        for c in [
            '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}',
        ] {
            let id = format!("admin{c}nimda");
            assert_eq!(UserId::new(&id), Err(NameError::BadCharacter(c)), "{c:?}");
        }
    }
}
