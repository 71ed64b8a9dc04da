//! roomcast-io's run loops on a clock the test moves by hand: a session's whole heartbeat life,
//! 35 seconds of it, in a few milliseconds, over an in-memory transport.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use futures_lite::Stream;
use roomcast_core::close::CloseCode;
use roomcast_core::engine::{MemoryEngine, MemoryLimits};
use roomcast_core::envelope::Payload;
use roomcast_core::hub::{Connect, Hub, HubConfig};
use roomcast_core::names::UserId;
use roomcast_core::session::Transmit;
use roomcast_io::{
    Budget, Ended, Inbound, ManualClock, SessionOptions, Transport, run_session, spawn_hub,
};
use roomcast_smol::SmolRuntime;
use roomcast_tests::{WAIT, within};

/// A connection made of two channels: what the client sends, and what the session transmits.
/// The second is bounded and this test reads every transmit; a full pipe fails the session.
struct Pipe {
    inbound: Pin<Box<Receiver<Inbound>>>,
    outbound: Sender<Transmit>,
}

impl Transport for Pipe {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        self.inbound.as_mut().poll_next(cx)
    }

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        self.outbound.try_send(transmit).map_err(io::Error::other)
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn next(transmits: &Receiver<Transmit>) -> Transmit {
    let timeout = async {
        smol::Timer::after(WAIT).await;
        None
    };
    futures_lite::future::or(async { transmits.recv().await.ok() }, timeout)
        .await
        .expect("a transmit within the wait")
}

#[test]
fn a_silent_session_is_pinged_then_closed_on_a_manual_clock() {
    heartbeat_life(Duration::ZERO);
}

/// With the default timer slack, the same life: each timer fires at most 250 ms late.
#[test]
fn timers_on_the_shared_grid_fire_within_the_slack() {
    heartbeat_life(roomcast_io::DEFAULT_TIMER_SLACK);
}

/// A silent session's life on a manual clock with `slack`: a ping at 25 s, a close at 35 s, the
/// end 5 s later; each step `slack` late at most.
fn heartbeat_life(slack: Duration) {
    smol::block_on(async {
        let clock = ManualClock::new(SmolRuntime);
        let hub = spawn_hub(
            &clock,
            Hub::new(HubConfig::default()),
            MemoryEngine::new(MemoryLimits::default(), 1),
            Budget::frames(16),
        );
        let (_client, inbound) = async_channel::bounded(16);
        let (outbound, transmits) = async_channel::bounded(16);
        let user = UserId::new("alice").expect("valid");
        let connect = Connect {
            access: Default::default(),
            user,
            broadcast: false,
            rooms: vec![],
            cursor: None,
        };
        let session = {
            let (clock, hub) = (clock.clone(), hub.clone());
            smol::spawn(async move {
                run_session(
                    &clock,
                    &hub,
                    Pipe {
                        inbound: Box::pin(inbound),
                        outbound,
                    },
                    connect,
                    SessionOptions {
                        timer_slack: slack,
                        ..SessionOptions::default()
                    },
                )
                .await
            })
        };
        for kind in ["welcome", "streams"] {
            let Transmit::Frame(delivery) = next(&transmits).await else {
                panic!("{kind} first")
            };
            assert!(
                delivery
                    .frame
                    .as_str()
                    .starts_with(&format!(r#"{{"type":"{kind}""#))
            );
        }
        clock.advance(Duration::from_secs(25) + slack);
        assert!(
            matches!(next(&transmits).await, Transmit::Ping),
            "a ping after 25 s"
        );
        clock.advance(Duration::from_secs(10) + slack);
        let Transmit::Close(close) = next(&transmits).await else {
            panic!("a close after 35 s")
        };
        assert_eq!(close.code, CloseCode::HeartbeatTimeout);
        // It waits for the peer's close, then gives up after the close timeout.
        clock.advance(Duration::from_secs(5) + slack);
        let ended = session.await.expect("registered with the hub");
        assert!(matches!(ended, Ended::Closed(close) if close.code == CloseCode::HeartbeatTimeout));
        assert_eq!(hub.stats().await.expect("hub").sessions, 0);
    });
}

/// A connection whose socket takes nothing until the test opens it: what the session buffers
/// waits, and a flush is pending, as on a socket whose send buffer is full.
struct Gated {
    inbound: Pin<Box<Receiver<Inbound>>>,
    buffered: Vec<Transmit>,
    socket: Arc<Socket>,
}

/// The gated socket: open or not, the flush waiting for it, and what went through.
#[derive(Default)]
struct Socket {
    open: AtomicBool,
    flush: Mutex<Option<Waker>>,
    written: Mutex<Vec<Transmit>>,
}

impl Socket {
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        if let Some(waker) = self.flush.lock().expect("lock").take() {
            waker.wake();
        }
    }

    /// The data of every frame written so far, in order.
    fn frames(&self) -> Vec<String> {
        self.written
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|transmit| match transmit {
                Transmit::Frame(delivery) => Some(delivery.frame.as_str().to_owned()),
                _ => None,
            })
            .collect()
    }
}

impl Transport for Gated {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        self.inbound.as_mut().poll_next(cx)
    }

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        self.buffered.push(transmit);
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.socket.open.load(Ordering::SeqCst) {
            *self.socket.flush.lock().expect("lock") = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut written = self.socket.written.lock().expect("lock");
        written.extend(self.buffered.drain(..));
        Poll::Ready(Ok(()))
    }
}

/// A session's task, and the client's side of its inbound frames (the session ends once that
/// is dropped).
type Running = (
    smol::Task<Result<Ended, roomcast_io::ConnectError>>,
    Sender<Inbound>,
);

/// Starts a session for alice over a gated socket, on `clock`.
fn gated_session(
    clock: &ManualClock<SmolRuntime>,
    hub: &roomcast_io::HubHandle,
) -> (Arc<Socket>, Running) {
    let (client, inbound) = async_channel::bounded(16);
    let socket = Arc::new(Socket::default());
    let transport = Gated {
        inbound: Box::pin(inbound),
        buffered: Vec::new(),
        socket: Arc::clone(&socket),
    };
    let connect = Connect {
        access: Default::default(),
        user: UserId::new("alice").expect("valid"),
        broadcast: false,
        rooms: vec![],
        cursor: None,
    };
    let (clock, hub) = (clock.clone(), hub.clone());
    let task = smol::spawn(async move {
        run_session(&clock, &hub, transport, connect, SessionOptions::default()).await
    });
    (socket, (task, client))
}

/// Waits (in real time, bounded) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        smol::Timer::after(Duration::from_millis(5)).await;
    }
}

/// A write the socket takes late: the session's first frames wait, deliveries that come
/// meanwhile wait in its mailbox, and once the socket takes writes everything goes out whole
/// and in order. One that the socket never takes ends the session after the write timeout.
#[test]
fn a_late_write_goes_out_in_order_and_a_stalled_one_ends_the_session() {
    smol::block_on(async {
        let clock = ManualClock::new(SmolRuntime);
        let hub = spawn_hub(
            &clock,
            Hub::new(HubConfig::default()),
            MemoryEngine::new(MemoryLimits::default(), 1),
            Budget::frames(16),
        );
        let alice = UserId::new("alice").expect("valid");
        let (socket, session) = gated_session(&clock, &hub);
        until("the session registered", || {
            smol::block_on(hub.stats()).expect("hub").sessions == 1
        })
        .await;
        for n in 1..=3 {
            let data = Payload::from_json(&format!("{n}")).expect("JSON");
            hub.notify(alice.clone(), None, data)
                .await
                .expect("hub")
                .expect("notified");
        }
        smol::Timer::after(Duration::from_millis(20)).await;
        assert!(socket.frames().is_empty(), "nothing written while stalled");
        socket.open();
        until("five frames written", || socket.frames().len() == 5).await;
        let frames = socket.frames();
        assert!(frames[0].starts_with(r#"{"type":"welcome""#), "{frames:?}");
        assert!(frames[1].starts_with(r#"{"type":"streams""#), "{frames:?}");
        for (n, frame) in (1..=3).zip(&frames[2..]) {
            assert!(frame.ends_with(&format!(r#""data":{n}}}"#)), "{frames:?}");
        }
        // Within the write timeout nothing ends; past it, the stalled session is lost.
        let (stalled, (stalled_session, _client)) = gated_session(&clock, &hub);
        until("the stalled session registered", || {
            smol::block_on(hub.stats()).expect("hub").sessions == 2
        })
        .await;
        clock.advance(Duration::from_secs(9));
        smol::Timer::after(Duration::from_millis(20)).await;
        assert_eq!(hub.stats().await.expect("hub").sessions, 2);
        clock.advance(Duration::from_secs(2));
        let ended = within("the stalled session's end", stalled_session)
            .await
            .expect("registered");
        assert_eq!(ended, Ended::Lost);
        assert!(stalled.frames().is_empty());
        assert_eq!(
            hub.stats().await.expect("hub").sessions,
            1,
            "the first one lives on"
        );
        drop(session);
    });
}
