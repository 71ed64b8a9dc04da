//! The session run loop: one task per connection drives a [`Session`] between its transport, its
//! mailbox (what the hub left for it) and its timer.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use futures_lite::future;
use roomcast_core::close::{Close, CloseCode};
use roomcast_core::delivery::SessionId;
use roomcast_core::envelope::Codec;
use roomcast_core::hub::Connect;
use roomcast_core::names::UserId;
use roomcast_core::session::{
    Session, SessionConfig, SessionEvent, SessionKind, SessionState, Transmit,
};

use crate::hub::{ConnectError, HubHandle};
use crate::mailbox::{Batch, Mailbox, RING_SOCKET, RING_TIMER};
use crate::observer::Observe;
use crate::runtime::Runtime;
use crate::shutdown::{Shutdown, Triggered};
use crate::transport::{Inbound, Transport};

/// Inputs a session handles in a row before it lets other tasks run: an executor without a
/// budget (smol's) would otherwise run a client that never stops sending for as long as it sends.
const YIELD_EVERY: u64 = 32;

/// How a session runs.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// WebSocket or SSE.
    pub kind: SessionKind,
    /// The session's limits and timings.
    pub config: SessionConfig,
    /// The codec (frame limit, application message types).
    pub codec: Codec,
    /// Longest a write may take before the connection counts as dead: 10 s.
    pub write_timeout: Duration,
    /// The server's shutdown switch (see [`Shutdown`]); the default is never triggered.
    pub shutdown: Shutdown,
    /// Who hears about the session, for metrics; the default ignores everything.
    pub observe: Observe,
    /// The transport's name in those reports: `"websocket"` by default.
    pub transport: &'static str,
    /// How late the session's timer may fire, at most: 250 ms by default, zero for exact
    /// timers. A deadline is put off to a point of a grid every session shares, at most 1/16
    /// of the time left to it, so the heartbeats of 10,000 sessions wake the server a few times
    /// a second, not 400 times.
    pub timer_slack: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            kind: SessionKind::WebSocket,
            config: SessionConfig::default(),
            codec: Codec::new(),
            write_timeout: Duration::from_secs(10),
            shutdown: Shutdown::new(),
            observe: Observe::default(),
            transport: "websocket",
            timer_slack: DEFAULT_TIMER_SLACK,
        }
    }
}

/// The default [`SessionOptions::timer_slack`].
pub const DEFAULT_TIMER_SLACK: Duration = Duration::from_millis(250);

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It closed with this (sent or received).
    Closed(Close),
    /// The connection dropped or a write timed out, without a close.
    Lost,
}

/// A connection registered with the hub whose session has not started yet: what
/// [`HubHandle::register`] returns, so an HTTP handler can refuse a connection the hub refuses
/// before it sends a response. Dropping it unrun removes it from the hub.
#[derive(Debug)]
pub struct Registered {
    hub: HubHandle,
    id: SessionId,
    user: UserId,
    mailbox: Option<Arc<Mailbox>>,
}

impl Registered {
    /// Its session id.
    pub fn id(&self) -> SessionId {
        self.id
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(mailbox) = &self.mailbox {
            // Never run: it leaves the hub now.
            mailbox.close();
            self.hub.disconnect_now(self.id);
        }
    }
}

impl HubHandle {
    /// Registers a connection with the hub, for [`run_registered`].
    pub async fn register(&self, connect: Connect) -> Result<Registered, ConnectError> {
        let user = connect.user.clone();
        let (id, mailbox) = self.connect(connect).await?;
        Ok(Registered {
            hub: self.clone(),
            id,
            user,
            mailbox: Some(mailbox),
        })
    }
}

/// Registers the connection with the hub, then runs its session until it ends: drain every
/// output (events to the hub, transmits to the transport, flushed in one write), then wait for
/// exactly one input (a frame, a hub delivery, or the timer) and feed it in. No lock is held, and
/// nothing awaits another session.
pub async fn run_session<R: Runtime, T: Transport>(
    runtime: &R,
    hub: &HubHandle,
    transport: T,
    connect: Connect,
    options: SessionOptions,
) -> Result<Ended, ConnectError> {
    let registered = hub.register(connect).await?;
    Ok(run_registered(runtime, transport, registered, options).await)
}

/// Runs the session of a connection already [registered](HubHandle::register), as
/// [`run_session`] does.
pub async fn run_registered<R: Runtime, T: Transport>(
    runtime: &R,
    transport: T,
    mut registered: Registered,
    options: SessionOptions,
) -> Ended {
    let _live = options.shutdown.enter();
    let hub = registered.hub.clone();
    let hub = &hub;
    let id = registered.id;
    let mailbox = registered.mailbox.take().expect("a registration runs once");
    // However this ends, even if this future is dropped midway (its connection went), the
    // session leaves the hub.
    let mut leave = Leave {
        hub,
        id,
        mailbox: &mailbox,
        left: false,
    };
    let (observer, transport_name) = (options.observe.0.as_ref(), options.transport);
    // Reports the end however the session ends, even if this future is dropped midway.
    let mut report = Report {
        observer,
        transport: transport_name,
        ended: None,
    };
    observer.opened(transport_name);
    let start = runtime.now();
    let session = Session::new(options.kind, options.config, options.codec, start);
    let mut hot = Hot {
        phase: Phase::Write,
        unflushed: false,
        inputs: 0,
        batch: Batch::default(),
        mailbox: &mailbox,
        observer,
        transport_name,
        write_timeout: options.write_timeout,
        timer_slack: options.timer_slack,
        waits: Waits::new(&mailbox, Some(options.shutdown.triggered())),
        session,
        transport,
    };
    hot.session
        .accept(runtime.now(), id, registered.user.clone());
    // An event the common path came upon, for the events' loop.
    let mut first_event = None;
    let ended = loop {
        // Events first (a request's answers come back through the mailbox), then transmits.
        let mut asked = false;
        while let Some(event) = first_event.take().or_else(|| hot.session.poll_event()) {
            match event {
                SessionEvent::Request(request) | SessionEvent::App(request) => {
                    observer.inbound(transport_name, request.message.kind());
                    asked = true;
                    if hub.request(id, request).await.is_err() {
                        hot.session.close(
                            runtime.now(),
                            Close::new(CloseCode::Internal, "the hub has stopped"),
                        );
                    }
                }
                SessionEvent::Closed(_) => {
                    leave.left = true;
                    let _ = hub.disconnect(id).await;
                }
                _ => {}
            }
        }
        // The answers are in the mailbox already: they go out in this write, so a client that
        // pipelines requests gets its answers as fast as it sends, and is never read further
        // ahead than one write.
        if asked && hot.session.is_open() {
            match mailbox.try_take(&mut hot.batch) {
                Some(true) => deliver(runtime.now(), &mut hot.session, &mut hot.batch),
                Some(false) => {
                    leave.left = true; // the hub let go
                    slow_consumer(runtime, &mut hot.session);
                }
                None => {}
            }
        }
        let input = match poll_fn(|cx| hot.poll_step(cx, runtime)).await {
            Step::Input(input) => input,
            Step::Event(event) => {
                first_event = Some(event);
                continue;
            }
            Step::Stalled(since) => {
                // Most writes complete at once; only one that has to wait gets a timer.
                let deadline = since + hot.write_timeout;
                let rest = poll_fn(|cx| hot.poll_write(cx, runtime.now()));
                let stalled = async {
                    runtime.sleep_until(deadline).await;
                    Err(std::io::ErrorKind::TimedOut.into())
                };
                if future::or(rest, stalled).await.is_err() {
                    break Ended::Lost;
                }
                continue;
            }
            Step::Lost => break Ended::Lost,
            Step::Closed => {
                break hot
                    .session
                    .close_reason()
                    .cloned()
                    .map_or(Ended::Lost, Ended::Closed);
            }
            // A client that never stops sending would keep an executor without a budget
            // (smol's) on this task.
            Step::Yield => {
                future::yield_now().await;
                continue;
            }
        };
        let session = &mut hot.session;
        match input {
            Input::Frame(Some(frame)) => {
                let now = runtime.now();
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
            }
            Input::Frame(None) => break Ended::Lost,
            // The common path hands a batch to the session itself; this is for completeness.
            Input::Deliveries(true) => deliver(runtime.now(), session, &mut hot.batch),
            Input::Deliveries(false) => {
                leave.left = true; // the hub let go
                slow_consumer(runtime, session);
            }
            Input::Timer => session.handle_timeout(runtime.now()),
            Input::Shutdown(reconnect_ms) => session.shutdown(runtime.now(), reconnect_ms),
        }
    };
    if !leave.left {
        leave.left = true;
        let _ = hub.disconnect(id).await;
    }
    report.ended = Some(ended.clone());
    ended
}

/// Hands a batch from the mailbox to the session, keeping the buffer for the next one unless a
/// burst made it large.
fn deliver(now: Instant, session: &mut Session, batch: &mut Batch) {
    session.deliver_batch(now, batch.drain());
    batch.recycle(KEPT_BATCH_CAPACITY);
}

/// Deliveries a session's batch buffer keeps room for between batches (a pointer each).
const KEPT_BATCH_CAPACITY: usize = 64;

/// The hub dropped this session: its mailbox was full.
fn slow_consumer<R: Runtime>(runtime: &R, session: &mut Session) {
    let close = Close::new(
        CloseCode::SlowConsumer,
        roomcast_core::session::SLOW_CONSUMER_REASON,
    );
    session.close(runtime.now(), close);
}

/// Marks the mailbox closed and removes the session from the hub, however the session ends.
struct Leave<'a> {
    hub: &'a HubHandle,
    id: SessionId,
    mailbox: &'a Mailbox,
    /// The hub has let go of the session already.
    left: bool,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.mailbox.close();
        if !self.left {
            self.hub.disconnect_now(self.id);
        }
    }
}

/// Tells the observer how the session ended when dropped: `Lost` if it never got to say.
struct Report<'a> {
    observer: &'a dyn crate::observer::Observer,
    transport: &'static str,
    ended: Option<Ended>,
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        let ended = self.ended.take().unwrap_or(Ended::Lost);
        self.observer.closed(self.transport, &ended);
    }
}

enum Input {
    Frame(Option<Inbound>),
    /// True: deliveries are in the batch; false: the hub let go.
    Deliveries(bool),
    Timer,
    Shutdown(u64),
}

/// The waits a session keeps from one input to the next: made anew on every wake-up, a timer
/// is one allocation and a timer-wheel entry, a shutdown listener one entry in a list every
/// session shares, and a busy room wakes each session once per batch.
struct Waits<'a> {
    /// The session's timer: see [`Timer`].
    timer: Option<Timer<'a>>,
    /// Until the server shuts down; `None` once it has said so.
    shutdown: Option<Triggered<'a>>,
    /// The wakers the socket's reads and the timer are polled with: they ring the mailbox.
    socket_bell: Waker,
    timer_bell: Waker,
    /// The sources (`RING_SOCKET`, `RING_TIMER`) whose last poll was pending: each is polled
    /// again only once it rang, and most wake-ups are deliveries.
    waiting: u8,
    /// Which of [`ORDER`] this wait polls its sources in; the next wait takes the next.
    turn: u8,
}

/// A session's timer, armed for the session's next deadline or, until it fires, an earlier one.
struct Timer<'a> {
    /// The deadline it is armed for.
    armed: Instant,
    /// The latest deadline it is kept for: half the time it had when armed, past `armed`.
    kept_until: Instant,
    sleep: BoxFuture<'a>,
}

/// The sources of an input, in the orders four waits in a row poll them: each of the frames
/// and the deliveries goes first in two, and the timer and the shutdown in one. The first one
/// ready is the input, so a delivery (most wake-ups) usually costs no poll of the others.
const ORDER: [[u8; 4]; 4] = [
    [DELIVERIES, FRAME, TIMER, SHUTDOWN],
    [FRAME, DELIVERIES, TIMER, SHUTDOWN],
    [DELIVERIES, FRAME, TIMER, SHUTDOWN],
    [TIMER, SHUTDOWN, FRAME, DELIVERIES],
];
const FRAME: u8 = 0;
const DELIVERIES: u8 = 1;
const TIMER: u8 = 2;
const SHUTDOWN: u8 = 3;

type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The run loop's state that its common path reads on every input, in one place: a delivery
/// is polled, handed to the session and written out in one `poll` ([`Hot::poll_step`]), with no
/// future made or dropped. At 10,000 sessions a fan-out finds every session's task cold, and
/// each cache line a delivery touches is a miss: `repr(C)`, in this order, the loop's own fields
/// come first, then the transport (whose hot fields lead it), then the session's hot head
/// (docs/performance.md, "The sixth session" and "The seventh session").
#[repr(C)]
struct Hot<'a, T> {
    phase: Phase,
    /// Transmits were buffered that no flush has written yet.
    unflushed: bool,
    inputs: u64,
    /// Deliveries taken from the mailbox; it and the mailbox take turns with two buffers.
    batch: Batch,
    mailbox: &'a Mailbox,
    observer: &'a dyn crate::observer::Observer,
    transport_name: &'static str,
    write_timeout: Duration,
    timer_slack: Duration,
    waits: Waits<'a>,
    transport: T,
    session: Session,
}

/// Where [`Hot::poll_step`] is between two inputs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Write what the session has, then count the input.
    Write,
    /// Arm the timer for this wait.
    Arm,
    /// Wait for an input.
    Wait,
}

/// What the common path hands to the rest of the loop.
enum Step {
    /// An input the loop handles itself (a delivery the common path hands to the session).
    Input(Input),
    /// The session has an event for the hub.
    Event(SessionEvent),
    /// The socket has not taken a write begun at this moment: the loop finishes it, within the
    /// write timeout.
    Stalled(Instant),
    /// A write failed: the connection is dead.
    Lost,
    /// The session is closed.
    Closed,
    /// Time to let other tasks run.
    Yield,
}

impl<'a, T: Transport> Hot<'a, T> {
    /// The loop's common path: writes what the session has, then waits for an input; a batch
    /// of deliveries goes to the session and out at once, and the wait goes on. Anything else
    /// (a frame, the timer, the shutdown, an event for the hub, a write that has to wait) is
    /// handed back to the loop.
    fn poll_step<R: Runtime>(&mut self, cx: &mut Context<'_>, runtime: &'a R) -> Poll<Step> {
        // The clock as a batch of deliveries read it: their write, right after, goes out at the
        // same moment, one clock read per delivery rather than two.
        let mut delivered_at = None;
        loop {
            // The clock as this poll's write read it, for the timer's arming right after.
            let mut written_at = None;
            if self.phase == Phase::Write {
                let now = delivered_at.take().unwrap_or_else(|| runtime.now());
                written_at = Some(now);
                match self.poll_write(cx, now) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Poll::Ready(Step::Lost),
                    Poll::Pending => return Poll::Ready(Step::Stalled(now)),
                }
                if self.session.state() == SessionState::Closed {
                    return Poll::Ready(Step::Closed);
                }
                self.phase = Phase::Arm;
                self.inputs += 1;
                if self.inputs % YIELD_EVERY == 0 {
                    return Poll::Ready(Step::Yield);
                }
            }
            if self.phase == Phase::Arm {
                let now = written_at.unwrap_or_else(|| runtime.now());
                self.waits
                    .arm(&self.session, runtime, now, self.timer_slack);
                self.phase = Phase::Wait;
            }
            let input = ready!(self.waits.poll_input(
                cx,
                &self.session,
                &mut self.transport,
                self.mailbox,
                &mut self.batch,
            ));
            self.phase = Phase::Write;
            match input {
                // Everything that waited: its frames go out in the next write, together.
                Input::Deliveries(true) => {
                    let now = runtime.now();
                    deliver(now, &mut self.session, &mut self.batch);
                    delivered_at = Some(now);
                    if let Some(event) = self.session.poll_event() {
                        return Poll::Ready(Step::Event(event));
                    }
                }
                input => return Poll::Ready(Step::Input(input)),
            }
        }
    }

    /// Drains every transmit into the transport, then flushes once. `now` is the moment every
    /// frame of the drain goes out at.
    fn poll_write(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<std::io::Result<()>> {
        loop {
            ready!(self.transport.poll_ready(cx))?;
            let Some(transmit) = self.session.poll_transmit(now) else {
                break;
            };
            if let Transmit::Frame(delivery) = &transmit {
                self.observer
                    .outbound(self.transport_name, delivery.frame.as_str());
            }
            self.transport.start_send(transmit)?;
            self.unflushed = true;
        }
        if self.unflushed {
            ready!(self.transport.poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}

impl<'a> Waits<'a> {
    fn new(mailbox: &Arc<Mailbox>, shutdown: Option<Triggered<'a>>) -> Self {
        Self {
            timer: None,
            shutdown,
            socket_bell: mailbox.bell(RING_SOCKET),
            timer_bell: mailbox.bell(RING_TIMER),
            waiting: 0,
            turn: 0,
        }
    }

    /// Arms the timer for the session's next deadline, as one wait begins.
    fn arm<R: Runtime>(
        &mut self,
        session: &Session,
        runtime: &'a R,
        now: Instant,
        slack: Duration,
    ) {
        match (session.poll_timeout(), &self.timer) {
            // A timer armed for this deadline or a little earlier stays: an early wake-up finds
            // nothing due and arms the later deadline then. An SSE keep-alive's deadline moves
            // on with every write, and a new timer per write was an allocation and a
            // timer-wheel entry per drain; its timer is replaced once every half interval. A
            // deadline that jumps further is a new timer: a pong moves the deadline from the
            // pong's (10 s away when armed) to the next ping's, 15 s later, and the old timer
            // would wake the session for nothing. Two comparisons: this runs on every input.
            (Some(deadline), Some(timer))
                if timer.armed <= deadline && deadline <= timer.kept_until => {}
            (Some(deadline), _) => {
                let wake = wake_at(deadline, now, slack);
                let half = deadline.saturating_duration_since(now) / 2;
                self.timer = Some(Timer {
                    armed: deadline,
                    kept_until: deadline.checked_add(half).unwrap_or(deadline),
                    sleep: runtime.sleep_until(wake),
                });
                // A new future: its first poll goes through.
                self.waiting &= !RING_TIMER;
            }
            (None, _) => {
                self.timer = None;
                self.waiting &= !RING_TIMER;
            }
        }
    }

    /// The first of: a frame, a delivery, the session's timer, the server shutting down. The
    /// sources are polled in a fixed rotation of orders, one per wait (see [`ORDER`]): a
    /// delivery, most wake-ups, is usually found first without polling the rest. The socket (if
    /// its transport says its reads wake it, [`Transport::RECV_WAKES`]) and the timer are
    /// polled only if they rang the mailbox since their last pending poll.
    fn poll_input<T: Transport>(
        &mut self,
        cx: &mut Context<'_>,
        session: &Session,
        transport: &mut T,
        mailbox: &Mailbox,
        batch: &mut Batch,
    ) -> Poll<Input> {
        // Once the session is closing, hub deliveries no longer matter; the shutdown is told
        // once, after that the session's own grace timer does the rest.
        let open = session.is_open();
        let told = !open || session.is_shutting_down();
        let rung = mailbox.rung();
        // Fair, not biased: the order of the sources changes from one wait to the next, so a
        // busy room does not starve reading (pongs), nor a chatty client the hub, nor either
        // of them the timer.
        for source in ORDER[usize::from(self.turn)] {
            let polled = match source {
                FRAME if T::RECV_WAKES => {
                    let bell = &self.socket_bell;
                    poll_rung(&mut self.waiting, rung, RING_SOCKET, mailbox, || {
                        transport.poll_recv(&mut Context::from_waker(bell))
                    })
                    .map(Input::Frame)
                }
                FRAME => transport.poll_recv(cx).map(Input::Frame),
                DELIVERIES if open => mailbox.poll_take(cx, batch).map(Input::Deliveries),
                TIMER => match &mut self.timer {
                    Some(timer) => {
                        let bell = &self.timer_bell;
                        poll_rung(&mut self.waiting, rung, RING_TIMER, mailbox, || {
                            timer.sleep.as_mut().poll(&mut Context::from_waker(bell))
                        })
                        .map(|()| Input::Timer)
                    }
                    None => Poll::Pending,
                },
                SHUTDOWN if !told => match &mut self.shutdown {
                    Some(triggered) => Pin::new(triggered).poll(cx).map(Input::Shutdown),
                    None => Poll::Pending,
                },
                _ => Poll::Pending,
            };
            if let Poll::Ready(input) = polled {
                self.turn = (self.turn + 1) % 4;
                // A finished future must not be polled again.
                match input {
                    Input::Timer => self.timer = None,
                    Input::Shutdown(_) => self.shutdown = None,
                    _ => {}
                }
                return Poll::Ready(input);
            }
        }
        if !open {
            mailbox.listen(cx);
        }
        // The task's waker is in the mailbox now. A source that rang since it was last looked
        // at, while the waker was out of the mailbox (taken by the push or ring that woke this
        // poll), woke nobody: poll again soon. A self-wake, not a loop here: a source may ring
        // from its own poll.
        if mailbox.rung() & self.waiting != 0 {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// Polls a source that rings the mailbox as `source`: unless its last poll was pending and it
/// has not rung since. A ring is answered before the poll, so one during the poll counts.
fn poll_rung<T>(
    waiting: &mut u8,
    rung: u8,
    source: u8,
    mailbox: &Mailbox,
    poll: impl FnOnce() -> Poll<T>,
) -> Poll<T> {
    if rung & source != 0 {
        mailbox.answer(source);
    } else if *waiting & source != 0 {
        return Poll::Pending;
    }
    let polled = poll();
    if polled.is_pending() {
        *waiting |= source;
    } else {
        *waiting &= !source;
    }
    polled
}

/// When a timer for `deadline` wakes: put off to the next point of a grid every session shares,
/// whose spacing is the largest power of two milliseconds within `slack` and within 1/16 of the
/// time left, so it is never early and at most 6.25 % late. Heartbeats are due at a phase of
/// their own in each session: 10,000 WebSockets pinged every 25 s woke a server 400 times a
/// second, each time to send one ping and again to read one pong (docs/performance.md, "The
/// fifth session"). On the grid they wake it a few times a second. Grids of different spacing
/// nest, so sessions with different time left still share points.
fn wake_at(deadline: Instant, now: Instant, slack: Duration) -> Instant {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    let anchor = *ANCHOR.get_or_init(|| now);
    let room = slack.min(deadline.saturating_duration_since(now) / 16);
    let room_ms = u64::try_from(room.as_millis()).unwrap_or(u64::MAX);
    let Some(since) = deadline
        .checked_duration_since(anchor)
        .filter(|_| room_ms > 0)
    else {
        return deadline;
    };
    let grid = u128::from(1_000_000u64 << room_ms.ilog2().min(20));
    let points = since.as_nanos().div_ceil(grid);
    u64::try_from(points * grid)
        .map(|nanos| anchor + Duration::from_nanos(nanos))
        .unwrap_or(deadline)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use async_trait::async_trait;
    use async_tungstenite::tungstenite::protocol::WebSocketConfig;
    use futures_lite::future::{block_on, poll_once};
    use roomcast_core::cursor::Position;
    use roomcast_core::delivery::Delivery;
    use roomcast_core::envelope::{Payload, ServerMessage};

    use super::*;
    use crate::gate::tests::Counted;
    use crate::mailbox::Budget;
    use crate::websocket::WsTransport;

    /// A clock whose timers never fire, or (`Due(true)`) are due at once.
    #[derive(Clone)]
    struct Due(bool);

    #[async_trait]
    impl Runtime for Due {
        fn now(&self) -> Instant {
            Instant::now()
        }
        async fn sleep_until(&self, _: Instant) {
            if !self.0 {
                future::pending().await
            }
        }
        fn spawn<F: Future<Output = ()> + Send + 'static>(&self, _: F) {
            unreachable!("nothing is spawned")
        }
    }

    /// A client that always has another frame ready.
    struct Chatty;

    impl Transport for Chatty {
        fn poll_recv(&mut self, _: &mut Context<'_>) -> Poll<Option<Inbound>> {
            Poll::Ready(Some(Inbound::Pong))
        }
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(&mut self, _: Transmit) -> std::io::Result<()> {
            Ok(())
        }
        fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// The inputs of eight waits in a row while the client always has a frame ready and the
    /// room always has a delivery waiting: `f`rames, `d`eliveries and `t`imers.
    fn inputs(runtime: &Due) -> String {
        let now = Instant::now();
        let options = SessionOptions::default();
        let mut session = Session::new(options.kind, options.config, options.codec, now);
        session.accept(now, SessionId(1), UserId::new("u").expect("a user id"));
        let mailbox = Arc::new(Mailbox::new(Budget::default()));
        let mut waits = Waits::new(&mailbox, None);
        let mut batch = Batch::default();
        let mut seen = String::new();
        for offset in 0..8 {
            let data = Payload::from_json("1").expect("JSON");
            let id = Position { epoch: 1, offset };
            let frame = ServerMessage::Broadcast {
                id,
                event: None,
                data,
            };
            mailbox.push_one(Delivery::unstreamed(frame.encode()));
            waits.arm(&session, runtime, runtime.now(), Duration::ZERO);
            let input = block_on(poll_fn(|cx| {
                waits.poll_input(cx, &session, &mut Chatty, &mailbox, &mut batch)
            }));
            seen.push(match input {
                Input::Frame(_) => 'f',
                Input::Deliveries(_) => 'd',
                Input::Timer => 't',
                Input::Shutdown(_) => 's',
            });
            batch.drain().for_each(drop);
        }
        seen
    }

    #[test]
    fn timers_wake_on_a_shared_grid_never_early_and_within_the_slack() {
        let slack = DEFAULT_TIMER_SLACK;
        let start = Instant::now();
        // Sessions a few milliseconds apart, each due 25 s from its own start.
        let wakes: Vec<Instant> = (0..200u64)
            .map(|i| {
                let now = start + Duration::from_millis(i * 3);
                let deadline = now + Duration::from_secs(25);
                let wake = wake_at(deadline, now, slack);
                assert!(wake >= deadline, "never early");
                assert!(
                    wake - deadline < Duration::from_millis(128),
                    "within the grid"
                );
                wake
            })
            .collect();
        let mut points = wakes.clone();
        points.dedup();
        assert!(
            points.len() <= 6,
            "600 ms of deadlines fall on {} points",
            points.len()
        );
        // A near deadline moves by at most 1/16 of the time left; zero slack moves nothing.
        let near = start + Duration::from_millis(40);
        assert!(wake_at(near, start, slack) - near < Duration::from_millis(3));
        let exact = start + Duration::from_millis(12_345);
        assert_eq!(wake_at(exact, start, Duration::ZERO), exact);
        // A deadline already passed is not put off.
        assert_eq!(wake_at(start, start + Duration::from_secs(1), slack), start);
        // A far deadline with a huge slack stays within 1/16 and never overflows.
        let far = start + Duration::from_secs(3600);
        let late = wake_at(far, start, Duration::MAX) - far;
        assert!(late <= Duration::from_secs(3600) / 16);
    }

    #[test]
    fn a_timer_left_far_behind_its_deadline_is_replaced_not_woken_for() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let options = SessionOptions::default();
        let mut session = Session::new(options.kind, options.config, options.codec, t0);
        session.accept(t0, SessionId(1), UserId::new("u").expect("a user id"));
        let runtime = Due(false);
        let mailbox = Arc::new(Mailbox::new(Budget::default()));
        let mut waits = Waits::new(&mailbox, None);
        let armed = |waits: &Waits<'_>| waits.timer.as_ref().map(|timer| timer.armed);
        let deliver = |session: &mut Session, now| {
            let data = Payload::from_json("1").expect("JSON");
            let id = Position {
                epoch: 1,
                offset: 0,
            };
            let frame = ServerMessage::Broadcast {
                id,
                event: None,
                data,
            };
            session.deliver(now, Delivery::unstreamed(frame.encode()));
            while session.poll_transmit(now).is_some() {}
        };
        waits.arm(&session, &runtime, t0, Duration::ZERO);
        assert_eq!(armed(&waits), Some(at(25_000)), "the first ping");
        // A delivery takes the ping along at 22 s: the deadline is its pong's, 32 s, within
        // half the 25 s the timer had when armed: it stays.
        deliver(&mut session, at(22_000));
        waits.arm(&session, &runtime, at(22_000), Duration::ZERO);
        assert_eq!(armed(&waits), Some(at(25_000)));
        // The pong: the next ping is due at 47 s, past 37.5 s: a new timer.
        session.handle_pong(at(22_100)).expect("open");
        waits.arm(&session, &runtime, at(22_100), Duration::ZERO);
        assert_eq!(armed(&waits), Some(at(47_000)));
        // The same after a ping its timer sent: armed for the pong's deadline, 10 s away, and
        // replaced once the pong moves the deadline 15 s on.
        waits.timer = None; // it fired
        assert!(session.poll_timeout() == Some(at(47_000)));
        session.handle_timeout(at(47_000));
        while session.poll_transmit(at(47_000)).is_some() {}
        waits.arm(&session, &runtime, at(47_000), Duration::ZERO);
        assert_eq!(armed(&waits), Some(at(57_000)));
        session.handle_pong(at(47_050)).expect("open");
        waits.arm(&session, &runtime, at(47_050), Duration::ZERO);
        assert_eq!(armed(&waits), Some(at(72_000)));
        // An early ping's pong deadline within half the timer's time keeps it: 79 s is within
        // 72 + 12.475 s.
        deliver(&mut session, at(69_000));
        waits.arm(&session, &runtime, at(69_000), Duration::ZERO);
        assert_eq!(armed(&waits), Some(at(72_000)));
    }

    /// A delivery for the tests' mailboxes.
    fn delivery(offset: u64) -> roomcast_core::delivery::Shared {
        let data = Payload::from_json("1").expect("JSON");
        let id = Position { epoch: 1, offset };
        let frame = ServerMessage::Broadcast {
            id,
            event: None,
            data,
        };
        Delivery::unstreamed(frame.encode())
    }

    fn open_session(now: Instant) -> Session {
        let options = SessionOptions::default();
        let mut session = Session::new(options.kind, options.config, options.codec, now);
        session.accept(now, SessionId(1), UserId::new("u").expect("a user id"));
        session
    }

    #[test]
    fn the_socket_is_read_again_only_once_it_rang_the_mailbox() {
        let socket = Counted::default();
        let (reads, data) = (Arc::clone(&socket.reads), Arc::clone(&socket.data));
        let mut transport = WsTransport::server(socket, WebSocketConfig::default());
        let session = open_session(Instant::now());
        let mailbox = Arc::new(Mailbox::new(Budget::default()));
        let mut waits = Waits::new(&mailbox, None);
        let mut batch = Batch::default();
        let mut poll = |waits: &mut Waits<'_>, batch: &mut Batch| {
            block_on(poll_once(poll_fn(|cx| {
                waits.poll_input(cx, &session, &mut transport, &mailbox, batch)
            })))
        };
        assert!(poll(&mut waits, &mut batch).is_none(), "nothing yet");
        let first = reads.load(Ordering::SeqCst);
        assert!(first > 0, "the first poll reads");
        // Deliveries wake the session in every order of the rotation: no read.
        for offset in 0..8 {
            mailbox.push_one(delivery(offset));
            let input = poll(&mut waits, &mut batch);
            assert!(matches!(input, Some(Input::Deliveries(true))));
            batch.drain().for_each(drop);
            assert!(poll(&mut waits, &mut batch).is_none());
        }
        assert_eq!(reads.load(Ordering::SeqCst), first, "not read again");
        // A masked client text frame "hi" arrives, and the socket wakes its reader: the bell.
        let mask = [1u8, 2, 3, 4];
        let frame = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ mask[0], b'i' ^ mask[1]];
        let waker = {
            let mut data = data.lock().expect("not poisoned");
            data.0.extend_from_slice(&frame);
            data.1.take().expect("the socket kept a waker")
        };
        waker.wake();
        assert_eq!(mailbox.rung(), RING_SOCKET);
        let input = poll(&mut waits, &mut batch);
        assert!(
            matches!(&input, Some(Input::Frame(Some(Inbound::Text(text)))) if text == "hi"),
            "rang: read"
        );
        assert_eq!(mailbox.rung(), 0, "answered");
    }

    /// A client whose socket wakes its reader from within every read that finds nothing.
    struct Ringing(u32);

    impl Transport for Ringing {
        const RECV_WAKES: bool = true;
        fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
            self.0 += 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(&mut self, _: Transmit) -> std::io::Result<()> {
            Ok(())
        }
        fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_ring_that_found_no_task_waiting_wakes_the_task_again() {
        let session = open_session(Instant::now());
        let mailbox = Arc::new(Mailbox::new(Budget::default()));
        let mut waits = Waits::new(&mailbox, None);
        let mut batch = Batch::default();
        let mut transport = Ringing(0);
        let wakes = Arc::new(Wakes::default());
        let task = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&task);
        // The socket rings while it is polled, before the task's waker is in the mailbox (the
        // second order of the rotation polls the socket first): no one was there to wake, so
        // the poll wakes its own task.
        waits.turn = 1;
        let polled = waits.poll_input(&mut cx, &session, &mut transport, &mailbox, &mut batch);
        assert!(polled.is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken again");
        assert_eq!(mailbox.rung(), RING_SOCKET);
        // And the next poll reads again.
        let polled = waits.poll_input(&mut cx, &session, &mut transport, &mailbox, &mut batch);
        assert!(polled.is_pending());
        assert_eq!(transport.0, 2);
        // A ring with the task's waker in the mailbox wakes it through the mailbox.
        let bell = mailbox.bell(RING_SOCKET);
        let before = wakes.0.load(Ordering::SeqCst);
        mailbox.answer(RING_SOCKET);
        bell.wake_by_ref();
        assert_eq!(wakes.0.load(Ordering::SeqCst), before + 1);
    }

    #[test]
    fn a_busy_room_a_chatty_client_and_the_timer_take_turns() {
        assert_eq!(inputs(&Due(false)), "dfdfdfdf");
        assert_eq!(inputs(&Due(true)), "dfdtdfdt");
    }
}
