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

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use event_listener::Event;
use futures_lite::future;
use roomcast_core::delivery::SessionId;
use roomcast_core::envelope::{ClientEnvelope, Payload};
use roomcast_core::hub::{Connect, Hub, HubError, Published, Transmit, recipients};
use roomcast_core::names::{RoomName, UserId};
use smol_str::SmolStr;

use crate::mailbox::{Budget, Mailbox, Pushed};
use crate::runtime::Runtime;

/// Figures of the hub, for status pages and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Live sessions.
    pub sessions: usize,
    /// Rooms with members.
    pub rooms: usize,
    /// Users with a session or stored messages.
    pub users: usize,
    /// Messages held in histories and outboxes.
    pub stored_messages: usize,
    /// Bytes of those messages.
    pub stored_bytes: usize,
    /// Sessions dropped as slow consumers since the start.
    pub slow_consumers: u64,
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
    mailboxes: Mailboxes,
    /// The deadline the timer task sleeps until (`None`: until it is kicked).
    armed: Option<Instant>,
}

/// Starts the hub's timer task on `runtime` and returns the handle every caller drives the hub
/// through. `mailbox` bounds what waits for each session, the slack it has before it counts as
/// a slow consumer (use the sessions' own queue budget, [`Budget::default`] for the defaults).
pub fn spawn_hub<R: Runtime>(runtime: &R, hub: Hub, mailbox: Budget) -> HubHandle {
    let kick = Arc::new(Event::new());
    let clock = runtime.clone();
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            hub,
            mailboxes: Mailboxes::default(),
            armed: None,
        }),
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
    /// Runs `operation` on the hub, then hands every output to the mailboxes, all under the
    /// lock: the lock is the order, so every session sees every room's messages in one order.
    fn with<T>(
        &self,
        operation: impl FnOnce(&mut Hub, &mut Mailboxes, Instant) -> T,
    ) -> Result<T, HubGone> {
        let mut state = self.shared.state.lock().map_err(|_| HubGone)?;
        let now = (self.shared.clock)();
        let state = &mut *state;
        let output = operation(&mut state.hub, &mut state.mailboxes, now);
        state.mailboxes.route(&mut state.hub, now);
        // A grace period or an expiry sooner than the timer task sleeps: wake it to re-arm.
        if let Some(next) = state.hub.poll_timeout() {
            if state.armed.is_none_or(|armed| next < armed) {
                state.armed = Some(next);
                self.shared.kick.notify(1);
            }
        }
        Ok(output)
    }

    /// Registers a connection; returns its session id and its mailbox.
    pub(crate) async fn connect(
        &self,
        connect: Connect,
    ) -> Result<(SessionId, Arc<Mailbox>), ConnectError> {
        let mailbox = Arc::new(Mailbox::new(self.budget));
        let session = self.with(|hub, mailboxes, now| {
            let session = hub.connect(now, connect)?;
            mailboxes.insert(session, Arc::clone(&mailbox));
            Ok::<_, HubError>(session)
        })??;
        Ok((session, mailbox))
    }

    /// Hands a client's request from its session to the hub; its answers are in the session's
    /// mailbox when this returns.
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
        self.with(|hub, _, now| hub.handle_request(now, session, request))
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
        self.with(|hub, mailboxes, now| {
            mailboxes.remove(session);
            hub.disconnect(now, session);
        })
    }

    /// Publishes to a room from the server.
    pub async fn publish(&self, room: RoomName, data: Payload) -> Result<Published, HubGone> {
        self.with(|hub, _, now| hub.publish(now, room, data))
    }

    /// Notifies a user (stored in their outbox if they are offline).
    pub async fn notify(
        &self,
        user: UserId,
        event: Option<SmolStr>,
        data: Payload,
    ) -> Result<Result<Published, HubError>, HubGone> {
        self.with(|hub, _, now| hub.notify(now, user, event, data))
    }

    /// Broadcasts to every session following the broadcast feed.
    pub async fn broadcast(
        &self,
        event: Option<SmolStr>,
        data: Payload,
    ) -> Result<Published, HubGone> {
        self.with(|hub, _, now| hub.broadcast(now, event, data))
    }

    /// The hub's figures.
    pub async fn stats(&self) -> Result<HubStats, HubGone> {
        self.with(|hub, mailboxes, _| {
            let (stored_messages, stored_bytes) = hub.stored();
            HubStats {
                sessions: hub.session_count(),
                rooms: hub.room_count(),
                users: hub.user_count(),
                stored_messages,
                stored_bytes,
                slow_consumers: mailboxes.slow_consumers,
            }
        })
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
        let deadline = {
            let Ok(mut state) = shared.state.lock() else {
                return; // poisoned: the hub has stopped
            };
            let now = (shared.clock)();
            let state = &mut *state;
            if state.hub.poll_timeout().is_some_and(|at| at <= now) {
                state.hub.handle_timeout(now);
                state.mailboxes.route(&mut state.hub, now);
            }
            state.armed = state.hub.poll_timeout();
            state.armed
        };
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

/// The sessions' mailboxes, indexed by `SessionId::index`.
#[derive(Default)]
struct Mailboxes {
    slots: Vec<Option<(SessionId, Arc<Mailbox>)>>,
    /// Sessions whose mailbox was full during the last drain: slow consumers.
    full: Vec<SessionId>,
    /// Sessions whose task ended, seen during the last drain.
    gone: Vec<SessionId>,
    slow_consumers: u64,
}

impl Mailboxes {
    fn insert(&mut self, session: SessionId, mailbox: Arc<Mailbox>) {
        let index = session.index();
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some((session, mailbox));
    }

    fn remove(&mut self, session: SessionId) {
        if let Some(slot) = self.slots.get_mut(session.index()) {
            if slot.as_ref().is_some_and(|(id, _)| *id == session) {
                if let Some((_, mailbox)) = slot.take() {
                    mailbox.drop_session(); // its task stops waiting for deliveries
                }
            }
        }
    }

    /// Never waits: a full mailbox marks the session as a slow consumer.
    fn deliver(&mut self, session: SessionId, push: impl FnOnce(&Mailbox) -> Pushed) {
        let Some(Some((id, mailbox))) = self.slots.get(session.index()) else {
            return; // gone since the fan-out was made
        };
        if *id != session {
            return;
        }
        match push(mailbox) {
            Pushed::Ok => {}
            Pushed::Full => self.full.push(session),
            // The session's task ended; its disconnect is on its way, or this makes it.
            Pushed::Gone => self.gone.push(session),
        }
    }

    /// Hands every output of the hub to the mailboxes, then drops the sessions that could not
    /// keep up; dropping one may produce more outputs, so until nothing is left.
    fn route(&mut self, hub: &mut Hub, now: Instant) {
        loop {
            while let Some(transmit) = hub.poll_transmit() {
                match transmit {
                    Transmit::To {
                        session,
                        deliveries,
                    } => self.deliver(session, |mailbox| mailbox.push_batch(deliveries)),
                    Transmit::Fanout {
                        sessions,
                        except,
                        delivery,
                    } => {
                        for session in recipients(&sessions, except) {
                            let delivery = delivery.clone();
                            self.deliver(session, |mailbox| mailbox.push_one(delivery));
                        }
                    }
                    _ => {}
                }
            }
            if self.full.is_empty() && self.gone.is_empty() {
                return;
            }
            self.slow_consumers += self.full.len() as u64;
            for session in std::mem::take(&mut self.full)
                .into_iter()
                .chain(std::mem::take(&mut self.gone))
            {
                self.remove(session);
                hub.disconnect(now, session);
            }
        }
    }
}
