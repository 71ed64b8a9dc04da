//! WebSocket framing (RFC 6455, section 5), the server's side: the frames roomcast writes, as
//! bytes.
//!
//! A server frame is a head of 2 to 10 bytes (FIN, opcode, the payload length in 7, 16 or 64
//! bits, no mask: section 5.1 forbids masking frames a server sends) and the payload. The
//! payload of a fan-out is shared by every recipient ([`Frame`](crate::envelope::Frame)), so a
//! transport writes each head and the shared payload side by side (a vectored write), or, for
//! a few small frames, copies them together ([`Frames::copy_into`]). Reading frames, the close
//! handshake and pongs stay with the transport's WebSocket library.

use bytes::Bytes;

/// The first byte of a final text frame (FIN set, opcode 1): RFC 6455, 5.2.
pub const TEXT: u8 = 0x81;
/// A final binary frame's first byte (opcode 2).
pub const BINARY: u8 = 0x82;
/// A close frame's first byte (opcode 8).
pub const CLOSE: u8 = 0x88;
/// A ping's first byte (opcode 9).
pub const PING: u8 = 0x89;
/// A pong's first byte (opcode 10).
pub const PONG: u8 = 0x8a;

/// An unmasked frame's head: the first byte and the payload length, in 2, 4 or 10 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    bytes: [u8; 10],
    len: u8,
}

impl Head {
    /// The head of a frame whose first byte is `first` (FIN and opcode, such as [`TEXT`]) and
    /// whose payload is `payload_len` bytes: a 7-bit length up to 125, else 126 and a 16-bit
    /// length up to 65,535, else 127 and a 64-bit length (section 5.2, the minimal encoding).
    pub fn new(first: u8, payload_len: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = first;
        let len = match payload_len {
            0..=125 => {
                bytes[1] = payload_len as u8;
                2
            }
            126..=0xffff => {
                bytes[1] = 126;
                bytes[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
                4
            }
            _ => {
                bytes[1] = 127;
                bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
                10
            }
        };
        Self { bytes, len }
    }

    /// The head's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Frames queued for one write, in order: the first in place (a paced fan-out queues one at a
/// time, and a buffer of its own would be a cache line more per delivery), the rest in a buffer.
#[derive(Debug, Default)]
pub struct Frames {
    first: Option<(u8, Bytes)>,
    more: Vec<(u8, Bytes)>,
}

impl Frames {
    /// Queues a frame: its first byte (such as [`TEXT`]) and its payload, shared.
    pub fn push(&mut self, first: u8, payload: Bytes) {
        if self.first.is_none() {
            self.first = Some((first, payload));
        } else {
            self.more.push((first, payload));
        }
    }

    /// No frame is queued.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// How many frames are queued.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    /// Each frame's head and payload, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Head, &Bytes)> {
        self.first
            .iter()
            .chain(&self.more)
            .map(|(first, payload)| (Head::new(*first, payload.len()), payload))
    }

    /// Every frame, head and payload, copied into `out` if they all fit: the bytes written.
    pub fn copy_into(&self, out: &mut [u8]) -> Option<usize> {
        let mut used = 0;
        for (head, payload) in self.iter() {
            let head = head.as_bytes();
            let end = used + head.len() + payload.len();
            if end > out.len() {
                return None;
            }
            out[used..used + head.len()].copy_from_slice(head);
            out[used + head.len()..end].copy_from_slice(payload);
            used = end;
        }
        Some(used)
    }

    /// Every frame's head, one after another in `heads`, and where each ends in `ends`: for a
    /// vectored write of (head, payload) pairs, with the heads in one buffer.
    pub fn heads_into(&self, heads: &mut Vec<u8>, ends: &mut Vec<usize>) {
        for (head, _) in self.iter() {
            heads.extend_from_slice(head.as_bytes());
            ends.push(heads.len());
        }
    }

    /// Empties the queue, keeping its buffer unless a burst grew it past `keep` frames.
    pub fn clear(&mut self, keep: usize) {
        self.first = None;
        self.more.clear();
        if self.more.capacity() > keep {
            self.more = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests;
