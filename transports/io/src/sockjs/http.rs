//! A session of SockJS's HTTP transports (`xhr` + `xhr_send`, `xhr_streaming`, `eventsource`):
//! the core's [`HttpSession`] shared, under a lock never held across an await, by the session
//! task ([`SockJsHttp`]), the receiving request of the moment ([`SockJsReceiver`]), `xhr_send`
//! requests and the expiry ([`SockJsLink`]).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use event_listener::Event;
use futures_lite::{Stream, future};
use roomcast_core::session::Transmit;
use roomcast_core::sockjs::http::{
    Attach, Ending, HttpConfig, HttpSession, Received, ReceiverId, Receiving,
};

use crate::runtime::Runtime;
use crate::transport::{Inbound, TextTransport, Transport};

struct Shared {
    state: Mutex<State>,
    /// Fires on every change those outside a poll wait for: a receiver came or went (the
    /// expiry), the client's messages were read (an `xhr_send` waiting for room).
    changed: Event,
}

struct State {
    session: HttpSession,
    /// The session task, waiting for the client's messages, for room, or for the end.
    task: Option<Waker>,
    /// The receiving request, waiting for bytes.
    receiver: Option<Waker>,
}

impl State {
    fn wake_task(&mut self) {
        if let Some(waker) = self.task.take() {
            waker.wake();
        }
    }

    fn wake_receiver(&mut self) {
        if let Some(waker) = self.receiver.take() {
            waker.wake();
        }
    }
}

/// A SockJS session of the HTTP transports, as the server's table of sessions holds it
/// (cheap to clone).
#[derive(Clone)]
pub struct SockJsLink {
    shared: Arc<Shared>,
}

impl SockJsLink {
    /// A session created at `now`.
    pub fn new(config: HttpConfig, now: Instant) -> Self {
        let state = State {
            session: HttpSession::new(config, now),
            task: None,
            receiver: None,
        };
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                changed: Event::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic elsewhere: every change is one call.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiving request of `kind`: the body of its response, or (`Err`) the whole response
    /// of one that is refused (a second receiver, a session interrupted).
    pub fn attach<R: Runtime>(
        &self,
        kind: Receiving,
        runtime: &R,
    ) -> Result<SockJsReceiver<R>, Bytes> {
        let attached = self.lock().session.attach(kind, runtime.now());
        self.shared.changed.notify(usize::MAX);
        match attached {
            Attach::Accepted { id, prelude } => Ok(SockJsReceiver {
                link: self.clone(),
                id,
                runtime: runtime.clone(),
                prelude: (!prelude.is_empty()).then_some(prelude),
                finished: false,
            }),
            Attach::Refused(bytes) => Err(bytes),
        }
    }

    /// An `xhr_send` body, read as soon as the client's messages waiting leave room for it.
    /// (The caller bounds the wait.)
    pub async fn send(&self, body: &[u8]) -> Received {
        loop {
            let listener = self.shared.changed.listen();
            let received = {
                let mut state = self.lock();
                let received = state.session.receive(body);
                if received == Received::Queued {
                    state.wake_task();
                }
                received
            };
            if received != Received::Busy {
                return received;
            }
            listener.await;
        }
    }

    /// Whether `other` is this session (not another with the same id).
    pub fn same(&self, other: &SockJsLink) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Closes the session with `code` and `reason` unless it has ended: its receiver, and any
    /// later, get `c[code,"reason"]` after what waits.
    pub fn close(&self, code: u16, reason: &str) {
        let mut state = self.lock();
        state.session.close(code, reason);
        state.wake_receiver();
    }

    /// Completes once the session has expired (no receiver for the disconnect delay, the
    /// session task then ends), when it can be forgotten.
    pub async fn expired<R: Runtime>(&self, runtime: &R) {
        loop {
            let listener = self.shared.changed.listen();
            let deadline = {
                let mut state = self.lock();
                state.session.handle_timeout(runtime.now());
                if state.session.is_expired() {
                    state.wake_task();
                    return;
                }
                state.session.poll_timeout()
            };
            match deadline {
                Some(at) => future::or(runtime.sleep_until(at), listener).await,
                None => listener.await,
            }
        }
    }
}

/// The body of a receiving request: the prelude, then the session's frames as they come, until
/// the session says the response ends. Dropped before that (the client broke the request
/// off), it interrupts the session.
pub struct SockJsReceiver<R: Runtime> {
    link: SockJsLink,
    id: ReceiverId,
    runtime: R,
    prelude: Option<Bytes>,
    finished: bool,
}

// Nothing in it is pinned: it moves freely.
impl<R: Runtime> Unpin for SockJsReceiver<R> {}

impl<R: Runtime> Stream for SockJsReceiver<R> {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = self.get_mut();
        if let Some(prelude) = this.prelude.take() {
            return Poll::Ready(Some(prelude));
        }
        if this.finished {
            return Poll::Ready(None);
        }
        let mut state = this.link.lock();
        match state.session.take(this.id, this.runtime.now()) {
            Some(taken) => {
                // The bytes taken make room for the session task's next frames.
                state.wake_task();
                if taken.last {
                    this.finished = true;
                    drop(state);
                    this.link.shared.changed.notify(usize::MAX);
                }
                Poll::Ready(Some(taken.bytes))
            }
            None if !state.session.has_receiver() => Poll::Ready(None),
            None => {
                state.receiver = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<R: Runtime> Drop for SockJsReceiver<R> {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.link.lock();
            state.session.detach(self.id, false, self.runtime.now());
            state.receiver = None;
            state.wake_task();
        }
        self.link.shared.changed.notify(usize::MAX);
    }
}

/// The session task's side of a SockJS HTTP session: the client's messages from `xhr_send`,
/// the session's frames to the receivers.
pub struct SockJsHttp {
    link: SockJsLink,
    /// A heartbeat went out: the next read reports the client alive. Its receiving request
    /// being open, or its coming back within the disconnect delay, is what SockJS has for a
    /// pong.
    alive: bool,
}

impl SockJsHttp {
    /// The session task's side of `link`.
    pub fn new(link: SockJsLink) -> Self {
        Self { link, alive: false }
    }

    fn push(&self, message: Bytes) -> io::Result<()> {
        let mut state = self.link.lock();
        match state.session.push(message) {
            Ok(()) => Ok(()),
            Err(_) => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }
}

impl Transport for SockJsHttp {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let mut state = self.link.lock();
        if let Some(message) = state.session.next_inbound() {
            drop(state);
            self.link.shared.changed.notify(usize::MAX);
            return Poll::Ready(Some(Inbound::Text(message)));
        }
        if std::mem::take(&mut self.alive) {
            return Poll::Ready(Some(Inbound::Pong));
        }
        match state.session.ending() {
            Some(Ending::Interrupted | Ending::Expired) => return Poll::Ready(None),
            // The server closed it: no closing handshake to wait for.
            Some(Ending::Closed(..)) => return Poll::Ready(Some(Inbound::Close(None))),
            None => {}
        }
        state.task = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.link.lock();
        if state.session.has_room() || state.session.ending().is_some() {
            return Poll::Ready(Ok(()));
        }
        // Until a receiver takes what waits; a client that never comes back expires the
        // session, which ends this wait too.
        state.task = Some(cx.waker().clone());
        Poll::Pending
    }

    fn start_send(&mut self, transmit: Transmit) -> io::Result<()> {
        match transmit {
            Transmit::Frame(delivery) => self.push(delivery.frame.to_bytes()),
            Transmit::Ping => {
                self.link.lock().session.heartbeat();
                self.alive = true;
                Ok(())
            }
            Transmit::Close(close) => {
                self.link.close(close.code.as_u16(), &close.reason);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.link.lock().wake_receiver();
        Poll::Ready(Ok(()))
    }
}

impl TextTransport for SockJsHttp {
    fn queue_text(&mut self, text: Bytes) -> io::Result<()> {
        self.push(text)
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
