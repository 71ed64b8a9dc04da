//! A hub and its sessions driven together on a virtual clock: the smallest correct driver, with
//! no IO and no clock, for the crate docs, the tests, the fuzz bodies and the simulation.
//!
//! A [`Harness`] is to roomcast what quinn-proto's test `Pair` is to QUIC: it owns one [`Hub`]
//! and a [`Session`] per connection and moves every output to where it belongs, after every
//! input, until nothing moves (str0m's rule). [`Harness::drive`] is the routing to read when
//! writing a driver:
//!
//! - a session's events go to the hub: a request to [`Hub::handle_request`], the close to
//!   [`Hub::disconnect`], an application message to [`Harness::poll_app`];
//! - the hub's transmits go to the sessions, drained after each input of the hub: a
//!   [`To`](HubTransmit::To) batch with [`Session::deliver_batch`], a
//!   [`Fanout`](HubTransmit::Fanout) to every member but `except` with [`Session::deliver`];
//! - the hub's engine operations go to the engine (a [`MemoryEngine`] unless another is given),
//!   and the engine's events back to [`Hub::handle_engine`]; the results of the hub's own
//!   commands wait in [`Harness::poll_hub_event`];
//! - the time: [`advance_to`](Harness::advance_to) gives it to the hub and to every session
//!   (a driver may wake early or late; a state machine does exactly what is due).
//!
//! What a session transmits stays in it until the test takes it
//! ([`take_frames`](Harness::take_frames), [`take_json`](Harness::take_json), ...), as bytes
//! stay in a socket nobody reads: past its queue budget, the session closes as a slow
//! consumer, as in production.
//!
//! Time is only ever an argument: the harness starts at an instant its caller gives and moves
//! only when told. Everything is ordered, so the same inputs give the same outputs.
//!
//! A [`Tap`] sees each output as it moves, before it arrives, and may change a hub transmit (a
//! bug planted on purpose, to prove that a test's checks catch it).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::delivery::{SessionId, Shared};
use crate::engine::{Engine, EngineEvent, MemoryEngine, MemoryLimits, Operation};
use crate::envelope::{ClientEnvelope, Codec};
use crate::hub::{Connect, Hub, HubError, HubEvent, Transmit as HubTransmit, recipients};
use crate::session::{Session, SessionConfig, SessionError, SessionEvent, SessionKind, Transmit};

/// Sees what the harness moves, at the moment it moves, before it arrives. Every hook does
/// nothing unless implemented; `()` is the tap that sees nothing.
///
/// One hook per kind of output: another output queue of the core gets a hook of its own here.
pub trait Tap {
    /// A session's event, before the hub (or [`Harness::poll_app`]) takes it.
    fn session_event(&mut self, now: Instant, session: SessionId, event: &SessionEvent) {
        let _ = (now, session, event);
    }

    /// A transmit of the hub, before it is routed to the sessions. It may be changed.
    fn hub_transmit(&mut self, now: Instant, transmit: &mut HubTransmit) {
        let _ = (now, transmit);
    }

    /// An operation of the hub, before the engine takes it.
    fn engine_operation(&mut self, now: Instant, operation: &Operation) {
        let _ = (now, operation);
    }

    /// An event of the engine, before the hub takes it.
    fn engine_event(&mut self, now: Instant, event: &EngineEvent) {
        let _ = (now, event);
    }
}

impl Tap for () {}

/// A hub and its sessions, driven together. See the [module docs](self).
///
/// **Method taxonomy**, as in the core: getters take `&self`; inputs
/// ([`connect`](Self::connect), [`handle_text`](Self::handle_text),
/// [`feed_session`](Self::feed_session), [`feed_hub`](Self::feed_hub),
/// [`remove`](Self::remove), [`advance_to`](Self::advance_to)) drive before they return;
/// outputs are drained ([`poll_transmit`](Self::poll_transmit), [`poll_app`](Self::poll_app),
/// [`poll_timeout`](Self::poll_timeout)). [`hub_mut`](Self::hub_mut) and
/// [`session_mut`](Self::session_mut) reach past the harness, for a test that inspects the raw
/// outputs; [`drive`](Self::drive) then moves what they left.
#[derive(Debug)]
pub struct Harness<T = (), E = MemoryEngine> {
    hub: Hub,
    engine: E,
    /// The results of the hub's commands, not yet taken.
    hub_events: VecDeque<HubEvent>,
    /// Ordered by id, so every run moves things in the same order.
    sessions: BTreeMap<SessionId, Connection>,
    now: Instant,
    config: SessionConfig,
    codec: Codec,
    tap: T,
    app: VecDeque<(SessionId, ClientEnvelope)>,
    strays: usize,
}

#[derive(Debug)]
struct Connection {
    session: Session,
    /// Not yet disconnected from the hub.
    in_hub: bool,
}

impl Harness {
    /// A harness around `hub` and a [`MemoryEngine`] of the default budgets, its clock at
    /// `now`. Sessions get the default configuration and codec; see
    /// [`with_session_config`](Self::with_session_config).
    pub fn new(hub: Hub, now: Instant) -> Self {
        Harness::with_engine(hub, MemoryEngine::new(MemoryLimits::default(), 1), now)
    }
}

impl<E: Engine> Harness<(), E> {
    /// A harness around `hub` and `engine`, its clock at `now`.
    pub fn with_engine(hub: Hub, engine: E, now: Instant) -> Self {
        Self {
            hub,
            engine,
            hub_events: VecDeque::new(),
            sessions: BTreeMap::new(),
            now,
            config: SessionConfig::default(),
            codec: Codec::new(),
            tap: (),
            app: VecDeque::new(),
            strays: 0,
        }
    }
}

impl<T: Tap, E: Engine> Harness<T, E> {
    /// The same harness, seen by `tap`.
    pub fn with_tap<U: Tap>(self, tap: U) -> Harness<U, E> {
        Harness {
            hub: self.hub,
            engine: self.engine,
            hub_events: self.hub_events,
            sessions: self.sessions,
            now: self.now,
            config: self.config,
            codec: self.codec,
            tap,
            app: self.app,
            strays: self.strays,
        }
    }

    /// Sessions [`connect`](Self::connect)ed from now on get this configuration and codec.
    pub fn with_session_config(mut self, config: SessionConfig, codec: Codec) -> Self {
        self.config = config;
        self.codec = codec;
        self
    }

    // Getters.

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The hub, past the harness: what a call queues stays queued until [`drive`](Self::drive).
    pub fn hub_mut(&mut self) -> &mut Hub {
        &mut self.hub
    }

    /// The engine.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The engine, past the harness.
    pub fn engine_mut(&mut self) -> &mut E {
        &mut self.engine
    }

    /// A session, until [`remove`](Self::remove)d.
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id).map(|connection| &connection.session)
    }

    /// A session, past the harness: what a call queues stays queued until
    /// [`drive`](Self::drive).
    pub fn session_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.sessions
            .get_mut(&id)
            .map(|connection| &mut connection.session)
    }

    /// The sessions, in order of id.
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, &Session)> + '_ {
        self.sessions
            .iter()
            .map(|(id, connection)| (*id, &connection.session))
    }

    /// The tap.
    pub fn tap(&self) -> &T {
        &self.tap
    }

    /// The tap, to read or reset what it gathered.
    pub fn tap_mut(&mut self) -> &mut T {
        &mut self.tap
    }

    /// Deliveries the hub addressed to a session that was not in it: never connected, or
    /// disconnected before the transmit was made. The hub's output is drained after each of its
    /// inputs, so a correct hub makes none.
    pub fn strays(&self) -> usize {
        self.strays
    }

    // Inputs.

    /// A connection of `kind` authenticates as `connect.user`: a session is made at
    /// [`now`](Self::now), connected to the hub and accepted, so its first frame is the
    /// `welcome`, then the hub's `streams`. A hub error leaves nothing behind.
    pub fn connect(&mut self, kind: SessionKind, connect: Connect) -> Result<SessionId, HubError> {
        let user = connect.user.clone();
        let mut session = Session::new(kind, self.config.clone(), self.codec.clone(), self.now);
        let id = self.hub.connect(self.now, connect)?;
        // Accepted before anything is routed to it: a session in its handshake takes no
        // deliveries.
        session.accept(self.now, id, user);
        let connection = Connection {
            session,
            in_hub: true,
        };
        self.sessions.insert(id, connection);
        self.drive();
        Ok(id)
    }

    /// A text frame from the client of `session`.
    ///
    /// # Panics
    ///
    /// If the harness has no such session.
    pub fn handle_text(&mut self, session: SessionId, text: &str) -> Result<(), SessionError> {
        self.feed_session(session, |session, now| session.handle_text(now, text))
    }

    /// Any input to a session (`handle_pong`, `handle_close`, `shutdown`, ...), given the
    /// clock; then drives.
    ///
    /// # Panics
    ///
    /// If the harness has no such session.
    pub fn feed_session<R>(
        &mut self,
        session: SessionId,
        input: impl FnOnce(&mut Session, Instant) -> R,
    ) -> R {
        let now = self.now;
        let Some(connection) = self.sessions.get_mut(&session) else {
            panic!("the harness has no session {session}");
        };
        let result = input(&mut connection.session, now);
        self.drive();
        result
    }

    /// Any input to the hub (`publish`, `notify`, `broadcast`, ...), given the clock; then
    /// drives. A session leaves the hub through [`remove`](Self::remove) or its own close.
    pub fn feed_hub<R>(&mut self, input: impl FnOnce(&mut Hub, Instant) -> R) -> R {
        let result = input(&mut self.hub, self.now);
        self.drive();
        result
    }

    /// The connection is gone (a reset, or the driver dropped it): the hub lets go of the
    /// session, and the session, with what it had not transmitted, is returned.
    pub fn remove(&mut self, session: SessionId) -> Option<Session> {
        let connection = self.sessions.remove(&session)?;
        if connection.in_hub {
            self.hub.disconnect(self.now, session);
        }
        self.drive();
        Some(connection.session)
    }

    /// Moves the clock by `by`; see [`advance_to`](Self::advance_to).
    pub fn advance(&mut self, by: Duration) {
        self.advance_to(self.now + by);
    }

    /// Moves the clock to `at` (never back), and gives the time to the hub and then to every
    /// session, whether a timer is due or not, each followed by a drive. A driver that slept past
    /// several deadlines wakes once: to stop at each, use
    /// [`advance_to_next_timeout`](Self::advance_to_next_timeout).
    pub fn advance_to(&mut self, at: Instant) {
        self.now = self.now.max(at);
        // The hub first: history is pruned before anything reads it.
        self.hub.handle_timeout(self.now);
        self.drive();
        for connection in self.sessions.values_mut() {
            connection.session.handle_timeout(self.now);
        }
        self.drive();
    }

    /// Moves the clock to the earliest timer of the hub and the sessions, and returns when it
    /// was; `None`, and nothing moves, when no timer is armed.
    pub fn advance_to_next_timeout(&mut self) -> Option<Instant> {
        let at = self.poll_timeout()?;
        self.advance_to(at);
        Some(at)
    }

    /// Moves every output to where it belongs until nothing moves; returns whether anything
    /// did. Every input of the harness ends with it: call it after reaching past the harness.
    pub fn drive(&mut self) -> bool {
        let mut moved = self.route_transmits();
        loop {
            let events = self.move_session_events();
            let engine = self.move_engine();
            if !events && !engine {
                break;
            }
            moved = true;
        }
        moved
    }

    // Outputs.

    /// The next thing `session` transmits, as its connection's transport would take it.
    pub fn poll_transmit(&mut self, session: SessionId) -> Option<Transmit> {
        let now = self.now;
        self.session_mut(session)?.poll_transmit(now)
    }

    /// Everything `session` transmits now.
    pub fn take_transmits(&mut self, session: SessionId) -> Vec<Transmit> {
        std::iter::from_fn(|| self.poll_transmit(session)).collect()
    }

    /// The frames `session` transmits now, in order; its pings, keep-alives and close are
    /// taken and dropped (a client that takes them uses
    /// [`take_transmits`](Self::take_transmits)).
    pub fn take_frames(&mut self, session: SessionId) -> Vec<Shared> {
        self.take_transmits(session)
            .into_iter()
            .filter_map(|transmit| match transmit {
                Transmit::Frame(delivery) => Some(delivery),
                _ => None,
            })
            .collect()
    }

    /// The frames `session` transmits now, as JSON; see [`take_frames`](Self::take_frames).
    ///
    /// # Panics
    ///
    /// If a frame is not JSON (every frame roomcast encodes is).
    pub fn take_json(&mut self, session: SessionId) -> Vec<Value> {
        self.take_frames(session)
            .iter()
            .map(
                |delivery| match serde_json::from_str(delivery.frame.as_str()) {
                    Ok(value) => value,
                    Err(error) => {
                        panic!("a frame that is not JSON ({error}): {:?}", delivery.frame)
                    }
                },
            )
            .collect()
    }

    /// The next result of a command given to the hub (`publish`, `notify`, `broadcast`).
    pub fn poll_hub_event(&mut self) -> Option<HubEvent> {
        self.hub_events.pop_front()
    }

    /// The next message of an application-registered type, and the session it came from: the
    /// application owes it an answer when it has a `ref`, under the hub's rule.
    pub fn poll_app(&mut self) -> Option<(SessionId, ClientEnvelope)> {
        self.app.pop_front()
    }

    /// The earliest timer of the hub and the sessions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self
            .sessions
            .values()
            .filter_map(|connection| connection.session.poll_timeout());
        self.hub.poll_timeout().into_iter().chain(sessions).min()
    }

    // Routing.

    /// Each session's events, in order of id: every one an input of the hub, whose transmits
    /// are routed before the next. Returns whether any event moved.
    fn move_session_events(&mut self) -> bool {
        let mut moved = false;
        let mut next = self.sessions.keys().next().copied();
        while let Some(id) = next {
            while let Some(event) = self
                .sessions
                .get_mut(&id)
                .and_then(|connection| connection.session.poll_event())
            {
                moved = true;
                self.tap.session_event(self.now, id, &event);
                match event {
                    SessionEvent::Request(request) => {
                        self.hub.handle_request(self.now, id, request);
                    }
                    SessionEvent::Closed(_) => self.leave_hub(id),
                    SessionEvent::App(message) => self.app.push_back((id, message)),
                    SessionEvent::Pinged => {}
                }
                // As a runtime's driver does: an engine that answers in the same call has
                // answered before the next event.
                self.route_transmits();
                self.move_engine();
            }
            next = self
                .sessions
                .range((Bound::Excluded(id), Bound::Unbounded))
                .next()
                .map(|(id, _)| *id);
        }
        moved
    }

    /// The hub's operations to the engine, and the engine's events back, each event an input
    /// of the hub whose transmits are routed before the next; the hub's results kept. Returns
    /// whether anything moved.
    fn move_engine(&mut self) -> bool {
        let mut moved = false;
        while let Some(operation) = self.hub.poll_engine() {
            moved = true;
            self.tap.engine_operation(self.now, &operation);
            self.engine.handle(self.now, operation);
        }
        while let Some(event) = self.engine.poll_event() {
            moved = true;
            self.tap.engine_event(self.now, &event);
            self.hub.handle_engine(self.now, event);
            self.route_transmits();
        }
        while let Some(event) = self.hub.poll_event() {
            moved = true;
            self.hub_events.push_back(event);
        }
        moved
    }

    /// The hub's transmits, in order, to their sessions. Returns whether there were any.
    fn route_transmits(&mut self) -> bool {
        let mut moved = false;
        while let Some(mut transmit) = self.hub.poll_transmit() {
            moved = true;
            self.tap.hub_transmit(self.now, &mut transmit);
            self.route(transmit);
        }
        moved
    }

    /// One transmit into the queues of its sessions: a batch whole, a fan-out one shared
    /// pointer per recipient. Delivering never waits: a session over its budget closes itself.
    fn route(&mut self, transmit: HubTransmit) {
        let now = self.now;
        match transmit {
            HubTransmit::To {
                session,
                deliveries,
            } => match self.in_hub(session) {
                Some(to) => to.deliver_batch(now, deliveries),
                None => self.strays += deliveries.len(),
            },
            HubTransmit::Fanout {
                sessions,
                except,
                delivery,
            } => {
                for session in recipients(&sessions, except) {
                    match self.in_hub(session) {
                        Some(to) => to.deliver(now, Arc::clone(&delivery)),
                        None => self.strays += 1,
                    }
                }
            }
        }
    }

    /// A session the hub knows.
    fn in_hub(&mut self, session: SessionId) -> Option<&mut Session> {
        self.sessions
            .get_mut(&session)
            .filter(|connection| connection.in_hub)
            .map(|connection| &mut connection.session)
    }

    fn leave_hub(&mut self, session: SessionId) {
        if let Some(connection) = self.sessions.get_mut(&session)
            && std::mem::replace(&mut connection.in_hub, false)
        {
            self.hub.disconnect(self.now, session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::ClientMessage;
    use crate::hub::HubConfig;
    use crate::names::UserId;

    fn server() -> Harness {
        // The hub's own timer (its heads check) out of the way: these tests are about the
        // sessions' timers.
        let config = HubConfig {
            check_every: Duration::from_secs(3600),
            ..HubConfig::default()
        };
        Harness::new(Hub::new(config), crate::testing::start())
    }

    fn connect(server: &mut Harness<impl Tap>, user: &str) -> SessionId {
        let connect = Connect {
            access: Default::default(),
            user: UserId::new(user).expect("valid"),
            broadcast: false,
            rooms: vec![],
            cursor: None,
        };
        let id = server.connect(SessionKind::WebSocket, connect);
        id.expect("connects")
    }

    #[test]
    fn an_application_message_goes_to_the_application_not_the_hub() {
        let codec = Codec::new().with_app_type("vote").expect("a free type");
        let mut server = server().with_session_config(SessionConfig::default(), codec);
        let alice = connect(&mut server, "alice");
        server
            .handle_text(alice, r#"{"type":"vote","ref":1,"data":2}"#)
            .expect("a WebSocket session takes frames");
        let (from, message) = server.poll_app().expect("the vote");
        assert_eq!(from, alice);
        assert!(
            matches!(message.message, ClientMessage::App(_)),
            "{message:?}"
        );
        assert_eq!(server.poll_app(), None);
        let types: Vec<Value> = server
            .take_json(alice)
            .into_iter()
            .map(|v| v["type"].clone())
            .collect();
        assert_eq!(types, ["welcome", "streams"], "the hub did not answer it");
    }

    #[test]
    fn a_delivery_for_a_session_gone_from_the_hub_is_a_stray() {
        let mut server = server();
        let alice = connect(&mut server, "alice");
        // Past the harness: the hub answers, and the session leaves before the answer moves.
        let request = Codec::new()
            .decode_client(r#"{"type":"ping","ref":1}"#)
            .expect("valid");
        let now = server.now();
        server.hub_mut().handle_request(now, alice, request);
        assert_eq!(server.strays(), 0);
        let session = server.remove(alice).expect("alice's session");
        assert_eq!(server.strays(), 1, "the ping's reply");
        assert_eq!(
            session.queued_frames(),
            2,
            "the welcome and the streams only"
        );
    }

    /// Counts the events and transmits it sees, and empties every `To` batch, as a bug planted
    /// in the hub's output would.
    #[derive(Default)]
    struct Counting {
        events: usize,
        transmits: usize,
    }

    impl Tap for Counting {
        fn session_event(&mut self, _: Instant, _: SessionId, _: &SessionEvent) {
            self.events += 1;
        }

        fn hub_transmit(&mut self, _: Instant, transmit: &mut HubTransmit) {
            self.transmits += 1;
            if let HubTransmit::To { deliveries, .. } = transmit {
                deliveries.clear();
            }
        }
    }

    #[test]
    fn a_tap_sees_what_moves_and_may_change_the_hubs_output() {
        let mut server = server().with_tap(Counting::default());
        let alice = connect(&mut server, "alice");
        assert_eq!(server.tap().transmits, 1, "the streams");
        server
            .handle_text(alice, r#"{"type":"join","ref":1,"room":"lobby"}"#)
            .expect("a WebSocket session takes frames");
        assert_eq!((server.tap().events, server.tap().transmits), (1, 2));
        let types: Vec<Value> = server
            .take_json(alice)
            .into_iter()
            .map(|v| v["type"].clone())
            .collect();
        assert_eq!(types, ["welcome"], "the tap emptied the hub's batches");
    }

    #[test]
    fn time_reaches_every_session_and_the_next_timeout_is_the_earliest() {
        let mut server = server();
        let start = server.now();
        let alice = connect(&mut server, "alice");
        server.advance(Duration::from_secs(10));
        let bob = connect(&mut server, "bob");
        server.take_frames(alice);
        server.take_frames(bob);
        let first = server.advance_to_next_timeout();
        assert_eq!(first, Some(start + Duration::from_secs(25)), "alice's ping");
        assert_eq!(server.poll_transmit(alice), Some(Transmit::Ping));
        assert_eq!(server.poll_transmit(bob), None);
        // A late wake: alice's pong deadline has long passed, bob's first ping is due.
        server.advance(Duration::from_secs(100));
        let state = server.session(alice).map(Session::state);
        assert_eq!(
            state,
            Some(crate::session::SessionState::Closing),
            "no pong"
        );
        assert_eq!(server.poll_transmit(bob), Some(Transmit::Ping));
        assert_eq!(server.hub().session_count(), 1, "alice left the hub");
    }
}
