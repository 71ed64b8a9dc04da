//! The server side: the hub and each connection's session, driven together by the core's
//! harness as roomcast-io's run loops drive them, and watched through its tap; each session's
//! transmits go out on its connection's link.

use roomcast_core::envelope::Ref;
use roomcast_core::harness::Tap;

use super::*;

/// What the simulation sees pass between the hub, its engine and its sessions, as the harness
/// moves it: the oracle weighs each resume when the hub takes it (it learns what is stored from
/// the engine), the engine's news goes to the trace, and a planted bug alters the hub's output
/// before the sessions get it.
pub(super) struct Wire {
    codec: Codec,
    pub(super) oracle: Oracle,
    /// A join's resume, by ref, weighed when the hub took it: whether history covered it
    /// then, and what history held.
    pub(super) expected: BTreeMap<u64, (bool, String)>,
    /// The engine fails now and then: `unavailable` is an answer to expect.
    pub(super) faulty: bool,
    /// The run's figures: kept here, where the closes and stored messages are counted.
    pub(super) summary: Summary,
    planted: Option<(Planted, Breaker)>,
    /// Sessions that closed, and their close codes, for the trace.
    closed: Vec<(SessionId, u16)>,
    /// What passed between the hub and the engine, for the trace.
    pub(super) notes: Vec<String>,
}

impl Wire {
    pub(super) fn new(planted: Option<Planted>, faulty: bool) -> Self {
        Self {
            codec: Codec::new(),
            oracle: Oracle::new(HISTORY, ROOMS),
            expected: BTreeMap::new(),
            faulty,
            summary: Summary::default(),
            planted: planted.map(|bug| (bug, Breaker::default())),
            closed: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl Tap for Wire {
    /// A join with a `since` is weighed as the hub takes it: the oracle has seen every message
    /// stored before, since the hub's output is drained after each of its inputs.
    fn session_event(&mut self, now: Instant, session: SessionId, event: &SessionEvent) {
        match event {
            SessionEvent::Request(request) => {
                if let (
                    ClientMessage::Join {
                        room,
                        since: Some(since),
                    },
                    Some(reference),
                ) = (&request.message, &request.reference)
                {
                    let n = match reference {
                        Ref::Number(n) => *n,
                        _ => unreachable!("the simulation sends numbers"),
                    };
                    let r = index(room.as_str());
                    let covered = self.oracle.covers(r, *since, now);
                    self.expected
                        .insert(n, (covered, self.oracle.describe(r, now)));
                }
            }
            SessionEvent::Closed(close) => {
                match close.code {
                    CloseCode::SlowConsumer => self.summary.slow_consumer_closes += 1,
                    CloseCode::HeartbeatTimeout => self.summary.heartbeat_closes += 1,
                    _ => {}
                }
                self.closed.push((session, close.code.as_u16()));
            }
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

impl World {
    /// What the engine stored, to the oracle; the results of the server's commands; every
    /// connection's transmits to its link; then the oracle forgets what the engine forgot.
    pub(super) fn pump(&mut self) -> Result<(), String> {
        self.heard();
        self.learn()?;
        self.results()?;
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.pump_conn(id);
        }
        for r in 0..ROOMS {
            let followed = self.house.hub().is_followed(&StreamId::Room(room(r)));
            self.house.tap_mut().oracle.settle(r, followed, self.now);
        }
        Ok(())
    }

    /// What the engine stored since last asked, to the oracle: when the engine stored it,
    /// whatever news of it the hub has had.
    pub(super) fn learn(&mut self) -> Result<(), String> {
        for (stream, epoch) in self.house.engine_mut().take_epochs() {
            if let StreamId::Room(room) = stream {
                let wire = self.house.tap_mut();
                wire.oracle.saw_epoch(index(room.as_str()), epoch)?;
            }
        }
        for (stream, at, when) in self.house.engine_mut().take_stored() {
            if let StreamId::Room(room) = stream {
                let wire = self.house.tap_mut();
                wire.oracle.stored(index(room.as_str()), at, when)?;
                wire.summary.published += 1;
            }
        }
        Ok(())
    }

    /// The results of the server's commands (the HTTP API's publish and notify): each comes
    /// once, stored or, from a failing engine, `unavailable`.
    fn results(&mut self) -> Result<(), String> {
        while let Some(event) = self.house.poll_hub_event() {
            let HubEvent::Done { ticket, result } = event else {
                continue;
            };
            if !self.api.remove(&ticket) {
                return Err(format!("a result for {ticket:?}, twice or never asked"));
            }
            match result {
                Ok(_) => {}
                Err(HubError::Unavailable(_)) if self.house.tap().faulty => {
                    self.house.tap_mut().summary.unavailable += 1;
                }
                Err(error) => return Err(format!("{ticket:?}: {error}")),
            }
        }
        Ok(())
    }

    /// What the tap saw since it was last asked, to the trace.
    fn heard(&mut self) {
        let wire = self.house.tap_mut();
        let notes = std::mem::take(&mut wire.notes);
        let closed = std::mem::take(&mut wire.closed);
        for note in notes {
            self.log(note);
        }
        for (session, code) in closed {
            let client = self
                .by_session
                .get(&session)
                .map(|conn| self.conns[conn].client);
            let c = client.map_or_else(|| "?".to_owned(), |c| c.to_string());
            self.log(format!("c{c}: {session} closed with {code}"));
        }
    }

    /// One connection's transmits to its link, while its client reads (or into its black hole);
    /// a closed session's connection is let go.
    fn pump_conn(&mut self, id: u64) {
        let conn = &self.conns[&id];
        let (hub_id, c, black_hole) = (conn.hub_id, conn.client, conn.black_hole.is_some());
        let out = if self.clients[c].is_reading() || black_hole {
            self.house.take_transmits(hub_id)
        } else {
            Vec::new()
        };
        let closed = self
            .house
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
            self.by_session.remove(&hub_id);
            self.house.remove(hub_id);
        }
    }
}
