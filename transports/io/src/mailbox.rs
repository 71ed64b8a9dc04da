//! Where the hub leaves one session's deliveries.
//!
//! The hub never waits: it puts each delivery in the session's mailbox, and a mailbox over its
//! budget (bytes and frames, the session's own queue budget by default) means a slow consumer.
//! The session's task takes everything waiting at once, so every frame that piled up while it
//! was busy goes out in one write, and it is woken once per batch, not once per message. The
//! lock is held only to push or to swap the queue out, never across an await.
//!
//! One task takes from a mailbox, so its waker sits under the same lock as the queue: a push
//! that finds the queue empty takes the waker and wakes it. That is one lock per delivery and
//! no allocation per wait, where a general event (many listeners, each allocated) cost two
//! locks and a listener per wake-up at 10,000 sessions.
//!
//! The session's other sources, its socket and its timer, wake it through the mailbox too: the
//! mailbox is their [belfry](crate::readiness::Belfry), and the memo of which of them rang sits
//! beside the deliveries (see `readiness.rs`).

use std::mem;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use roomcast_core::close::{Close, CloseCode};
use roomcast_core::delivery::Shared;
use roomcast_core::limits::{DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_FRAMES};

use crate::buffer::recycle;
use crate::readiness::{Belfry, Rung};

/// How much may wait in one session's mailbox before the session counts as a slow consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Bytes of frames waiting (1 MiB by default, as the session's queue).
    pub bytes: usize,
    /// Frames waiting (4,096 by default, as the session's queue).
    pub frames: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            bytes: DEFAULT_QUEUE_BYTES,
            frames: DEFAULT_QUEUE_FRAMES,
        }
    }
}

impl Budget {
    /// A budget of `frames` frames and the default bytes.
    pub fn frames(frames: usize) -> Self {
        Self {
            frames,
            ..Self::default()
        }
    }
}

/// What [`Mailbox::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Ok,
    /// Over the budget: the session is a slow consumer.
    Full,
    /// The session task has ended.
    Gone,
}

/// A session's socket, as a source that rings its mailbox's memo.
pub(crate) const RING_SOCKET: u8 = 1;
/// A session's timer, likewise.
pub(crate) const RING_TIMER: u8 = 2;

#[derive(Debug)]
pub(crate) struct Mailbox {
    budget: Budget,
    /// Which of the session's other sources rang: `RING_SOCKET`, `RING_TIMER`. In the
    /// allocation a delivery reads anyway; where rustc puts it, it shares a line with what the
    /// session's take reads (a `repr(C)` order with it before the lock counted 0.9 read misses
    /// more per delivery).
    rung: Rung,
    inner: Mutex<Inner>,
}

/// Deliveries in order: the first one in the mailbox itself, the rest in a buffer. In a paced
/// room a session mostly has one delivery waiting at a time, and at 10,000 sessions a separate
/// buffer is a cache line missed when the hub writes it and again when the session reads it.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    first: Option<Shared>,
    /// Empty while `first` is.
    rest: Vec<Shared>,
}

impl Batch {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn push(&mut self, delivery: Shared) {
        if self.first.is_none() {
            self.first = Some(delivery);
        } else {
            self.rest.push(delivery);
        }
    }

    /// Takes the deliveries out, in order; the buffer stays for the next ones.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Shared> + '_ {
        self.first.take().into_iter().chain(self.rest.drain(..))
    }

    /// Lets the buffer go if a burst grew it past `keep` deliveries.
    pub(crate) fn recycle(&mut self, keep: usize) {
        recycle(&mut self.rest, keep);
    }
}

#[derive(Debug, Default)]
struct Inner {
    queue: Batch,
    bytes: usize,
    /// The hub let go of the session (slow consumer, or disconnected).
    dropped: bool,
    /// Why, when not as a slow consumer: the close the session ends with.
    close: Option<Close>,
    /// The session task ended.
    gone: bool,
    /// The session task, waiting in [`Mailbox::take`] or [`Mailbox::listen`] (or having
    /// waited there last).
    waiter: Option<Waker>,
}

impl Mailbox {
    pub(crate) fn new(budget: Budget) -> Self {
        Self {
            budget,
            rung: Rung::default(),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Registers the task's waker for the bells alone, without taking deliveries (a session
    /// that is closing no longer takes them).
    pub(crate) fn listen(&self, cx: &Context<'_>) {
        Self::register(&mut self.lock(), cx);
    }

    fn register(inner: &mut Inner, cx: &Context<'_>) {
        // The same task waits each time: keep its waker rather than clone it per wait. A waker
        // left behind by a wait that lost a race costs at most one spurious wake-up.
        if !inner
            .waiter
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            inner.waiter = Some(cx.waker().clone());
        }
    }

    /// The hub's side, never waiting: one delivery of a fan-out, which must fit the budget.
    pub(crate) fn push_one(&self, delivery: Shared) -> Pushed {
        let inner = self.lock();
        let over = inner.queue.len() >= self.budget.frames
            || inner.bytes.saturating_add(delivery.frame.len()) > self.budget.bytes;
        Self::push(inner, over, [delivery])
    }

    /// The hub's side: a batch for this session alone (answers, a resume's replay, bounded by
    /// history), taken whole when the mailbox is within budget as it arrives, so a replay
    /// larger than the budget still completes.
    pub(crate) fn push_batch(&self, batch: Vec<Shared>) -> Pushed {
        let inner = self.lock();
        let over = inner.queue.len() > self.budget.frames || inner.bytes > self.budget.bytes;
        Self::push(inner, over, batch)
    }

    fn push(
        mut inner: MutexGuard<'_, Inner>,
        over: bool,
        deliveries: impl IntoIterator<Item = Shared>,
    ) -> Pushed {
        if inner.gone {
            return Pushed::Gone;
        }
        if over {
            return Pushed::Full;
        }
        let was_empty = inner.queue.is_empty();
        for delivery in deliveries {
            inner.bytes += delivery.frame.len();
            inner.queue.push(delivery);
        }
        // The session waits for the first delivery of a batch only; it is woken with the lock
        // released, so it never finds it held.
        let waiter = if was_empty { inner.waiter.take() } else { None };
        drop(inner);
        if let Some(waiter) = waiter {
            waiter.wake();
        }
        Pushed::Ok
    }

    /// The hub let go of the session: its task stops waiting for deliveries.
    pub(crate) fn drop_session(&self) {
        let mut inner = self.lock();
        inner.dropped = true;
        let waiter = inner.waiter.take();
        drop(inner);
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    /// As [`drop_session`](Self::drop_session), the session to end with `close` (the server's
    /// API disconnected it).
    pub(crate) fn drop_session_with(&self, close: Close) {
        self.lock().close = Some(close);
        self.drop_session();
    }

    /// Whether the hub let go of the session (its mailbox overflowed: a slow consumer).
    pub(crate) fn was_dropped(&self) -> bool {
        self.lock().dropped
    }

    /// The close the session ends with now that the hub let go of it: the one it was dropped
    /// with, else a slow consumer's.
    pub(crate) fn dropped_close(&self) -> Close {
        self.lock().close.clone().unwrap_or_else(|| {
            Close::new(
                CloseCode::SlowConsumer,
                roomcast_core::session::SLOW_CONSUMER_REASON,
            )
        })
    }

    /// The session task ended: the hub's next push says so.
    pub(crate) fn close(&self) {
        let mut inner = self.lock();
        inner.gone = true;
        inner.queue = Batch::default();
        inner.bytes = 0;
        inner.waiter = None;
    }

    /// The session's side, as a future: see [`poll_take`](Self::poll_take).
    #[cfg(test)]
    pub(crate) async fn take(&self, batch: &mut Batch) -> bool {
        std::future::poll_fn(|cx| self.poll_take(cx, batch)).await
    }

    /// The session's side: once something waits, swaps it all into `batch` (which must be
    /// empty) and is ready with true; false once the hub let go. The mailbox keeps `batch`'s
    /// old buffer for the next deliveries, so the two buffers take turns and a delivery
    /// allocates nothing. The session polls this among its other waits (`next_input`).
    pub(crate) fn poll_take(&self, cx: &Context<'_>, batch: &mut Batch) -> Poll<bool> {
        let mut inner = self.lock();
        if let Some(taken) = Self::take_locked(&mut inner, batch) {
            return Poll::Ready(taken);
        }
        Self::register(&mut inner, cx);
        Poll::Pending
    }

    /// As [`take`](Self::take), without waiting: `None` if nothing waits.
    pub(crate) fn try_take(&self, batch: &mut Batch) -> Option<bool> {
        Self::take_locked(&mut self.lock(), batch)
    }

    fn take_locked(inner: &mut Inner, batch: &mut Batch) -> Option<bool> {
        if inner.dropped {
            return Some(false);
        }
        if inner.queue.is_empty() {
            return None;
        }
        debug_assert!(batch.is_empty(), "the last batch was delivered");
        inner.bytes = 0;
        mem::swap(&mut inner.queue, batch);
        Some(true)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves only plain data behind: carry on with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Belfry for Mailbox {
    fn rung(&self) -> &Rung {
        &self.rung
    }

    /// Under the lock the task registers under: a task that registered before this takes the
    /// lock is woken, and one that registers after it finds the note when it reads the memo
    /// after registering.
    fn wake_task(&self) {
        let waiter = self.lock().waiter.take();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::future::{block_on, zip};
    use roomcast_core::cursor::Position;
    use roomcast_core::delivery::Delivery;
    use roomcast_core::envelope::{Payload, ServerMessage};

    use super::*;

    /// A delivery carrying `n`, in a frame of a fixed size.
    fn frame(n: u64) -> Shared {
        let data = Payload::from_json(&format!("\"{n:03}\"")).expect("JSON");
        let id = Position {
            epoch: 1,
            offset: n,
        };
        Delivery::unstreamed(
            ServerMessage::Broadcast {
                id,
                event: None,
                data,
            }
            .encode(),
        )
    }

    /// Waits for everything in the mailbox; `None` once the hub let go.
    fn take(mailbox: &Mailbox) -> Option<Vec<Shared>> {
        let mut batch = Batch::default();
        block_on(mailbox.take(&mut batch)).then(|| batch.drain().collect())
    }

    fn offsets(batch: &[Shared]) -> Vec<String> {
        batch
            .iter()
            .map(|d| d.frame.as_str()[..40].to_owned())
            .collect()
    }

    #[test]
    fn everything_waiting_is_taken_at_once_in_order() {
        let mailbox = Mailbox::new(Budget::default());
        for n in 1..=3 {
            assert_eq!(mailbox.push_one(frame(n)), Pushed::Ok);
        }
        let taken = take(&mailbox).expect("not dropped");
        assert_eq!(offsets(&taken), offsets(&[frame(1), frame(2), frame(3)]));
        assert_eq!(
            mailbox.push_one(frame(4)),
            Pushed::Ok,
            "the budget is free again"
        );
    }

    #[test]
    fn the_session_and_the_mailbox_take_turns_with_two_buffers() {
        let mailbox = Mailbox::new(Budget::default());
        let mut batch = Batch::default();
        let mut buffers = Vec::new();
        for round in 0..4 {
            for n in 0..3 {
                mailbox.push_one(frame(round * 3 + n));
            }
            assert_eq!(mailbox.try_take(&mut batch), Some(true));
            assert_eq!(batch.len(), 3);
            buffers.push(batch.rest.as_ptr());
            batch.drain().for_each(drop); // delivered
        }
        assert_eq!(buffers[2], buffers[0], "the first buffer came back");
        assert_eq!(buffers[3], buffers[1], "and so did the second");
        assert_eq!(mailbox.try_take(&mut batch), None, "nothing waits");
    }

    #[test]
    fn a_lone_delivery_waits_in_the_mailbox_itself() {
        let mailbox = Mailbox::new(Budget::default());
        let mut batch = Batch::default();
        for n in 0..3 {
            mailbox.push_one(frame(n));
            assert_eq!(mailbox.try_take(&mut batch), Some(true));
            let taken: Vec<Shared> = batch.drain().collect();
            assert_eq!(offsets(&taken), offsets(&[frame(n)]));
        }
        let spare = mailbox.lock().queue.rest.capacity();
        assert_eq!(
            (batch.rest.capacity(), spare),
            (0, 0),
            "no buffer was needed"
        );
    }

    #[test]
    fn one_delivery_past_the_frames_or_the_bytes_is_a_slow_consumer() {
        let mailbox = Mailbox::new(Budget {
            bytes: 1 << 20,
            frames: 2,
        });
        assert_eq!(mailbox.push_one(frame(1)), Pushed::Ok);
        assert_eq!(mailbox.push_one(frame(2)), Pushed::Ok);
        assert_eq!(mailbox.push_one(frame(3)), Pushed::Full);
        let len = frame(1).frame.len();
        let mailbox = Mailbox::new(Budget {
            bytes: 2 * len,
            frames: 100,
        });
        assert_eq!(mailbox.push_one(frame(1)), Pushed::Ok);
        assert_eq!(
            mailbox.push_one(frame(2)),
            Pushed::Ok,
            "exactly at the budget"
        );
        assert_eq!(mailbox.push_one(frame(3)), Pushed::Full);
    }

    #[test]
    fn a_batch_is_taken_whole_while_the_mailbox_is_within_budget() {
        let mailbox = Mailbox::new(Budget {
            bytes: 1 << 20,
            frames: 2,
        });
        let replay: Vec<Shared> = (1..=5).map(frame).collect();
        assert_eq!(mailbox.push_batch(replay), Pushed::Ok, "a replay completes");
        assert_eq!(mailbox.push_one(frame(6)), Pushed::Full);
        assert_eq!(mailbox.push_batch(vec![frame(6)]), Pushed::Full);
        assert_eq!(take(&mailbox).map(|b| b.len()), Some(5));
    }

    #[test]
    fn the_session_waits_for_a_push_and_learns_when_the_hub_lets_go() {
        let mailbox = Mailbox::new(Budget::default());
        let mut batch = Batch::default();
        let (taken, pushed) = block_on(zip(mailbox.take(&mut batch), async {
            mailbox.push_one(frame(1))
        }));
        assert_eq!((taken, batch.len(), pushed), (true, 1, Pushed::Ok));
        mailbox.push_one(frame(2));
        mailbox.drop_session();
        assert_eq!(
            take(&mailbox).map(|b| b.len()),
            None,
            "dropped: what waits no longer matters"
        );
    }

    #[test]
    fn after_the_session_ends_the_hub_is_told() {
        let mailbox = Mailbox::new(Budget::default());
        mailbox.push_one(frame(1));
        mailbox.close();
        assert_eq!(mailbox.push_one(frame(2)), Pushed::Gone);
        assert_eq!(mailbox.push_batch(vec![frame(3)]), Pushed::Gone);
    }
}
