//! The frames a session has to send, in order: the oldest in place, the rest in a ring buffer.
//!
//! A paced room leaves one frame at a time in a session's queue. At 10,000 sessions a ring
//! buffer of its own was a cache line missed when the frame was queued and again when it went
//! out; in place, it shares the session's first lines (docs/performance.md, "Cache lines per
//! delivery").

use std::collections::VecDeque;

use crate::delivery::Shared;

#[derive(Debug, Default)]
pub(super) struct Queue {
    /// The oldest frame; `None` only while `rest` is empty too.
    first: Option<Shared>,
    rest: VecDeque<Shared>,
}

impl Queue {
    pub(super) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub(super) fn push_back(&mut self, delivery: Shared) {
        if self.first.is_none() {
            self.first = Some(delivery);
        } else {
            self.rest.push_back(delivery);
        }
    }

    pub(super) fn pop_front(&mut self) -> Option<Shared> {
        let first = self.first.take()?;
        self.first = self.rest.pop_front();
        if self.rest.is_empty() {
            self.shrink();
        }
        Some(first)
    }

    pub(super) fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
        self.shrink();
    }

    /// Once drained, lets go of what a burst grew past [`KEPT`]: an idle session after a storm
    /// costs what one that never saw it does.
    fn shrink(&mut self) {
        if self.rest.capacity() > KEPT {
            self.rest = VecDeque::new();
        }
    }
}

/// Frames the ring buffer keeps room for once drained (a pointer each).
const KEPT: usize = 16;

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;
    use crate::delivery::Delivery;
    use crate::envelope::{Payload, ServerMessage};

    fn delivery(n: u64) -> Shared {
        let data = Payload::from_json(&n.to_string()).expect("JSON");
        let id = crate::cursor::Position {
            epoch: 1,
            offset: n,
        };
        let frame = ServerMessage::Broadcast {
            id,
            event: None,
            data,
        };
        Delivery::unstreamed(frame.encode())
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push,
        Pop,
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![6 => Just(Op::Push), 5 => Just(Op::Pop), 1 => Just(Op::Clear)]
    }

    proptest! {
        /// Under any pushes, pops and clears the queue gives back what a `VecDeque` does, in
        /// the same order, with the same length; drained, it keeps at most `KEPT` of room.
        #[test]
        fn a_queue_behaves_as_a_deque(ops in proptest::collection::vec(op(), 0..400)) {
            let (mut queue, mut model) = (Queue::default(), VecDeque::new());
            for (n, op) in (0u64..).zip(ops) {
                match op {
                    Op::Push => {
                        let delivery = delivery(n);
                        queue.push_back(delivery.clone());
                        model.push_back(delivery);
                    }
                    Op::Pop => {
                        let (got, want) = (queue.pop_front(), model.pop_front());
                        prop_assert_eq!(
                            got.map(|d| d.frame.as_str().to_owned()),
                            want.map(|d| d.frame.as_str().to_owned())
                        );
                    }
                    Op::Clear => {
                        queue.clear();
                        model.clear();
                    }
                }
                prop_assert_eq!(queue.len(), model.len());
                prop_assert_eq!(queue.first.is_none(), queue.len() == 0);
                if queue.len() <= 1 {
                    prop_assert!(queue.rest.capacity() <= KEPT, "a drained queue keeps its peak");
                }
            }
        }
    }
}
