//! The session driver: one future per connection, in the shape of quinn's `ConnectionDriver`.
//!
//! Each turn of [`SessionDriver::poll`] takes what its sources have (at most one frame from
//! the socket, everything waiting in the mailbox, the server's shutdown, the timer), hands the
//! session's requests to the hub, writes everything the session has in one flush, and sets the
//! one timer for the session's next deadline. It turns again while a turn fed the session
//! anything, and waits once a turn finds every source pending.
//!
//! Every source is looked at once per turn, so none starves another: a client that never stops
//! sending, a busy room and the timer each get their turn, and a frame is read only after the
//! answers to the one before it are written (a client is never read further ahead than one
//! write). Looking costs little: the socket and the timer are polled only once their bell rang
//! (`readiness.rs`), the shutdown is one atomic read, and the mailbox is the lock a delivery
//! takes anyway.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant, SystemTime};

use roomcast_core::access::Grants;
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::delivery::SessionId;
use roomcast_core::envelope::ClientEnvelope;
use roomcast_core::names::UserId;
use roomcast_core::session::{Session, SessionEvent, SessionState, Transmit};

mod hooks;
mod in_band;

use super::timing::{self, Armed, Grid, Plan};
use super::{Ended, SessionOptions};
use crate::credentials::{CredentialsRef, instant_of};
use crate::hooks::HooksRef;
use crate::hub::HubHandle;
use crate::mailbox::{Batch, Mailbox, RING_SOCKET, RING_TIMER};
use crate::observer::Observe;
use crate::readiness::{Belfry, Sources, bell};
use crate::runtime::{AsyncTimer, Runtime};
use crate::shutdown::{SessionGuard, Triggered};
use crate::transport::{Inbound, Transport};

/// Turns one poll takes at most before it lets other tasks run: an executor without a budget
/// (smol's) would otherwise run a client that never stops sending for as long as it sends.
const TURNS_PER_POLL: u32 = 32;

/// Deliveries a session's batch buffer keeps room for between batches (a pointer each).
const KEPT_BATCH_CAPACITY: usize = 64;

/// One session's run loop as a future: it ends with the session. Dropped midway (its
/// connection went), the session still leaves the hub and its end is reported.
///
/// The fields a delivery reads come first, together: at 10,000 sessions a fan-out finds every
/// session's driver cold, and each cache line a delivery touches is a miss (`repr(C)`, in this
/// order: the loop's own fields, then the transport, whose hot fields lead it, then the
/// session's hot head; docs/performance.md, "Cache lines per delivery").
#[repr(C)]
pub struct SessionDriver<R: Runtime, T> {
    /// Inputs were fed to the session since its last write: write, then set the timer.
    dirty: bool,
    /// Transmits were handed to the transport that no flush has written yet.
    unflushed: bool,
    /// The session has left the hub, or the hub let go of it.
    left: bool,
    /// Which of the socket and the timer wait for their bell.
    sources: Sources,
    /// A write the socket has not taken yet, begun at this moment: until it is done, only
    /// the write and its deadline are looked at.
    stalled: Option<Instant>,
    /// Deliveries taken from the mailbox; it and the mailbox take turns with two buffers.
    batch: Batch,
    mailbox: Arc<Mailbox>,
    observe: Observe,
    transport_name: &'static str,
    write_timeout: Duration,
    grid: Grid,
    /// What the timer is set for; `None`: not polled.
    armed: Option<Armed>,
    /// Made at the first deadline, then reset.
    timer: Option<R::Timer>,
    /// Until the server shuts down; `None` once it has said so.
    shutdown: Option<Triggered>,
    /// The wakers the socket's reads and the timer are polled with: they ring the mailbox.
    socket_bell: Waker,
    timer_bell: Waker,
    transport: T,
    session: Session,
    runtime: R,
    hub: HubHandle,
    id: SessionId,
    /// Checks the tokens presented in band.
    credentials: Option<CredentialsRef>,
    /// Asks the application about joins and publishes.
    hooks: Option<HooksRef>,
    /// What the session's credentials grant, for the hooks.
    grants: Arc<Grants>,
    /// A request waiting for a hook's answer: no frame is read meanwhile.
    waiting: Option<Box<hooks::Waiting>>,
    /// The end, once reported.
    reported: bool,
    /// Counts the session as live for [`Shutdown::drained`](crate::Shutdown::drained) until
    /// the driver is gone.
    _live: SessionGuard,
}

// The driver never pins its fields (each is polled through `&mut`), so it may move when pinned.
impl<R: Runtime, T> Unpin for SessionDriver<R, T> {}

impl<R: Runtime, T: Transport> SessionDriver<R, T> {
    pub(super) fn new(
        runtime: R,
        transport: T,
        hub: HubHandle,
        id: SessionId,
        user: UserId,
        mailbox: Arc<Mailbox>,
        options: SessionOptions,
    ) -> Self {
        let _live = options.shutdown.enter();
        options.observe.0.opened(options.transport);
        let now = runtime.now();
        let mut session = Session::new(options.kind, options.config, options.codec, now);
        session.accept(now, id, user);
        Self {
            dirty: true,
            unflushed: false,
            left: false,
            sources: Sources::default(),
            stalled: None,
            batch: Batch::default(),
            socket_bell: bell(&mailbox, RING_SOCKET),
            timer_bell: bell(&mailbox, RING_TIMER),
            mailbox,
            observe: options.observe,
            transport_name: options.transport,
            write_timeout: options.write_timeout,
            grid: Grid {
                anchor: grid_anchor(now),
                slack: options.timer_slack,
            },
            armed: None,
            timer: None,
            shutdown: Some(options.shutdown.triggered()),
            transport,
            session,
            runtime,
            hub,
            id,
            credentials: options.credentials,
            hooks: options.hooks,
            grants: Grants::none(),
            waiting: None,
            reported: false,
            _live,
        }
    }
}

impl<R: Runtime, T> SessionDriver<R, T> {
    /// The session's credentials: what they grant, and when they expire (see
    /// [`Session::set_expiry`]).
    pub(super) fn credentials(mut self, grants: Arc<Grants>, at: Option<SystemTime>) -> Self {
        self.grants = grants;
        if let Some(at) = at {
            let now = self.runtime.now();
            self.session.set_expiry(now, instant_of(now, at));
        }
        self
    }
}

impl<R: Runtime, T: Transport> Future for SessionDriver<R, T> {
    type Output = Ended;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ended> {
        let this = self.get_mut();
        for _ in 0..TURNS_PER_POLL {
            // The clock, read once a turn and only if something needs it: a delivery's write
            // goes out at the moment it came.
            let mut now = None;
            let rung = this.mailbox.rung().get();
            let mut fed = false;
            if this.stalled.is_none() {
                if this.waiting.is_none() {
                    match this.drive_recv(cx, rung, &mut now) {
                        Ok(got) => fed |= got,
                        Err(ended) => return this.finish(ended),
                    }
                } else {
                    fed |= this.drive_hook(cx, &mut now);
                }
                fed |= this.drive_deliveries(cx, &mut now);
                fed |= this.drive_shutdown(cx, &mut now);
            }
            match this.drive_timer_expiry(rung, &mut now) {
                Ok(expired) => fed |= expired,
                Err(ended) => return this.finish(ended),
            }
            if !fed && !this.dirty && this.stalled.is_none() {
                return this.wait(cx);
            }
            this.drive_events(&mut now);
            match this.drive_transmit(cx, &mut now) {
                Poll::Ready(Ok(())) => this.stalled = None,
                Poll::Ready(Err(_)) => return this.finish(Ended::Lost),
                Poll::Pending => {
                    let now = this.now(&mut now);
                    this.stalled.get_or_insert(now);
                }
            }
            if this.stalled.is_none() && this.session.state() == SessionState::Closed {
                let ended = this.session.close_reason().cloned();
                return this.finish(ended.map_or(Ended::Lost, Ended::Closed));
            }
            this.drive_timer(&mut now);
            this.dirty = false;
            if this.stalled.is_some() {
                return this.wait(cx);
            }
        }
        // A client that never stops sending: let other tasks run, then go on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<R: Runtime, T: Transport> SessionDriver<R, T> {
    /// The turn's clock reading, taken at the first call.
    fn now(&self, now: &mut Option<Instant>) -> Instant {
        *now.get_or_insert_with(|| self.runtime.now())
    }

    /// At most one frame from the socket, fed to the session: the answers to it are written
    /// before the next is read. `Err` once the connection is gone.
    fn drive_recv(
        &mut self,
        cx: &mut Context<'_>,
        rung: u8,
        now: &mut Option<Instant>,
    ) -> Result<bool, Ended> {
        let polled = if T::RECV_WAKES {
            let (transport, bell) = (&mut self.transport, &self.socket_bell);
            let memo = self.mailbox.rung();
            self.sources.poll(rung, RING_SOCKET, memo, || {
                transport.poll_recv(&mut Context::from_waker(bell))
            })
        } else {
            self.transport.poll_recv(cx)
        };
        let frame = match polled {
            Poll::Pending => return Ok(false),
            Poll::Ready(None) => return Err(Ended::Lost),
            Poll::Ready(Some(frame)) => frame,
        };
        let now = self.now(now);
        let session = &mut self.session;
        // SSE sessions have no inbound frames; a transport that yields one is ignored.
        let _ = match frame {
            Inbound::Text(text) => session.handle_text(now, &text),
            Inbound::Binary(bytes) => session.handle_binary(now, &bytes),
            Inbound::Pong => session.handle_pong(now),
            Inbound::Close(close) => {
                session.handle_close(now, close);
                Ok(())
            }
            Inbound::Failed(close) => {
                session.close(now, close);
                Ok(())
            }
        };
        Ok(true)
    }

    /// Everything waiting in the mailbox, fed to the session as one batch, so it goes out in
    /// one write. A session that is closing no longer takes deliveries.
    fn drive_deliveries(&mut self, cx: &mut Context<'_>, now: &mut Option<Instant>) -> bool {
        if !self.session.is_open() {
            return false;
        }
        match self.mailbox.poll_take(cx, &mut self.batch) {
            Poll::Pending => false,
            Poll::Ready(taken) => {
                let now = self.now(now);
                self.take_batch(now, taken);
                true
            }
        }
    }

    /// Hands what the mailbox gave to the session: a batch (`true`), or the news that the hub
    /// let go of the session, a slow consumer (`false`).
    fn take_batch(&mut self, now: Instant, taken: bool) {
        if taken {
            self.session.deliver_batch(now, self.batch.drain());
            self.batch.recycle(KEPT_BATCH_CAPACITY);
        } else {
            self.left = true;
            self.session.close(now, self.mailbox.dropped_close());
        }
    }

    /// The server's shutdown, told to the session once.
    fn drive_shutdown(&mut self, cx: &mut Context<'_>, now: &mut Option<Instant>) -> bool {
        let told = !self.session.is_open() || self.session.is_shutting_down();
        let Some(triggered) = self.shutdown.as_mut().filter(|_| !told) else {
            return false;
        };
        let Poll::Ready(reconnect_ms) = Pin::new(&mut *triggered).poll(cx) else {
            return false;
        };
        let window = triggered.window_ms();
        // A finished future is not polled again.
        self.shutdown = None;
        let now = self.now(now);
        self.session
            .shutdown(now, jittered(reconnect_ms, window, self.id));
        true
    }

    /// The timer, if it rang and expired: the session's deadline, or `Err` for a write that
    /// did not finish in time.
    fn drive_timer_expiry(&mut self, rung: u8, now: &mut Option<Instant>) -> Result<bool, Ended> {
        if self.poll_timer(rung).is_pending() {
            return Ok(false);
        }
        self.armed = None;
        if self.stalled.is_some() {
            return Err(Ended::Lost);
        }
        let now = self.now(now);
        self.session.handle_timeout(now);
        Ok(true)
    }

    /// Polls the timer, if it is set, with its bell: unless it waits for its bell already.
    fn poll_timer(&mut self, rung: u8) -> Poll<()> {
        let Some(timer) = self.timer.as_mut().filter(|_| self.armed.is_some()) else {
            return Poll::Pending;
        };
        let bell = &self.timer_bell;
        let memo = self.mailbox.rung();
        self.sources.poll(rung, RING_TIMER, memo, || {
            timer.poll_expired(&mut Context::from_waker(bell))
        })
    }

    /// The session's requests to the hub, which runs them inline: their answers are in the
    /// mailbox at once, and go out in this turn's write, so a client that pipelines requests
    /// gets its answers as fast as it sends.
    fn drive_events(&mut self, now: &mut Option<Instant>) {
        let mut asked = false;
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Request(request) | SessionEvent::App(request) => {
                    let kind = request.message.kind();
                    self.observe.0.inbound(self.transport_name, kind);
                    let Some(request) = self.vet(request, now) else {
                        continue;
                    };
                    let Some(request) = self.ask(request) else {
                        continue;
                    };
                    asked = true;
                    self.hand_over(request, now);
                }
                SessionEvent::Pinged => self.observe.0.inbound(self.transport_name, "ping"),
                SessionEvent::Closed(_) => {
                    self.left = true;
                    self.waiting = None;
                    let _ = self.hub.leave(self.id);
                }
                _ => {}
            }
        }
        if asked
            && self.session.is_open()
            && let Some(taken) = self.mailbox.try_take(&mut self.batch)
        {
            let now = self.now(now);
            self.take_batch(now, taken);
        }
    }

    /// Hands a request to the hub, which answers it inline (or once the engine has).
    fn hand_over(&mut self, request: ClientEnvelope, now: &mut Option<Instant>) {
        if self.hub.request_now(self.id, request).is_err() {
            let now = self.now(now);
            let close = Close::new(CloseCode::Internal, "the hub has stopped");
            self.session.close(now, close);
        }
    }

    /// A request a hook let through: to the hub, and its answers into this turn's write.
    fn forward(&mut self, request: ClientEnvelope, now: &mut Option<Instant>) {
        self.hand_over(request, now);
        if self.session.is_open()
            && let Some(taken) = self.mailbox.try_take(&mut self.batch)
        {
            let now = self.now(now);
            self.take_batch(now, taken);
        }
    }

    /// Every transmit of the session into the transport, then one flush.
    fn drive_transmit(
        &mut self,
        cx: &mut Context<'_>,
        now: &mut Option<Instant>,
    ) -> Poll<io::Result<()>> {
        let now = self.now(now);
        loop {
            ready!(self.transport.poll_ready(cx))?;
            let Some(transmit) = self.session.poll_transmit(now) else {
                break;
            };
            if let Transmit::Frame(delivery) = &transmit {
                let frame = delivery.frame.as_str();
                self.observe.0.outbound(self.transport_name, frame);
            }
            self.transport.start_send(transmit)?;
            self.unflushed = true;
        }
        if self.unflushed || self.transport.wants_flush() {
            ready!(self.transport.poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Sets the one timer: for a write that waits, its deadline; else the session's next
    /// deadline, on the grid, unless the timer is kept (`timing.rs`).
    fn drive_timer(&mut self, now: &mut Option<Instant>) {
        let plan = match self.stalled {
            Some(since) => timing::exactly(self.armed, since + self.write_timeout),
            None => {
                let now = self.now(now);
                timing::keep_or_reset(self.armed, self.session.poll_timeout(), now, self.grid)
            }
        };
        match plan {
            Plan::Keep => return,
            Plan::Set { wake, armed } => {
                match &mut self.timer {
                    Some(timer) => timer.reset(wake),
                    None => self.timer = Some(self.runtime.new_timer(wake)),
                }
                self.armed = Some(armed);
            }
            Plan::Idle => self.armed = None,
        }
        // Moved: its next poll goes through.
        self.sources.forget(RING_TIMER);
    }

    /// Every source is pending with a waker in place.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<Ended> {
        // A session that does not take deliveries still wakes for its bells.
        if !self.session.is_open() || self.stalled.is_some() {
            self.mailbox.listen(cx);
        }
        // A timer set for a write that waits has not been polled yet: its bell is not in place.
        if self.poll_timer(self.mailbox.rung().get()).is_ready() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // The task's waker is in the mailbox now. A source that rang while it was out (taken by
        // the push or ring that woke this poll) woke nobody: poll again soon. A self-wake, not
        // a loop here: a source may ring from its own poll.
        if self.sources.missed(self.mailbox.rung()) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// The session has ended: it leaves the hub, and its end is reported. A connection lost
    /// after the session closed itself, or after the hub let go of it as a slow consumer, is
    /// reported with that reason, not as a loss.
    fn finish(&mut self, ended: Ended) -> Poll<Ended> {
        let why = match (&ended, self.session.close_reason()) {
            (Ended::Lost, Some(close)) => Ended::Closed(close.clone()),
            // The hub let go of it while its socket took nothing (a write that timed out): a
            // slow consumer (or a session the API disconnected) whose close could not be
            // written.
            (Ended::Lost, None) if !self.left && self.mailbox.was_dropped() => {
                Ended::Closed(self.mailbox.dropped_close())
            }
            _ => ended.clone(),
        };
        if !self.left {
            self.left = true;
            let _ = self.hub.leave(self.id);
        }
        self.reported = true;
        self.observe.0.closed(self.transport_name, &why);
        Poll::Ready(ended)
    }
}

impl<R: Runtime, T> Drop for SessionDriver<R, T> {
    fn drop(&mut self) {
        self.mailbox.close();
        if !self.left {
            self.hub.disconnect_now(self.id);
        }
        if !self.reported {
            let why = self
                .session
                .close_reason()
                .cloned()
                .map_or(Ended::Lost, Ended::Closed);
            self.observe.0.closed(self.transport_name, &why);
        }
    }
}

/// The reconnect hint for one session: `hint`, then a point of the window after it (half the
/// hint, or the shutdown's window sized to the sessions, whichever is longer), spread over the
/// sessions by their ids, so that they do not all come back in the same instant.
fn jittered(hint: u64, window: u64, id: SessionId) -> u64 {
    let spread = (hint / 2).max(window) + 1;
    let mixed = id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    hint.saturating_add(mixed % spread)
}

/// Where the timers' grid starts: the first session's start, for every session of the process.
fn grid_anchor(now: Instant) -> Instant {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    *ANCHOR.get_or_init(|| now)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
