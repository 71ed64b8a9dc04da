//! The hub, shared: one [`Hub`] behind a mutex that its callers drive inline, each in its own
//! task, under the lock and never across an await. A publish fans out in the publisher's task,
//! as a broadcast channel's send does; one timer task runs the hub's deadlines. It never waits on
//! a session: deliveries go into each session's mailbox, bounded by a [`Budget`], and a session
//! whose mailbox is over budget is dropped as a slow consumer.
//!
//! Why not a hub task fed by a command queue: on a busy executor each command then waited behind
//! every wake-up of the previous fan-out, so fan-outs ran one after another and each recipient
//! was written one message at a time; inline, the next publish lands in the mailboxes while the
//! previous one is still being written, and the frames coalesce.

mod api;
mod engine;
mod mailboxes;

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use event_listener::Event;
use futures_lite::future;
use roomcast_core::access::Grants;
use roomcast_core::delivery::SessionId;
use roomcast_core::engine::EngineEvent;
use roomcast_core::envelope::{ClientEnvelope, Payload};
use roomcast_core::hub::{Connect, Hub, HubError, Published, Ticket};
use roomcast_core::names::{RoomName, UserId};
use smol_str::SmolStr;

pub use self::api::Outgoing;
use self::engine::{Answer, Results};
pub use self::engine::{EngineLink, EngineStats};
use self::mailboxes::Mailboxes;
use crate::mailbox::{Budget, Mailbox};
use crate::runtime::Runtime;

/// Figures of the hub, for status pages and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Live sessions.
    pub sessions: usize,
    /// Rooms with members.
    pub rooms: usize,
    /// Users with a session.
    pub users: usize,
    /// Messages held in histories and outboxes.
    pub stored_messages: usize,
    /// Bytes of those messages.
    pub stored_bytes: usize,
    /// Rooms with stored messages, with or without members.
    pub rooms_with_history: usize,
    /// Outboxes holding messages for users who are away.
    pub outboxes: usize,
    /// Engine operations sent and not yet answered.
    pub pending_operations: usize,
    /// Sessions dropped as slow consumers since the start.
    pub slow_consumers: u64,
    /// Read receipts the engine refused to store, since the start.
    pub receipts_lost: u64,
    /// Presence frames delivered (one per recipient), since the start.
    pub presence_sent: u64,
}

/// The hub has stopped: an operation panicked while it held the hub (a bug), so nothing more
/// can be trusted to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubGone;

impl std::fmt::Display for HubGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the hub has stopped")
    }
}

impl std::error::Error for HubGone {}

/// Talks to the hub. Cheap to clone; the timer task ends when every handle is dropped.
///
/// Its methods are `async` so that a hub elsewhere (a broker, for scale-out) can take their
/// place; this one completes each at once.
#[derive(Clone)]
pub struct HubHandle {
    shared: Arc<Shared>,
    budget: Budget,
}

impl std::fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubHandle")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Told whenever a command's result comes in ([`Results`]).
    done: Event,
    /// The runtime's clock, read under the lock so the hub sees time only move forward.
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
    /// Wakes the timer task: the hub's next deadline moved earlier, or the hub was dropped.
    kick: Arc<Event>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.kick.notify(usize::MAX);
    }
}

struct State {
    hub: Hub,
    engine: Box<dyn EngineLink>,
    results: Results,
    mailboxes: Mailboxes,
    /// The deadline the timer task sleeps until (`None`: until it is kicked).
    armed: Option<Instant>,
}

/// Starts the hub's timer task on `runtime` and returns the handle every caller drives the hub
/// through, with `engine` keeping its streams. `mailbox` bounds what waits for each session,
/// the slack it has before it counts as a slow consumer (use the sessions' own queue budget,
/// [`Budget::default`] for the defaults).
pub fn spawn_hub<R: Runtime>(
    runtime: &R,
    hub: Hub,
    engine: impl EngineLink,
    mailbox: Budget,
) -> HubHandle {
    let kick = Arc::new(Event::new());
    let clock = runtime.clone();
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            hub,
            engine: Box::new(engine),
            results: Results::default(),
            mailboxes: Mailboxes::default(),
            armed: None,
        }),
        done: Event::new(),
        clock: Box::new(move || clock.now()),
        kick: Arc::clone(&kick),
    });
    runtime.spawn(run_timers(runtime.clone(), Arc::downgrade(&shared), kick));
    HubHandle {
        shared,
        budget: Budget {
            bytes: mailbox.bytes.max(1),
            frames: mailbox.frames.max(1),
        },
    }
}

impl HubHandle {
    /// Runs `operation` on the hub, then moves everything it caused until nothing moves: the
    /// hub's operations to the engine and the engine's events back, the hub's transmits to the
    /// mailboxes, the results of commands to their callers. All under the lock: the lock is the
    /// order, so every session sees every room's messages in one order.
    fn with<T>(&self, operation: impl FnOnce(&mut State, Instant) -> T) -> Result<T, HubGone> {
        let mut state = self.lock()?;
        let now = (self.shared.clock)();
        let output = operation(&mut state, now);
        let completed = state.settle(now);
        // A grace period or an expiry sooner than the timer task sleeps: wake it to re-arm.
        if let Some(next) = state.hub.poll_timeout()
            && state.armed.is_none_or(|armed| next < armed)
        {
            state.armed = Some(next);
            self.shared.kick.notify(1);
        }
        drop(state);
        if completed {
            self.shared.done.notify(usize::MAX);
        }
        Ok(output)
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, HubGone> {
        self.shared.state.lock().map_err(|_| HubGone)
    }

    /// Events of an engine that answers later (its own thread, a network link): the hub takes
    /// them in order, and what they cause moves on as after any input.
    pub fn engine_events(
        &self,
        events: impl IntoIterator<Item = EngineEvent>,
    ) -> Result<(), HubGone> {
        self.with(|state, now| {
            for event in events {
                state.hub.handle_engine(now, event);
                state.mailboxes.route(&mut state.hub, now);
            }
        })
    }

    /// Registers a connection; returns its session id and its mailbox.
    pub(crate) async fn connect(
        &self,
        connect: Connect,
    ) -> Result<(SessionId, Arc<Mailbox>), ConnectError> {
        let mailbox = Arc::new(Mailbox::new(self.budget));
        let session = self.with(|state, now| {
            let session = state.hub.connect(now, connect)?;
            state.mailboxes.insert(session, Arc::clone(&mailbox));
            Ok::<_, HubError>(session)
        })??;
        Ok((session, mailbox))
    }

    /// Hands a client's request from its session to the hub; its answers are in the session's
    /// mailbox when this returns, or come there once the engine has answered.
    pub async fn request(
        &self,
        session: SessionId,
        request: ClientEnvelope,
    ) -> Result<(), HubGone> {
        self.request_now(session, request)
    }

    /// As [`request`](Self::request), for the session driver, which cannot await.
    pub(crate) fn request_now(
        &self,
        session: SessionId,
        request: ClientEnvelope,
    ) -> Result<(), HubGone> {
        self.with(|state, now| state.hub.handle_request(now, session, request))
    }

    /// Admits a session to `room` once: a subscription token for it was checked
    /// ([`Hub::admit`](roomcast_core::hub::Hub::admit)).
    pub fn admit(&self, session: SessionId, room: RoomName) -> Result<(), HubGone> {
        self.with(|state, _| state.hub.admit(session, room))
    }

    /// Admits a session's next publish to `room`: the application's hook allowed it
    /// ([`Hub::admit_publish`](roomcast_core::hub::Hub::admit_publish)).
    pub fn admit_publish(&self, session: SessionId, room: RoomName) -> Result<(), HubGone> {
        self.with(|state, _| state.hub.admit_publish(session, room))
    }

    /// A session's credentials were renewed
    /// ([`Hub::set_grants`](roomcast_core::hub::Hub::set_grants)).
    pub fn set_grants(&self, session: SessionId, grants: Arc<Grants>) -> Result<(), HubGone> {
        self.with(|state, _| state.hub.set_grants(session, grants))
    }

    /// Removes a session (its connection ended).
    pub async fn disconnect(&self, session: SessionId) -> Result<(), HubGone> {
        self.leave(session)
    }

    /// Removes a session without waiting: for destructors.
    pub fn disconnect_now(&self, session: SessionId) {
        let _ = self.leave(session);
    }

    pub(crate) fn leave(&self, session: SessionId) -> Result<(), HubGone> {
        self.with(|state, now| {
            state.mailboxes.remove(session);
            state.hub.disconnect(now, session);
        })
    }

    /// Publishes to a room from the server, once the engine has stored it.
    pub async fn publish(
        &self,
        room: RoomName,
        data: Payload,
    ) -> Result<Result<Published, HubError>, HubGone> {
        self.publish_event(room, None, data).await
    }

    /// As [`publish`](Self::publish), the message named `event`.
    pub async fn publish_event(
        &self,
        room: RoomName,
        event: Option<SmolStr>,
        data: Payload,
    ) -> Result<Result<Published, HubError>, HubGone> {
        self.command(|hub, now| hub.publish_event(now, room, event, data))
            .await
    }

    /// Notifies a user (kept in their outbox, and delivered when they are away), once the
    /// engine has stored it.
    pub async fn notify(
        &self,
        user: UserId,
        event: Option<SmolStr>,
        data: Payload,
    ) -> Result<Result<Published, HubError>, HubGone> {
        self.command(|hub, now| hub.notify(now, user, event, data))
            .await
    }

    /// Broadcasts to every session following the broadcast feed, once the engine has stored
    /// it.
    pub async fn broadcast(
        &self,
        event: Option<SmolStr>,
        data: Payload,
    ) -> Result<Result<Published, HubError>, HubGone> {
        self.command(|hub, now| hub.broadcast(now, event, data))
            .await
    }

    /// Runs a command of the hub and waits for its result.
    async fn command(
        &self,
        command: impl FnOnce(&mut Hub, Instant) -> Ticket,
    ) -> Result<Result<Published, HubError>, HubGone> {
        match self.answer(command).await? {
            Answer::Stored(result) => Ok(result),
            Answer::Read(_) => unreachable!("a publish is answered by a publish"),
        }
    }

    /// Runs a command of the hub and waits for its answer.
    async fn answer(
        &self,
        command: impl FnOnce(&mut Hub, Instant) -> Ticket,
    ) -> Result<Answer, HubGone> {
        let ticket = self.with(|state, now| {
            let ticket = command(&mut state.hub, now);
            state.results.expect(ticket);
            ticket
        })?;
        // However this ends, even if this future is dropped (its caller went), the ticket
        // leaves the results.
        let waiting = Waiting {
            handle: self,
            ticket,
        };
        loop {
            // Listen before looking, so a result that comes in between is not missed.
            let listener = self.shared.done.listen();
            if let Some(result) = waiting.handle.lock()?.results.take(ticket) {
                return Ok(result);
            }
            listener.await;
        }
    }

    /// The hub's figures.
    pub async fn stats(&self) -> Result<HubStats, HubGone> {
        self.with(|state, _| {
            let stored = state.engine.stats();
            let hub = &state.hub;
            HubStats {
                sessions: hub.session_count(),
                rooms: hub.room_count(),
                users: hub.user_count(),
                stored_messages: stored.messages,
                stored_bytes: stored.bytes,
                rooms_with_history: stored.rooms_with_history,
                outboxes: stored.outboxes,
                pending_operations: hub.pending_operations(),
                slow_consumers: state.mailboxes.slow_consumers,
                receipts_lost: hub.receipts_lost(),
                presence_sent: hub.presence_sent(),
            }
        })
    }
}

/// A caller waiting for a command's result; dropped, its ticket leaves the results.
struct Waiting<'a> {
    handle: &'a HubHandle,
    ticket: Ticket,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.handle.lock() {
            state.results.abandon(self.ticket);
        }
    }
}

impl State {
    /// Moves everything until nothing moves; returns whether a command's result came in.
    fn settle(&mut self, now: Instant) -> bool {
        let mut completed = false;
        loop {
            self.mailboxes.route(&mut self.hub, now);
            let mut moved = false;
            while let Some(operation) = self.hub.poll_engine() {
                moved = true;
                self.engine.submit(now, operation);
            }
            while let Some(event) = self.engine.poll_event() {
                moved = true;
                self.hub.handle_engine(now, event);
                self.mailboxes.route(&mut self.hub, now);
            }
            while let Some(event) = self.hub.poll_event() {
                let Some((ticket, answer)) = Answer::of(event) else {
                    continue;
                };
                self.results.complete(ticket, answer);
                completed = true;
            }
            if !moved {
                return completed;
            }
        }
    }
}

/// Runs the hub's timers: sleeps until its next deadline, or until a caller moved that
/// deadline earlier; ends once every handle is gone.
async fn run_timers<R: Runtime>(runtime: R, shared: Weak<Shared>, kick: Arc<Event>) {
    loop {
        // Listen first: a kick between here and the sleep is not missed.
        let kicked = kick.listen();
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (deadline, completed) = {
            let Ok(mut state) = shared.state.lock() else {
                return; // poisoned: the hub has stopped
            };
            let now = (shared.clock)();
            let state = &mut *state;
            let mut completed = false;
            if state.hub.poll_timeout().is_some_and(|at| at <= now) {
                state.hub.handle_timeout(now);
                completed = state.settle(now);
            }
            state.armed = state.hub.poll_timeout();
            (state.armed, completed)
        };
        if completed {
            shared.done.notify(usize::MAX);
        }
        drop(shared);
        match deadline {
            Some(deadline) => future::or(runtime.sleep_until(deadline), kicked).await,
            None => kicked.await,
        }
    }
}

/// Why a connection could not be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The hub refused it (a limit).
    Refused(HubError),
    /// The hub has stopped.
    Gone,
}

impl From<HubGone> for ConnectError {
    fn from(_: HubGone) -> Self {
        Self::Gone
    }
}

impl From<HubError> for ConnectError {
    fn from(error: HubError) -> Self {
        Self::Refused(error)
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(error) => write!(f, "{error}"),
            Self::Gone => write!(f, "{HubGone}"),
        }
    }
}

impl std::error::Error for ConnectError {}
