//! roomcast-io's run loops on a clock the test moves by hand: a session's whole heartbeat life,
//! 35 seconds of it, in a few milliseconds, over an in-memory transport.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use futures_lite::Stream;
use roomcast_core::close::CloseCode;
use roomcast_core::hub::{Connect, Hub, HubConfig};
use roomcast_core::names::UserId;
use roomcast_core::session::Transmit;
use roomcast_io::{
    Budget, Ended, Inbound, ManualClock, SessionOptions, Transport, run_session, spawn_hub,
};
use roomcast_smol::SmolRuntime;
use roomcast_tests::WAIT;

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
            Hub::new(HubConfig::default(), 1),
            Budget::frames(16),
        );
        let (_client, inbound) = async_channel::bounded(16);
        let (outbound, transmits) = async_channel::bounded(16);
        let user = UserId::new("alice").expect("valid");
        let connect = Connect {
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
