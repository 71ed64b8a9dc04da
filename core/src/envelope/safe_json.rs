//! What serde_json accepts and some clients cannot read: arrays and objects nested deeper than
//! their parsers go (Python's `json` stops near 1,000 levels, serde_json at 128) and lone UTF-16
//! surrogates in `\u` escapes (`"\ud800"`, refused by serde_json and by every strict parser). A
//! payload is stored once and replayed to every reader, so one such payload would break every
//! client reading the room: they are refused where they come in.

/// The nesting limit of payloads unless configured: 64 levels.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Checks a text serde_json accepted as one JSON value: at most `max_depth` levels of arrays
/// and objects, and every `\u` surrogate escape part of a pair. One pass, no allocation.
pub(crate) fn check(json: &str, max_depth: usize) -> Result<(), String> {
    let bytes = json.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(format!("nested deeper than {max_depth} levels"));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => i = string_end(bytes, i + 1)?,
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index of the closing quote of the string whose content starts at `i`; refuses a lone
/// surrogate escape on the way.
fn string_end(bytes: &[u8], mut i: usize) -> Result<usize, String> {
    // The high surrogate just read, waiting for its low half.
    let mut high = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' if !high => return Ok(i),
            b'\\' if bytes.get(i + 1) == Some(&b'u') => {
                let unit =
                    hex4(bytes.get(i + 2..i + 6)).ok_or("a \\u escape is not 4 hex digits")?;
                match unit {
                    0xD800..=0xDBFF if !high => high = true,
                    0xDC00..=0xDFFF if high => high = false,
                    0xD800..=0xDFFF => return Err(lone(unit)),
                    _ if high => return Err("a \\u escape holds a lone surrogate (high)".into()),
                    _ => {}
                }
                i += 6;
                continue;
            }
            _ if high => return Err("a \\u escape holds a lone surrogate (high)".into()),
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    Err("a string is not closed".into())
}

fn lone(unit: u32) -> String {
    format!("a \\u escape holds a lone surrogate ({unit:04x})")
}

fn hex4(digits: Option<&[u8]>) -> Option<u32> {
    let digits = std::str::from_utf8(digits?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_bounded() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(check(&nested(64), 64), Ok(()));
        assert!(check(&nested(65), 64).expect_err("too deep").contains("64"));
        assert!(check(&nested(30_000), 64).is_err());
        let objects = "{\"a\":".repeat(65) + "1" + &"}".repeat(65);
        assert!(check(&objects, 64).is_err());
        assert_eq!(
            check(r#"{"a":"[[[[[[[[[[[[[[["}"#, 2),
            Ok(()),
            "brackets in strings"
        );
        assert_eq!(
            check(r#"[[1],[2],[3]]"#, 2),
            Ok(()),
            "siblings do not add up"
        );
    }

    #[test]
    fn surrogates_come_in_pairs() {
        assert_eq!(check(r#""\ud83d\ude00""#, 64), Ok(()), "an emoji, escaped");
        assert_eq!(check("\"😀\"", 64), Ok(()), "an emoji, as UTF-8");
        assert_eq!(
            check(r#""\u00e9 \\ud800 \"""#, 64),
            Ok(()),
            "an escaped backslash"
        );
        for bad in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800x""#,
            r#""\ud800\u0041""#,
            r#""\ud800\ud800""#,
            r#"{"k\udfff":1}"#,
        ] {
            assert!(check(bad, 64).is_err(), "{bad}");
        }
    }
}
