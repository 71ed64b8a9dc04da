//! The server side: each hub and its connections' sessions, driven together by the core's
//! harness as roomcast-io's run loops drive them, and watched through its tap; each session's
//! transmits go out on its connection's link. The hubs are driven in turn, as separate
//! processes would run at once.

use roomcast_core::envelope::Ref;
use roomcast_core::harness::Tap;

use super::*;

/// What the world knows apart from the hubs, whichever hub a client is on: the oracle, each
/// join's resume as weighed when its hub took it, and the run's figures.
pub(super) struct Ledger {
    pub(super) oracle: Oracle,
    /// A join's resume, by ref, weighed when the hub took it: whether history covered it
    /// then, and what history held.
    pub(super) expected: BTreeMap<u64, (bool, String)>,
    pub(super) summary: Summary,
}

impl Ledger {
    pub(super) fn new() -> Self {
        Self {
            oracle: Oracle::new(HISTORY, ROOMS),
            expected: BTreeMap::new(),
            summary: Summary::default(),
        }
    }
}

/// What the simulation sees pass between one hub, its engine and its sessions, as the harness
/// moves it: each join's resume as the hub takes it (the world weighs it against the oracle
/// before the oracle learns anything newer), the engine's news and the closes for the trace; a
/// planted bug alters the hub's output before the sessions get it.
pub(super) struct Wire {
    codec: Codec,
    /// Joins with a `since` the hub took, not weighed yet: (ref, room, since, when).
    joins: Vec<(u64, usize, Position, Instant)>,
    planted: Option<(Planted, Breaker)>,
    /// Sessions that closed, and their close codes.
    closed: Vec<(SessionId, CloseCode)>,
    /// What passed between the hub and the engine, for the trace.
    notes: Vec<String>,
}

impl Wire {
    pub(super) fn new(planted: Option<Planted>) -> Self {
        Self {
            codec: Codec::new(),
            joins: Vec::new(),
            planted: planted.map(|bug| (bug, Breaker::default())),
            closed: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl Tap for Wire {
    fn session_event(&mut self, now: Instant, session: SessionId, event: &SessionEvent) {
        match event {
            SessionEvent::Request(request) => {
                if let (
                    ClientMessage::Join {
                        room,
                        since: Some(since),
                        ..
                    },
                    Some(reference),
                ) = (&request.message, &request.reference)
                {
                    let n = match reference {
                        Ref::Number(n) => *n,
                        _ => unreachable!("the simulation sends numbers"),
                    };
                    self.joins.push((n, index(room.as_str()), *since, now));
                }
            }
            SessionEvent::Closed(close) => self.closed.push((session, close.code)),
            _ => {}
        }
    }

    fn engine_event(&mut self, _now: Instant, event: &EngineEvent) {
        let note = match event {
            EngineEvent::Live { stream, at, .. } => format!("engine: live {} {at}", stream.key()),
            EngineEvent::Read {
                op,
                stream,
                view,
                records,
            } => format!(
                "engine: {op:?} read {} head {} first {}: {} records",
                stream.key(),
                view.head,
                view.first,
                records.len()
            ),
            EngineEvent::Appended { op, at, .. } => format!("engine: {op:?} appended at {at}"),
            EngineEvent::Tops { heads, .. } => format!("engine: tops {}", heads.len()),
            other => format!("engine: {other:?}"),
        };
        self.notes.push(note);
    }

    fn hub_transmit(&mut self, _now: Instant, transmit: &mut Transmit) {
        if let Some((bug, breaker)) = &mut self.planted {
            breaker.apply(*bug, &self.codec, transmit);
        }
    }
}

/// Rounds of driving the hubs in turn before they must be still: news one hub's operation
/// makes for another at the same instant moves in a round or two.
const ROUNDS: usize = 1000;

impl World {
    /// Every hub takes what the engine has for it (news one hub's operation made for another);
    /// what the engine stored, to the oracle; the results of the servers' commands; every
    /// connection's transmits to its link; then the oracle forgets what the engine forgot.
    pub(super) fn pump(&mut self) -> Result<(), String> {
        self.drive_all()?;
        self.heard();
        self.learn()?;
        self.results()?;
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.pump_conn(id);
        }
        for r in 0..ROOMS {
            let stream = StreamId::Room(room(r));
            let followed = self.hubs.iter().any(|h| h.hub().is_followed(&stream));
            self.ledger.oracle.settle(r, followed, self.now);
        }
        Ok(())
    }

    /// Drives the hubs in turn until none moves: each takes the engine's news due now.
    fn drive_all(&mut self) -> Result<(), String> {
        for _ in 0..ROUNDS {
            let mut moved = false;
            for house in &mut self.hubs {
                moved |= house.drive();
            }
            if !moved {
                return Ok(());
            }
        }
        Err(format!("the hubs still move after {ROUNDS} rounds"))
    }

    /// Joins the hubs took, weighed against the oracle as it was when they took them (it has
    /// learned nothing since); then what the engine stored since last asked, to the oracle:
    /// when the engine stored it, whatever news of it any hub has had.
    pub(super) fn learn(&mut self) -> Result<(), String> {
        for house in &mut self.hubs {
            for (n, r, since, when) in std::mem::take(&mut house.tap_mut().joins) {
                let oracle = &self.ledger.oracle;
                let expected = (oracle.covers(r, since, when), oracle.describe(r, when));
                self.ledger.expected.insert(n, expected);
            }
        }
        let (epochs, stored) = {
            let mut store = self.store.borrow_mut();
            (store.take_epochs(), store.take_stored())
        };
        for (stream, epoch) in epochs {
            if let StreamId::Room(room) = stream {
                self.ledger.oracle.saw_epoch(index(room.as_str()), epoch)?;
            }
        }
        for (stream, at, when) in stored {
            if let StreamId::Room(room) = stream {
                self.ledger.oracle.stored(index(room.as_str()), at, when)?;
                self.ledger.summary.published += 1;
            }
        }
        Ok(())
    }

    /// The results of the servers' commands (the HTTP API's publish and notify): each comes
    /// once, from the hub it was given to, stored or, from a failing engine link,
    /// `unavailable`.
    fn results(&mut self) -> Result<(), String> {
        for h in 0..self.hubs.len() {
            while let Some(event) = self.hubs[h].poll_hub_event() {
                let HubEvent::Done { ticket, result } = event else {
                    continue;
                };
                if !self.api.remove(&(h, ticket)) {
                    return Err(format!(
                        "hub{h}: a result for {ticket:?}, twice or never asked"
                    ));
                }
                match result {
                    Ok(_) => {}
                    Err(HubError::Unavailable(_)) if self.faulty[h] => {
                        self.ledger.summary.unavailable += 1;
                    }
                    Err(error) => return Err(format!("hub{h}: {ticket:?}: {error}")),
                }
            }
        }
        Ok(())
    }

    /// What the taps saw since they were last asked, to the trace; the closes counted.
    fn heard(&mut self) {
        for h in 0..self.hubs.len() {
            let wire = self.hubs[h].tap_mut();
            let notes = std::mem::take(&mut wire.notes);
            let closed = std::mem::take(&mut wire.closed);
            for note in notes {
                self.log(format!("hub{h} {note}"));
            }
            for (session, code) in closed {
                match code {
                    CloseCode::SlowConsumer => self.ledger.summary.slow_consumer_closes += 1,
                    CloseCode::HeartbeatTimeout => self.ledger.summary.heartbeat_closes += 1,
                    _ => {}
                }
                let client = self
                    .by_session
                    .get(&(h, session))
                    .map(|conn| self.conns[conn].client);
                let c = client.map_or_else(|| "?".to_owned(), |c| c.to_string());
                self.log(format!(
                    "c{c}: hub{h} {session} closed with {}",
                    code.as_u16()
                ));
            }
        }
    }

    /// One connection's transmits to its link, while its client reads (or into its black hole);
    /// a closed session's connection is let go.
    fn pump_conn(&mut self, id: u64) {
        let conn = &self.conns[&id];
        let (h, hub_id, c) = (conn.hub, conn.hub_id, conn.client);
        let black_hole = conn.black_hole.is_some();
        let out = if self.clients[c].is_reading() || black_hole {
            self.hubs[h].take_transmits(hub_id)
        } else {
            Vec::new()
        };
        let closed = self.hubs[h]
            .session(hub_id)
            .is_none_or(|session| session.state() == session::SessionState::Closed);
        for transmit in out {
            let down = match transmit {
                session::Transmit::Frame(delivery) => Down::Frame(delivery),
                session::Transmit::Ping => Down::Ping,
                session::Transmit::KeepAlive => Down::KeepAlive,
                session::Transmit::Close(close) => Down::Close(close),
                _ => continue,
            };
            self.post(id, Packet::Down(down));
        }
        if closed {
            if black_hole {
                self.holed.insert(id);
            }
            self.conns.remove(&id);
            self.by_session.remove(&(h, hub_id));
            self.hubs[h].remove(hub_id);
        }
    }
}
