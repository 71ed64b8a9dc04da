//! The hub task: one task owns the [`Hub`]; sessions and the application talk to it through a
//! [`HubHandle`]. It never waits on a session: deliveries go into each session's mailbox, bounded
//! by a [`Budget`], and a session whose mailbox is over budget is dropped as a slow consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use async_channel::{Receiver, Sender};
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

enum Command {
    Connect {
        connect: Connect,
        mailbox: Arc<Mailbox>,
        reply: Sender<Result<SessionId, HubError>>,
    },
    Request {
        session: SessionId,
        request: ClientEnvelope,
        /// Held until the hub has handled the request: see [`InFlight`].
        ticket: Option<Ticket>,
    },
    Disconnect {
        session: SessionId,
    },
    Publish {
        room: RoomName,
        data: Payload,
        reply: Sender<Published>,
    },
    Notify {
        user: UserId,
        event: Option<SmolStr>,
        data: Payload,
        reply: Sender<Result<Published, HubError>>,
    },
    Broadcast {
        event: Option<SmolStr>,
        data: Payload,
        reply: Sender<Published>,
    },
    Stats {
        reply: Sender<HubStats>,
    },
}

/// The hub task is gone (it stopped, or every handle was dropped and it finished).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubGone;

impl std::fmt::Display for HubGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the hub task has stopped")
    }
}

impl std::error::Error for HubGone {}

/// Talks to the hub task. Cheap to clone; the task ends when every handle is dropped.
#[derive(Clone, Debug)]
pub struct HubHandle {
    commands: Sender<Command>,
    budget: Budget,
}

/// Starts the hub task on `runtime`. `command_capacity` bounds the commands waiting for it (a
/// full queue makes senders wait: back-pressure, not loss); `mailbox` bounds what waits for
/// each session, the slack it has before it counts as a slow consumer (use the sessions' own
/// queue budget, [`Budget::default`] for the defaults).
pub fn spawn_hub<R: Runtime>(
    runtime: &R,
    hub: Hub,
    command_capacity: usize,
    mailbox: Budget,
) -> HubHandle {
    let (commands, receiver) = async_channel::bounded(command_capacity.max(1));
    runtime.spawn(run_hub(runtime.clone(), hub, receiver));
    HubHandle {
        commands,
        budget: Budget {
            bytes: mailbox.bytes.max(1),
            frames: mailbox.frames.max(1),
        },
    }
}

impl HubHandle {
    /// Registers a connection; returns its session id and its mailbox.
    pub(crate) async fn connect(
        &self,
        connect: Connect,
    ) -> Result<(SessionId, Arc<Mailbox>), ConnectError> {
        let mailbox = Arc::new(Mailbox::new(self.budget));
        let (reply, answer) = async_channel::bounded(1);
        self.send(Command::Connect {
            connect,
            mailbox: Arc::clone(&mailbox),
            reply,
        })
        .await?;
        let session = answer.recv().await.map_err(|_| HubGone)??;
        Ok((session, mailbox))
    }

    /// Forwards a client's request from its session.
    pub async fn request(
        &self,
        session: SessionId,
        request: ClientEnvelope,
    ) -> Result<(), HubGone> {
        self.send(Command::Request {
            session,
            request,
            ticket: None,
        })
        .await
    }

    /// Forwards a session's request, holding `ticket` until the hub has handled it.
    pub(crate) async fn request_with(
        &self,
        session: SessionId,
        request: ClientEnvelope,
        ticket: Ticket,
    ) -> Result<(), HubGone> {
        self.send(Command::Request {
            session,
            request,
            ticket: Some(ticket),
        })
        .await
    }

    /// How many of one session's requests may wait for the hub at once: at most a quarter of
    /// its mailbox, so their answers always fit in it (see [`InFlight`]).
    pub(crate) fn requests_in_flight(&self) -> usize {
        (self.budget.frames / 4).clamp(1, 256)
    }

    /// Removes a session (its connection ended).
    pub async fn disconnect(&self, session: SessionId) -> Result<(), HubGone> {
        self.send(Command::Disconnect { session }).await
    }

    /// Removes a session without waiting: for destructors. If the command queue is full, the
    /// hub removes the session at its next delivery instead (its mailbox is closed by then).
    pub fn disconnect_now(&self, session: SessionId) {
        let _ = self.commands.try_send(Command::Disconnect { session });
    }

    /// Publishes to a room from the server.
    pub async fn publish(&self, room: RoomName, data: Payload) -> Result<Published, HubGone> {
        let (reply, answer) = async_channel::bounded(1);
        self.send(Command::Publish { room, data, reply }).await?;
        answer.recv().await.map_err(|_| HubGone)
    }

    /// Notifies a user (stored in their outbox if they are offline).
    pub async fn notify(
        &self,
        user: UserId,
        event: Option<SmolStr>,
        data: Payload,
    ) -> Result<Result<Published, HubError>, HubGone> {
        let (reply, answer) = async_channel::bounded(1);
        self.send(Command::Notify {
            user,
            event,
            data,
            reply,
        })
        .await?;
        answer.recv().await.map_err(|_| HubGone)
    }

    /// Broadcasts to every session following the broadcast feed.
    pub async fn broadcast(
        &self,
        event: Option<SmolStr>,
        data: Payload,
    ) -> Result<Published, HubGone> {
        let (reply, answer) = async_channel::bounded(1);
        self.send(Command::Broadcast { event, data, reply }).await?;
        answer.recv().await.map_err(|_| HubGone)
    }

    /// The hub's figures.
    pub async fn stats(&self) -> Result<HubStats, HubGone> {
        let (reply, answer) = async_channel::bounded(1);
        self.send(Command::Stats { reply }).await?;
        answer.recv().await.map_err(|_| HubGone)
    }

    async fn send(&self, command: Command) -> Result<(), HubGone> {
        self.commands.send(command).await.map_err(|_| HubGone)
    }
}

/// Why a connection could not be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The hub refused it (a limit).
    Refused(HubError),
    /// The hub task is gone.
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

/// One session's requests that the hub has not handled yet.
///
/// The hub answers each request into the session's bounded mailbox, and never waits: a client
/// that pipelines more requests than the mailbox holds would be dropped as a slow consumer
/// although it reads every answer. So a session forwards a request only with a
/// [`Ticket`], and stops reading its client while [`HubHandle::requests_in_flight`] are out:
/// the client's own TCP window then holds the rest.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    handled: event_listener::Event,
}

impl InFlight {
    /// A ticket, once fewer than `limit` requests are in flight. Only the session's own task
    /// takes tickets, so the count cannot rise between the check and the take.
    pub(crate) async fn ticket(self: &Arc<Self>, limit: usize) -> Ticket {
        loop {
            if self.count.load(Ordering::Acquire) < limit {
                self.count.fetch_add(1, Ordering::AcqRel);
                return Ticket(Arc::clone(self));
            }
            let listener = self.handled.listen();
            if self.count.load(Ordering::Acquire) < limit {
                continue;
            }
            listener.await;
        }
    }
}

/// A request in flight; dropped by the hub once handled.
#[derive(Debug)]
pub(crate) struct Ticket(Arc<InFlight>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.handled.notify(usize::MAX);
    }
}

/// The sessions' mailboxes, indexed by `SessionId::index`.
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
}

/// Inputs a task handles in a row before it lets others run.
pub(crate) const YIELD_EVERY: u64 = 32;

async fn run_hub<R: Runtime>(runtime: R, mut hub: Hub, commands: Receiver<Command>) {
    let mut handled: u64 = 0;
    let mut mailboxes = Mailboxes {
        slots: Vec::new(),
        full: Vec::new(),
        gone: Vec::new(),
        slow_consumers: 0,
    };
    loop {
        // Drain every output, then drop the sessions that could not keep up; dropping one may
        // produce more outputs, so until nothing is left.
        loop {
            while let Some(transmit) = hub.poll_transmit() {
                match transmit {
                    Transmit::To {
                        session,
                        deliveries,
                    } => mailboxes.deliver(session, |mailbox| mailbox.push_batch(deliveries)),
                    Transmit::Fanout {
                        sessions,
                        except,
                        delivery,
                    } => {
                        for session in recipients(&sessions, except) {
                            let delivery = delivery.clone();
                            mailboxes.deliver(session, |mailbox| mailbox.push_one(delivery));
                        }
                    }
                    _ => {}
                }
            }
            if mailboxes.full.is_empty() && mailboxes.gone.is_empty() {
                break;
            }
            let now = runtime.now();
            mailboxes.slow_consumers += mailboxes.full.len() as u64;
            for session in std::mem::take(&mut mailboxes.full)
                .into_iter()
                .chain(std::mem::take(&mut mailboxes.gone))
            {
                mailboxes.remove(session);
                hub.disconnect(now, session);
            }
        }
        // Then wait for exactly one input: a command, or the hub's next timer.
        let command = match hub.poll_timeout() {
            Some(deadline) => {
                let timer = async {
                    runtime.sleep_until(deadline).await;
                    None
                };
                // Fair: a stream of commands must not starve the timers (grace periods, expiry).
                futures_lite::future::race(async { Some(commands.recv().await) }, timer).await
            }
            None => Some(commands.recv().await),
        };
        let now = runtime.now();
        handled += 1;
        if handled % YIELD_EVERY == 0 {
            // An executor without a budget (smol's) would otherwise run this task for as long
            // as commands keep coming, and every session on its thread would wait.
            futures_lite::future::yield_now().await;
        }
        match command {
            None => hub.handle_timeout(now),
            Some(Ok(command)) => handle(&mut hub, &mut mailboxes, now, command),
            Some(Err(_)) => return, // every handle is gone
        }
    }
}

fn handle(hub: &mut Hub, mailboxes: &mut Mailboxes, now: Instant, command: Command) {
    // A reply nobody waits for any more is not an error: its sender gave up.
    match command {
        Command::Connect {
            connect,
            mailbox,
            reply,
        } => {
            let result = hub.connect(now, connect);
            if let Ok(session) = result {
                mailboxes.insert(session, mailbox);
            }
            let _ = reply.try_send(result);
        }
        Command::Request {
            session,
            request,
            ticket,
        } => {
            hub.handle_request(now, session, request);
            drop(ticket); // handled: its answers are queued
        }
        Command::Disconnect { session } => {
            mailboxes.remove(session);
            hub.disconnect(now, session);
        }
        Command::Publish { room, data, reply } => {
            let _ = reply.try_send(hub.publish(now, room, data));
        }
        Command::Notify {
            user,
            event,
            data,
            reply,
        } => {
            let _ = reply.try_send(hub.notify(now, user, event, data));
        }
        Command::Broadcast { event, data, reply } => {
            let _ = reply.try_send(hub.broadcast(now, event, data));
        }
        Command::Stats { reply } => {
            let (stored_messages, stored_bytes) = hub.stored();
            let _ = reply.try_send(HubStats {
                sessions: hub.session_count(),
                rooms: hub.room_count(),
                users: hub.user_count(),
                stored_messages,
                stored_bytes,
                slow_consumers: mailboxes.slow_consumers,
            });
        }
    }
}
