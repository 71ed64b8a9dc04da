//! The engine behind the shared hub, and the results of the hub's commands that callers wait
//! for.

use std::collections::BTreeMap;
use std::time::Instant;

use roomcast_core::engine::{Engine, EngineEvent, MemoryEngine, Operation};
use roomcast_core::hub::{HubError, HubEvent, Published, StreamPage, Ticket};

/// An engine as the shared hub drives it, under the hub's lock and never waiting: an engine
/// that answers in the same call (a [`MemoryEngine`]), or one with IO of its own (the
/// `roomcast-store` crate's commit thread) that queues the operation and answers later through
/// [`HubHandle::engine_events`](crate::HubHandle::engine_events).
pub trait EngineLink: Send + 'static {
    /// Takes an operation. It must not block: an engine whose queue is full answers an
    /// append with a `Failed` event rather than wait (the hub bounds what it sends, see
    /// `HubConfig::max_pending`).
    fn submit(&mut self, now: Instant, operation: Operation);

    /// An event it has already: an engine that answers in the same call gives them here.
    fn poll_event(&mut self) -> Option<EngineEvent>;

    /// What it holds, for status pages and metrics.
    fn stats(&self) -> EngineStats;
}

/// What an engine holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Streams it knows.
    pub streams: usize,
    /// Rooms with stored messages (with or without members).
    pub rooms_with_history: usize,
    /// Outboxes holding messages for users who are away.
    pub outboxes: usize,
    /// Messages stored.
    pub messages: usize,
    /// Their bytes.
    pub bytes: usize,
}

impl EngineLink for MemoryEngine {
    fn submit(&mut self, now: Instant, operation: Operation) {
        self.handle(now, operation);
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        Engine::poll_event(self)
    }

    fn stats(&self) -> EngineStats {
        let stats = MemoryEngine::stats(self);
        EngineStats {
            streams: stats.streams,
            rooms_with_history: stats.rooms_with_history,
            outboxes: stats.outboxes,
            messages: stats.records,
            bytes: stats.bytes,
        }
    }
}

/// The results of the hub's commands, kept for the callers waiting for them, by ticket. A
/// caller that stops waiting takes its ticket out, so nothing stays behind.
#[derive(Debug, Default)]
pub(super) struct Results {
    /// `None` until the result comes.
    waiting: BTreeMap<Ticket, Option<Answer>>,
}

/// The result of a command of the hub.
#[derive(Debug)]
pub(super) enum Answer {
    /// A publish, notification or broadcast: stored, or why not.
    Stored(Result<Published, HubError>),
    /// A read: what the engine holds, or why not.
    Read(Result<StreamPage, HubError>),
}

impl Answer {
    /// The answer a hub's event carries, with its ticket.
    pub(super) fn of(event: HubEvent) -> Option<(Ticket, Self)> {
        match event {
            HubEvent::Done { ticket, result } => Some((ticket, Self::Stored(result))),
            HubEvent::Read { ticket, result } => Some((ticket, Self::Read(result))),
            _ => None,
        }
    }
}

impl Results {
    /// A caller waits for `ticket`.
    pub(super) fn expect(&mut self, ticket: Ticket) {
        self.waiting.insert(ticket, None);
    }

    /// The result came: kept if someone waits for it.
    pub(super) fn complete(&mut self, ticket: Ticket, answer: Answer) {
        if let Some(slot) = self.waiting.get_mut(&ticket) {
            *slot = Some(answer);
        }
    }

    /// The result, once it came.
    pub(super) fn take(&mut self, ticket: Ticket) -> Option<Answer> {
        let result = self.waiting.get_mut(&ticket)?.take()?;
        self.waiting.remove(&ticket);
        Some(result)
    }

    /// The caller stopped waiting.
    pub(super) fn abandon(&mut self, ticket: Ticket) {
        self.waiting.remove(&ticket);
    }
}
