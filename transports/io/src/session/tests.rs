//! The driver, polled by hand: what each turn looks at, and how a session ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures_lite::future::{block_on, poll_once};
use roomcast_core::engine::{MemoryEngine, MemoryLimits};
use roomcast_core::envelope::Payload;
use roomcast_core::hub::{Connect, Hub, HubConfig};
use roomcast_core::names::UserId;
use roomcast_core::session::Transmit;

use super::super::{Ended, SessionOptions, run_registered};
use super::*;
use crate::hub::spawn_hub;
use crate::mailbox::{Budget, RING_SOCKET};
use crate::readiness::Belfry;
use crate::readiness::tests::Counted;
use crate::runtime::AsyncTimer;
use crate::transport::Inbound;
use crate::websocket::WsTransport;

/// A runtime whose timers fire at once (`due`) or never, counting their expiries, and which
/// runs nothing it is given (the hub's timer task is not needed here).
#[derive(Clone, Default)]
struct Hand {
    due: bool,
    expired: Arc<AtomicUsize>,
}

struct HandTimer {
    due: bool,
    expired: Arc<AtomicUsize>,
}

impl AsyncTimer for HandTimer {
    fn reset(&mut self, _: Instant) {}
    fn poll_expired(&mut self, _: &mut Context<'_>) -> Poll<()> {
        if self.due {
            self.expired.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Runtime for Hand {
    type Timer = HandTimer;
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn new_timer(&self, _: Instant) -> HandTimer {
        HandTimer {
            due: self.due,
            expired: Arc::clone(&self.expired),
        }
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, _: F) {}
}

/// A session of user `u` that follows the broadcast feed, on `transport`.
fn start<T: Transport>(runtime: &Hand, transport: T) -> (HubHandle, SessionDriver<Hand, T>) {
    let engine = MemoryEngine::new(MemoryLimits::default(), 1);
    let hub = spawn_hub(
        runtime,
        Hub::new(HubConfig::default()),
        engine,
        Budget::default(),
    );
    let connect = Connect {
        access: Default::default(),
        user: UserId::new("u").expect("a user id"),
        broadcast: true,
        rooms: Vec::new(),
        cursor: None,
    };
    let registered = block_on(hub.register(connect)).expect("registered");
    let driver = run_registered(runtime, transport, registered, SessionOptions::default());
    (hub, driver)
}

fn broadcast(hub: &HubHandle, n: u64) {
    let data = Payload::from_json(&n.to_string()).expect("JSON");
    let stored = block_on(hub.broadcast(None, data)).expect("the hub runs");
    stored.expect("stored");
}

fn sessions(hub: &HubHandle) -> usize {
    block_on(hub.stats()).expect("the hub runs").sessions
}

/// Counts its wake-ups.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_socket_is_read_again_only_once_it_rang_the_mailbox() {
    let socket = Counted::default();
    let (reads, data) = (Arc::clone(&socket.reads), Arc::clone(&socket.data));
    let transport = WsTransport::server(socket, WebSocketConfig::default());
    let (hub, mut driver) = start(&Hand::default(), transport);
    assert!(
        block_on(poll_once(&mut driver)).is_none(),
        "welcomed, waiting"
    );
    let first = reads.load(Ordering::SeqCst);
    assert!(first > 0, "the first poll reads");
    // Deliveries wake the session: no read.
    for n in 0..8 {
        broadcast(&hub, n);
        assert!(block_on(poll_once(&mut driver)).is_none());
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
    assert_eq!(driver.mailbox.rung().get(), RING_SOCKET);
    assert!(block_on(poll_once(&mut driver)).is_none());
    assert!(reads.load(Ordering::SeqCst) > first, "rang: read");
    assert_eq!(driver.mailbox.rung().get(), 0, "answered");
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

#[test]
fn a_ring_that_found_no_task_waiting_wakes_the_task_again() {
    let (_hub, mut driver) = start(&Hand::default(), Ringing(0));
    let wakes = Arc::new(Wakes::default());
    let task = Waker::from(Arc::clone(&wakes));
    let mut cx = Context::from_waker(&task);
    // The socket rings while it is polled, before the task's waker is in the mailbox (the
    // socket is polled before the mailbox): no one was there to wake, so the poll wakes its
    // own task.
    assert!(Pin::new(&mut driver).poll(&mut cx).is_pending());
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken again");
    // The next poll reads again, and rings again: with the task's waker in the mailbox this
    // time, the ring wakes the task through it.
    let polls = driver.transport.0;
    assert!(Pin::new(&mut driver).poll(&mut cx).is_pending());
    assert_eq!(driver.transport.0, polls + 1);
    assert!(wakes.0.load(Ordering::SeqCst) >= 2);
}

/// A client that always has another frame ready, and records what it is sent.
#[derive(Default)]
struct Chatty {
    read: usize,
    sent: Vec<String>,
}

impl Transport for Chatty {
    fn poll_recv(&mut self, _: &mut Context<'_>) -> Poll<Option<Inbound>> {
        self.read += 1;
        Poll::Ready(Some(Inbound::Pong))
    }
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(&mut self, transmit: Transmit) -> std::io::Result<()> {
        if let Transmit::Frame(delivery) = transmit {
            self.sent.push(delivery.frame.as_str().to_owned());
        }
        Ok(())
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn a_busy_room_a_chatty_client_and_the_timer_each_get_their_turn() {
    let runtime = Hand {
        due: true,
        ..Hand::default()
    };
    let (hub, mut driver) = start(&runtime, Chatty::default());
    let wakes = Arc::new(Wakes::default());
    let task = Waker::from(Arc::clone(&wakes));
    let mut cx = Context::from_waker(&task);
    for round in 1..=3u64 {
        broadcast(&hub, round);
        let (expired, woken) = (
            runtime.expired.load(Ordering::SeqCst),
            wakes.0.load(Ordering::SeqCst),
        );
        // A client that never stops sending: one frame a turn, then the poll lets other
        // tasks run, and wakes itself to go on.
        assert!(Pin::new(&mut driver).poll(&mut cx).is_pending());
        assert_eq!(
            driver.transport.read as u64,
            round * u64::from(TURNS_PER_POLL)
        );
        assert_eq!(wakes.0.load(Ordering::SeqCst), woken + 1, "a self-wake");
        // The room's message went out in the same poll, and the due timer fired in it too.
        let last = driver.transport.sent.last().expect("sent");
        assert!(last.contains(&format!("\"data\":{round}")), "{last}");
        assert!(runtime.expired.load(Ordering::SeqCst) > expired);
    }
}

/// A socket that never takes a write.
struct Stuck;

impl Transport for Stuck {
    fn poll_recv(&mut self, _: &mut Context<'_>) -> Poll<Option<Inbound>> {
        Poll::Pending
    }
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(&mut self, _: Transmit) -> std::io::Result<()> {
        Ok(())
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Pending
    }
}

#[test]
fn a_write_that_never_finishes_ends_the_session_at_its_deadline() {
    // The timer is never due: the write waits.
    let (hub, mut driver) = start(&Hand::default(), Stuck);
    for _ in 0..3 {
        assert!(block_on(poll_once(&mut driver)).is_none());
    }
    assert!(driver.stalled.is_some());
    let deadline = driver.stalled.map(|since| since + driver.write_timeout);
    assert_eq!(driver.armed.map(|armed| armed.deadline), deadline);
    assert_eq!(sessions(&hub), 1);
    // Due: the write deadline has passed, and the session is lost.
    let runtime = Hand {
        due: true,
        ..Hand::default()
    };
    let (hub, mut driver) = start(&runtime, Stuck);
    assert!(
        block_on(poll_once(&mut driver)).is_none(),
        "the write waits"
    );
    assert_eq!(block_on(poll_once(&mut driver)), Some(Ended::Lost));
    assert_eq!(sessions(&hub), 0, "it left the hub");
}

/// Records how the sessions it observes end.
#[derive(Default)]
struct Ends(std::sync::Mutex<Vec<Ended>>);

impl crate::observer::Observer for Ends {
    fn closed(&self, _: &'static str, ended: &Ended) {
        self.0.lock().expect("lock").push(ended.clone());
    }
}

#[test]
fn a_slow_consumer_whose_socket_took_nothing_is_reported_as_one() {
    let runtime = Hand {
        due: true,
        ..Hand::default()
    };
    let engine = MemoryEngine::new(MemoryLimits::default(), 1);
    let hub = spawn_hub(
        &runtime,
        Hub::new(HubConfig::default()),
        engine,
        Budget::default(),
    );
    let connect = Connect {
        access: Default::default(),
        user: UserId::new("u").expect("a user id"),
        broadcast: true,
        rooms: Vec::new(),
        cursor: None,
    };
    let ends = Arc::new(Ends::default());
    let options = SessionOptions {
        observe: crate::observer::Observe(Arc::clone(&ends) as Arc<dyn crate::observer::Observer>),
        ..SessionOptions::default()
    };
    let registered = block_on(hub.register(connect)).expect("registered");
    let mut driver = run_registered(&runtime, Stuck, registered, options);
    assert!(
        block_on(poll_once(&mut driver)).is_none(),
        "the write waits"
    );
    // While it waits, more than its mailbox holds: the hub lets go of it.
    for n in 0..5000 {
        broadcast(&hub, n);
    }
    assert_eq!(
        block_on(poll_once(&mut driver)),
        Some(Ended::Lost),
        "its socket is gone"
    );
    let ends = ends.0.lock().expect("lock");
    assert!(
        matches!(ends.as_slice(), [Ended::Closed(close)] if close.code == CloseCode::SlowConsumer),
        "reported as a slow consumer, not a loss: {ends:?}"
    );
}

/// A connection that is gone.
struct Gone;

impl Transport for Gone {
    fn poll_recv(&mut self, _: &mut Context<'_>) -> Poll<Option<Inbound>> {
        Poll::Ready(None)
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

#[test]
fn a_session_leaves_the_hub_however_it_ends() {
    let (hub, mut driver) = start(&Hand::default(), Gone);
    assert_eq!(sessions(&hub), 1);
    assert_eq!(block_on(poll_once(&mut driver)), Some(Ended::Lost));
    assert_eq!(sessions(&hub), 0, "the connection went");
    let (hub, mut driver) = start(&Hand::default(), Stuck);
    assert!(block_on(poll_once(&mut driver)).is_none());
    drop(driver);
    assert_eq!(sessions(&hub), 0, "dropped midway");
}

#[test]
fn a_manual_clock_timer_fires_once_advanced_past_its_deadline_and_can_be_moved() {
    let clock = crate::ManualClock::new(Hand::default());
    let start = clock.now();
    let mut timer = clock.new_timer(start + Duration::from_secs(25));
    let poll = |timer: &mut crate::ManualTimer<Hand>| {
        block_on(poll_once(std::future::poll_fn(|cx| timer.poll_expired(cx))))
    };
    assert!(poll(&mut timer).is_none());
    clock.advance(Duration::from_secs(24));
    assert!(poll(&mut timer).is_none(), "not yet");
    clock.advance(Duration::from_secs(1));
    assert!(poll(&mut timer).is_some(), "due");
    timer.reset(clock.now() + Duration::from_secs(10));
    assert!(poll(&mut timer).is_none(), "moved on");
    clock.advance(Duration::from_secs(10));
    assert!(poll(&mut timer).is_some());
}

#[test]
fn a_shutdowns_reconnect_hints_spread_over_the_window_sized_to_the_sessions() {
    use roomcast_core::delivery::SessionId;
    // 10,000 sessions of a server whose successor admits 5,000 a second: a 2 s window.
    // As the hub makes them: a serial above, a slot's index below.
    let ids = (0..10_000u64).map(|i| SessionId(((i + 1) << 32) | i));
    let hints: Vec<u64> = ids.map(|id| super::jittered(1000, 2000, id)).collect();
    assert!(
        hints.iter().all(|h| (1000..=3000).contains(h)),
        "within the window"
    );
    // About as many in each tenth of it: no instant when they all come back.
    let mut tenths = [0usize; 10];
    for h in &hints {
        tenths[(((h - 1000) / 200) as usize).min(9)] += 1;
    }
    assert!(
        tenths.iter().all(|&n| (800..=1200).contains(&n)),
        "{tenths:?}"
    );
    // A window shorter than half the hint: half the hint, as before.
    let id = SessionId((7 << 32) | 7);
    assert!((6000..=9000).contains(&super::jittered(6000, 0, id)));
    assert!((6000..=9000).contains(&super::jittered(6000, 2000, id)));
}
