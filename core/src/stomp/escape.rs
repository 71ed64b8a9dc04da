//! Header escaping ("Value Encoding"): which octets each version escapes, and how.

use bytes::BufMut;

use super::{Command, Version};

/// How a frame's header names and values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Escaping {
    /// Literally: STOMP 1.0, and `CONNECT` and `CONNECTED` frames in every version.
    None,
    /// STOMP 1.1: `\n`, `\c` and `\\`; a CR has no escape (`\r` is an undefined one).
    V1_1,
    /// STOMP 1.2: `\r`, `\n`, `\c` and `\\`.
    V1_2,
}

impl Escaping {
    pub(super) fn of(version: Version, command: Command) -> Self {
        match version {
            _ if command.is_literal() => Self::None,
            Version::V1_0 => Self::None,
            Version::V1_1 => Self::V1_1,
            Version::V1_2 => Self::V1_2,
        }
    }

    /// The octet an escape sequence `\x` stands for, where `x` is `byte`.
    fn unescaped(self, byte: u8) -> Option<u8> {
        match byte {
            b'n' => Some(b'\n'),
            b'c' => Some(b':'),
            b'\\' => Some(b'\\'),
            b'r' if self == Self::V1_2 => Some(b'\r'),
            _ => None,
        }
    }

    /// Decodes one header name or value. `None` on an undefined escape sequence, a lone
    /// backslash at the end included: a fatal protocol error.
    pub(super) fn unescape(self, raw: &[u8]) -> Option<Vec<u8>> {
        if self == Self::None || !raw.contains(&b'\\') {
            return Some(raw.to_vec());
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut bytes = raw.iter();
        while let Some(&byte) = bytes.next() {
            if byte == b'\\' {
                out.push(self.unescaped(*bytes.next()?)?);
            } else {
                out.push(byte);
            }
        }
        Some(out)
    }

    /// The first octet of `text` this escaping cannot carry in a header (`name` or not), if
    /// any: where nothing is escaped, CR and LF (and `:` in a name); in STOMP 1.1, CR.
    pub(super) fn unencodable(self, text: &[u8], name: bool) -> Option<u8> {
        let bad = |byte: u8| match self {
            Self::None => byte == b'\r' || byte == b'\n' || (name && byte == b':'),
            Self::V1_1 => byte == b'\r',
            Self::V1_2 => false,
        };
        text.iter().copied().find(|&byte| bad(byte))
    }

    /// Appends `text` escaped. The caller has checked it with [`unencodable`](Self::unencodable).
    pub(super) fn escape_into(self, text: &[u8], out: &mut impl BufMut) {
        let special = |byte: u8| matches!(byte, b'\\' | b':' | b'\n' | b'\r');
        if self == Self::None || !text.iter().copied().any(special) {
            out.put_slice(text);
            return;
        }
        for &byte in text {
            let escape = match byte {
                b'\\' => b'\\',
                b':' => b'c',
                b'\n' => b'n',
                b'\r' => b'r',
                _ => {
                    out.put_u8(byte);
                    continue;
                }
            };
            out.put_slice(&[b'\\', escape]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_decodes_its_escapes() {
        let raw = br"a\nb\cc\\d";
        for escaping in [Escaping::V1_1, Escaping::V1_2] {
            assert_eq!(escaping.unescape(raw).as_deref(), Some(&b"a\nb:c\\d"[..]));
        }
        assert_eq!(Escaping::V1_2.unescape(br"\r").as_deref(), Some(&b"\r"[..]));
        // STOMP 1.1 has no `\r`: it is an undefined escape there.
        assert_eq!(Escaping::V1_1.unescape(br"\r"), None);
        // Literal frames keep every backslash.
        assert_eq!(
            Escaping::None.unescape(br"\t\").as_deref(),
            Some(&br"\t\"[..])
        );
    }

    #[test]
    fn escaping_inverts_unescaping() {
        let text = b"x:\\\n\r:y";
        let mut out = Vec::new();
        Escaping::V1_2.escape_into(text, &mut out);
        assert_eq!(out, br"x\c\\\n\r\cy");
        assert_eq!(Escaping::V1_2.unescape(&out).as_deref(), Some(&text[..]));
    }

    #[test]
    fn unencodable_octets_per_escaping() {
        assert_eq!(Escaping::None.unencodable(b"a:b", false), None);
        assert_eq!(Escaping::None.unencodable(b"a:b", true), Some(b':'));
        assert_eq!(Escaping::None.unencodable(b"a\nb", false), Some(b'\n'));
        assert_eq!(Escaping::V1_1.unencodable(b"a\n:b", true), None);
        assert_eq!(Escaping::V1_1.unencodable(b"a\rb", false), Some(b'\r'));
        assert_eq!(Escaping::V1_2.unencodable(b"\r\n:\\", true), None);
    }
}
