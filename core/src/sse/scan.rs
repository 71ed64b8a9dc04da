//! Finding line ends fast, for the decoder and the encoder alike.

use memchr::memchr2;

/// The first CR or LF. The first 16 bytes are checked a word at a time, so short lines (ids,
/// blank lines) and small inputs (a trickling connection) skip memchr's setup cost.
#[inline]
pub(super) fn find_line_end(bytes: &[u8]) -> Option<usize> {
    let mut start = 0;
    while start < 16 {
        let Some(word) = bytes.get(start..start + 8) else {
            let rest = &bytes[start..];
            return rest
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .map(|end| start + end);
        };
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let found = zero_bytes(word ^ (u64::from(b'\n') * LSB))
            | zero_bytes(word ^ (u64::from(b'\r') * LSB));
        if found != 0 {
            return Some(start + found.trailing_zeros() as usize / 8);
        }
        start += 8;
    }
    memchr2(b'\n', b'\r', &bytes[start..]).map(|end| start + end)
}

const LSB: u64 = 0x0101_0101_0101_0101;

/// The high bit set in each byte of `word` that is zero. A byte above a zero byte may be flagged
/// too (the borrow runs up), never one below, so the lowest flag is exact.
#[inline]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(LSB) & !word & (LSB << 7)
}

/// Whether `bytes` holds CR, LF, or (when `nul`) NUL: short values, as ids and event types
/// are, are checked inline rather than through memchr's setup.
#[inline]
pub(super) fn has_line_break(bytes: &[u8], nul: bool) -> bool {
    bytes
        .iter()
        .any(|&b| b == b'\r' || b == b'\n' || (nul && b == 0))
}
