//! A fuzzer's bytes read as a program's choices. Every read succeeds (zeros once the bytes run
//! out), so any input is a valid program, and a short input is a short program.

use std::time::Duration;

pub(crate) struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.bytes.split_first() else {
            return 0;
        };
        self.bytes = rest;
        first
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        let value = usize::from(u16::from_le_bytes([self.byte(), self.byte()]));
        value.checked_rem(n).unwrap_or(0)
    }

    /// A duration of whole milliseconds in `0..max_ms`.
    pub(crate) fn millis(&mut self, max_ms: usize) -> Duration {
        Duration::from_millis(self.below(max_ms) as u64)
    }

    /// Up to `n` raw bytes.
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        taken
    }
}
