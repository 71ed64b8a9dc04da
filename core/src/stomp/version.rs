//! Protocol versions and their negotiation ("Protocol Negotiation").

/// A STOMP protocol version. What each changes on the wire:
///
/// | version | header escaping (not in `CONNECT`, `CONNECTED`) | line end |
/// | --- | --- | --- |
/// | 1.0 | none | LF |
/// | 1.1 | `\n`, `\c`, `\\` | LF |
/// | 1.2 | `\r`, `\n`, `\c`, `\\` | LF or CRLF |
///
/// The [`Decoder`](super::Decoder) takes CRLF as a line end in every version: it reads the
/// `CONNECT` frame before any version is agreed, and a 1.0 or 1.1 peer never ends a header
/// value with a CR. The encoder writes LF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// STOMP 1.0: no escaping.
    V1_0,
    /// STOMP 1.1: escaping of LF, `:` and `\`.
    V1_1,
    /// STOMP 1.2, the default: escaping of CR too, and CRLF line ends.
    #[default]
    V1_2,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Version; 3] = [Self::V1_0, Self::V1_1, Self::V1_2];

    /// The version as written in `accept-version` and `version` headers: `1.0`, `1.1`, `1.2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1_0 => "1.0",
            Self::V1_1 => "1.1",
            Self::V1_2 => "1.2",
        }
    }

    /// The version written exactly so, if it is one of these three.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|version| version.as_str() == text)
    }

    /// The version a session uses, from a `CONNECT` (or `STOMP`) frame's `accept-version`
    /// header: the highest one both the client lists and the server `supports`. A missing
    /// header means the client speaks 1.0 only. Entries are separated by commas; spaces
    /// around an entry are ignored, and entries naming other versions (`2.0`) are skipped.
    ///
    /// `None` when there is no common version: the server answers with an `ERROR` frame that
    /// lists its versions, then closes.
    ///
    /// ```
    /// use roomcast_core::stomp::Version;
    ///
    /// assert_eq!(Version::negotiate(Some("1.0,1.1,2.0"), &Version::ALL), Some(Version::V1_1));
    /// assert_eq!(Version::negotiate(None, &Version::ALL), Some(Version::V1_0));
    /// assert_eq!(Version::negotiate(None, &[Version::V1_2]), None);
    /// ```
    pub fn negotiate(accept_version: Option<&str>, supports: &[Version]) -> Option<Self> {
        let Some(accept) = accept_version else {
            return supports.contains(&Self::V1_0).then_some(Self::V1_0);
        };
        accept
            .split(',')
            .filter_map(|entry| Self::parse(entry.trim_matches(' ')))
            .filter(|version| supports.contains(version))
            .max()
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Version::*;

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        let all = &Version::ALL[..];
        let table: [(Option<&str>, &[Version], Option<Version>); 16] = [
            (None, all, Some(V1_0)), // no header: the client speaks 1.0 only
            (None, &[V1_1, V1_2], None),
            (Some("1.2"), all, Some(V1_2)),
            (Some("1.0,1.1,1.2"), all, Some(V1_2)),
            (Some("1.2,1.1,1.0"), all, Some(V1_2)), // the order does not matter
            (Some("1.0,1.1,2.0"), all, Some(V1_1)), // the spec's example
            (Some("1.0,1.1"), &[V1_2], None),
            (Some("1.1, 1.2"), all, Some(V1_2)), // spaces around an entry
            (Some("1.0,1.1,1.2"), &[V1_0, V1_1], Some(V1_1)),
            (Some("2.0,2.1"), all, None),
            (Some(""), all, None), // an empty header lists no version
            (Some(","), all, None),
            (Some("1.2.0,v1.2,12"), all, None),
            (Some("1.1,,1.0"), all, Some(V1_1)),
            (Some("1.0"), all, Some(V1_0)),
            (Some("1.2"), &[], None),
        ];
        for (accept, supports, expected) in table {
            assert_eq!(
                Version::negotiate(accept, supports),
                expected,
                "{accept:?} {supports:?}"
            );
        }
    }

    #[test]
    fn versions_read_back_as_written() {
        for version in Version::ALL {
            assert_eq!(Version::parse(version.as_str()), Some(version));
            assert_eq!(version.to_string(), version.as_str());
        }
        assert_eq!(Version::default(), V1_2);
        assert_eq!(Version::parse(" 1.2"), None);
    }
}
