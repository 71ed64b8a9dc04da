//! The server side: the hub and each connection's session, driven together by the core's
//! harness as roomcast-io's run loops drive them, and watched through its tap; each session's
//! transmits go out on its connection's link.

use roomcast_core::envelope::Ref;
use roomcast_core::harness::Tap;

use super::*;

/// What the simulation sees pass between the hub and its sessions, as the harness moves it: the
/// oracle learns from the hub's output and weighs each resume when the hub takes it, and a
/// planted bug alters the hub's output before the sessions get it.
pub(super) struct Wire {
    codec: Codec,
    pub(super) oracle: Oracle,
    /// A join's expected `recovered`, by ref, from when the hub handled it.
    pub(super) expected: BTreeMap<u64, (bool, String)>,
    /// The run's figures: kept here, where the closes and stored messages are counted.
    pub(super) summary: Summary,
    planted: Option<(Planted, Breaker)>,
    /// Sessions that closed, and their close codes, for the trace.
    closed: Vec<(SessionId, u16)>,
    /// The first promise the hub's output broke.
    broken: Option<String>,
}

impl Wire {
    pub(super) fn new(planted: Option<Planted>) -> Self {
        Self {
            codec: Codec::new(),
            oracle: Oracle::new(HISTORY, ROOMS),
            expected: BTreeMap::new(),
            summary: Summary::default(),
            planted: planted.map(|bug| (bug, Breaker::default())),
            closed: Vec::new(),
            broken: None,
        }
    }

    /// The oracle learns from the hub's output what was stored (a publish's reply) and each
    /// room's epoch (a join's reply).
    fn observe(&mut self, now: Instant, transmit: &Transmit) -> Result<(), String> {
        let Transmit::To { deliveries, .. } = transmit else {
            return Ok(());
        };
        for delivery in deliveries {
            let reply = match self.codec.decode_server(delivery.frame.as_str()) {
                Ok(ServerMessage::Reply(reply)) => reply,
                Ok(ServerMessage::Streams { streams }) => {
                    for start in streams {
                        if let Stream::Room(room) = start.stream {
                            self.oracle
                                .saw_epoch(index(room.as_str()), start.id.epoch)?;
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            if let (Some(room), Some(id)) = (&reply.room, reply.id) {
                let r = index(room.as_str());
                if reply.members.is_some() {
                    self.oracle.saw_epoch(r, id.epoch)?;
                } else {
                    self.oracle.stored(r, id, now)?;
                    self.summary.published += 1;
                }
            }
        }
        Ok(())
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

    fn hub_transmit(&mut self, now: Instant, transmit: &mut Transmit) {
        if let Err(broken) = self.observe(now, transmit) {
            self.broken.get_or_insert(broken);
        }
        if let Some((bug, breaker)) = &mut self.planted {
            breaker.apply(*bug, &self.codec, transmit);
        }
    }
}

impl World {
    /// Every connection's transmits to its link, then the oracle forgets what the hub forgot.
    pub(super) fn pump(&mut self) -> Result<(), String> {
        self.heard()?;
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

    /// What the tap saw since it was last asked: a broken promise ends the run; closes go to
    /// the trace.
    fn heard(&mut self) -> Result<(), String> {
        let wire = self.house.tap_mut();
        if let Some(broken) = wire.broken.take() {
            return Err(broken);
        }
        for (session, code) in std::mem::take(&mut wire.closed) {
            let client = self
                .by_session
                .get(&session)
                .map(|conn| self.conns[conn].client);
            let c = client.map_or_else(|| "?".to_owned(), |c| c.to_string());
            self.log(format!("c{c}: {session} closed with {code}"));
        }
        Ok(())
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
            self.conns.remove(&id);
            self.by_session.remove(&hub_id);
            self.house.remove(hub_id);
        }
    }
}
