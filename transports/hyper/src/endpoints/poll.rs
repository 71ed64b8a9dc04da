//! `GET /poll`: long-poll, for clients that can hold neither a WebSocket nor an SSE stream.
//!
//! Each poll is a short session: it connects with `?cursor=`, takes the stored messages after it
//! (the hub replays what was missed), waits up to `?timeout=` seconds (at most the configured
//! wait) when there are none, and answers them with the cursor to poll with next.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use roomcast_core::long_poll::LongPoll;
use roomcast_core::session::{SessionKind, Transmit};
use roomcast_io::{AsyncTimer, Inbound, Runtime, Transport, Triggered, run_registered};

use crate::auth::query_param;
use crate::body::Body;
use crate::context::{Inner, parse_cursor};
use crate::refusal::Refusal;
use crate::response::{allow_origin, json};

/// The admission checks, the cursor and wait, then a short session that fills the answer.
pub(crate) async fn serve<R: Runtime, B: Send + 'static>(
    inner: &Inner<R>,
    peer: IpAddr,
    request: Request<B>,
) -> Result<Response<Body>, Refusal> {
    let admitted = inner.admit_session(peer, &request, "poll").await?;
    let cursor = parse_cursor(query_param(request.uri(), "cursor"), "cursor")?;
    let wait = match query_param(request.uri(), "timeout") {
        Some(text) => text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| Refusal::new(400, format!("timeout {text:?} is not whole seconds")))?
            .min(inner.options.poll_wait),
        None => inner.options.poll_wait,
    };
    let registered = inner
        .register_stream(&admitted, &request, cursor.clone())
        .await?;
    let mut options = inner.options.session.clone();
    options.kind = SessionKind::Sse;
    options.transport = "poll";
    let max_bytes = options.config.queue_bytes;
    let deadline = inner.runtime.now() + wait;
    let mut transport = PollTransport::<R> {
        answer: LongPoll::new(cursor, inner.options.poll_max_events, max_bytes),
        deadline,
        timer: inner.runtime.new_timer(deadline + HUB_ANSWER),
        waiting: Wait::HubAnswer,
        shutdown: options.shutdown.triggered(),
    };
    run_registered(&inner.runtime, &mut transport, registered, options).await;
    let mut response = json(StatusCode::OK, transport.answer.encode());
    allow_origin(&mut response, admitted.origin);
    drop(admitted.slot);
    Ok(response)
}

/// Longest a poll waits past its deadline for the hub's `streams` message.
const HUB_ANSWER: Duration = Duration::from_secs(5);

/// A poll as a connection: its transmits fill the answer, and it "disconnects" once the answer
/// has a message, is full, its wait is over, or the server shuts down.
struct PollTransport<R: Runtime> {
    answer: LongPoll,
    deadline: Instant,
    /// Set for what the poll waits for ([`Wait`]).
    timer: R::Timer,
    waiting: Wait,
    shutdown: Triggered,
}

/// What a poll with nothing to answer yet waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The hub's `streams` message, which starts every answer.
    HubAnswer,
    /// A message, until the poll's deadline or the server's shutdown.
    Message,
}

impl<R: Runtime> Transport for &mut PollTransport<R> {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let wait = if !self.answer.is_started() {
            // The hub answers a connection with `streams` (and any replay) right after it
            // registers it; until then there is nothing to answer, even with `timeout=0`. The
            // bound is only a guard against a hub that never answers.
            Wait::HubAnswer
        } else if self.answer.is_empty() && !self.answer.is_full() {
            Wait::Message
        } else {
            return Poll::Ready(None);
        };
        if wait != self.waiting {
            self.waiting = wait;
            self.timer.reset(self.deadline);
        }
        if wait == Wait::Message && Pin::new(&mut self.shutdown).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        ready!(self.timer.poll_expired(cx));
        Poll::Ready(None)
    }

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        self.answer.push(&transmit);
        Ok(())
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
