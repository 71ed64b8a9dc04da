//! The server side: each connection's session and the hub, pumped until quiet, as
//! roomcast-io's run loops do.

use super::*;

impl World {
    pub(super) fn pump(&mut self) -> Result<(), String> {
        loop {
            let mut progress = false;
            let ids: Vec<u64> = self.conns.keys().copied().collect();
            for id in ids {
                progress |= self.pump_conn(id)?;
            }
            progress |= self.drain_hub()?;
            if !progress {
                break;
            }
        }
        for r in 0..ROOMS {
            let present = !self.hub.members(&room(r)).is_empty();
            self.oracle.settle(r, present, self.now);
        }
        Ok(())
    }

    /// The hub's outputs, after each of its inputs as the hub task does, so the oracle has
    /// seen every stored message before the next request is weighed.
    fn drain_hub(&mut self) -> Result<bool, String> {
        let mut progress = false;
        while let Some(mut transmit) = self.hub.poll_transmit() {
            progress = true;
            self.observe(&transmit)?;
            if let Some((bug, breaker)) = &mut self.planted {
                breaker.apply(*bug, &self.codec, &mut transmit);
            }
            self.route(transmit);
        }
        Ok(progress)
    }

    /// One connection's session: its events to the hub, its transmits to the link.
    pub(super) fn pump_conn(&mut self, id: u64) -> Result<bool, String> {
        let now = self.now;
        let mut progress = false;
        let conn = self.conns.get_mut(&id).expect("listed");
        let (hub_id, c) = (conn.hub_id, conn.client);
        let mut events = Vec::new();
        while let Some(event) = conn.session.poll_event() {
            events.push(event);
        }
        for event in events {
            progress = true;
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
                            roomcast_core::envelope::Ref::Number(n) => *n,
                            _ => unreachable!("the simulation sends numbers"),
                        };
                        let r = index(room.as_str());
                        let covered = self.oracle.covers(r, *since, now);
                        self.expected
                            .insert(n, (covered, self.oracle.describe(r, now)));
                    }
                    self.hub.handle_request(now, hub_id, request);
                    self.drain_hub()?;
                }
                SessionEvent::Closed(close) => {
                    match close.code {
                        CloseCode::SlowConsumer => self.summary.slow_consumer_closes += 1,
                        CloseCode::HeartbeatTimeout => self.summary.heartbeat_closes += 1,
                        _ => {}
                    }
                    self.log(format!(
                        "c{c}: {hub_id} closed with {}",
                        close.code.as_u16()
                    ));
                    self.hub.disconnect(now, hub_id);
                }
                _ => {}
            }
        }
        let reading = self.clients[c].is_reading();
        let conn = self.conns.get_mut(&id).expect("listed");
        let mut out = Vec::new();
        if reading || conn.black_hole.is_some() {
            while let Some(transmit) = conn.session.poll_transmit(now) {
                out.push(transmit);
            }
        }
        let closed = conn.session.state() == session::SessionState::Closed;
        for transmit in out {
            progress = true;
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
            let conn = self.conns.remove(&id).expect("listed");
            self.by_session.remove(&conn.hub_id);
            progress = true;
        }
        Ok(progress)
    }

    /// The oracle learns from the hub's output what was stored (a publish's reply) and each
    /// room's epoch (a join's reply).
    pub(super) fn observe(&mut self, transmit: &Transmit) -> Result<(), String> {
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
                    self.oracle.stored(r, id, self.now)?;
                    self.summary.published += 1;
                }
            }
        }
        Ok(())
    }

    pub(super) fn route(&mut self, transmit: Transmit) {
        let now = self.now;
        match transmit {
            Transmit::To {
                session,
                deliveries,
            } => {
                if let Some(conn) = self.by_session.get(&session) {
                    let conn = self.conns.get_mut(conn).expect("mapped");
                    conn.session.deliver_batch(now, deliveries);
                }
            }
            Transmit::Fanout {
                sessions,
                except,
                delivery,
            } => {
                for session in recipients(&sessions, except) {
                    if let Some(conn) = self.by_session.get(&session) {
                        let conn = self.conns.get_mut(conn).expect("mapped");
                        conn.session.deliver(now, delivery.clone());
                    }
                }
            }
            _ => {}
        }
    }
}
