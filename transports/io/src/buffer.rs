//! Buffers a connection reuses from one write or batch to the next.

/// Empties `buffer` for reuse, keeping its allocation unless a burst grew it past `keep`
/// elements: reuse spares an allocation per write, and the bound keeps a burst from leaving
/// every connection holding its peak.
pub fn recycle<T>(buffer: &mut Vec<T>, keep: usize) {
    buffer.clear();
    if buffer.capacity() > keep {
        *buffer = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_kept_up_to_the_bound_and_let_go_past_it() {
        let mut at = Vec::<u8>::with_capacity(64);
        at.extend_from_slice(&[1; 64]);
        let capacity = at.capacity();
        recycle(&mut at, capacity);
        assert!(at.is_empty());
        assert_eq!(at.capacity(), capacity, "at the bound: kept");
        let mut past = Vec::<u8>::with_capacity(64);
        past.push(1);
        let capacity = past.capacity();
        recycle(&mut past, capacity - 1);
        assert_eq!(past.capacity(), 0, "past the bound: let go");
    }
}
