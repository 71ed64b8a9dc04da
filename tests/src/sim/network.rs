//! The fake network: links with a latency, in order, that can turn into black holes.

use super::*;

/// Client to server.
#[derive(Debug)]
pub(super) enum Up {
    Text(String),
    Pong,
    CloseEcho,
    /// The client dropped the connection (a FIN or RST the server sees).
    Reset,
}

/// Server to client.
#[derive(Debug)]
pub(super) enum Down {
    Frame(Shared),
    Ping,
    KeepAlive,
    Close(Close),
}

#[derive(Debug)]
pub(super) enum Packet {
    Up(Up),
    Down(Down),
}

/// The server's side of one connection (its session is in its hub's harness), and its link.
pub(super) struct Conn {
    pub(super) client: usize,
    /// The hub it went to.
    pub(super) hub: usize,
    pub(super) hub_id: SessionId,
    pub(super) latency: Duration,
    /// Since when packets vanish both ways, neither end told.
    pub(super) black_hole: Option<Instant>,
    /// The latest arrival scheduled each way: a link delivers in order.
    pub(super) last_up: Instant,
    pub(super) last_down: Instant,
}

impl World {
    pub(super) fn post(&mut self, conn: u64, packet: Packet) {
        let Some(link) = self.conns.get_mut(&conn) else {
            return;
        };
        if link.black_hole.is_some() {
            return;
        }
        let client = link.client;
        let last = match packet {
            Packet::Up(_) => &mut link.last_up,
            Packet::Down(_) => &mut link.last_down,
        };
        let at = (self.now + link.latency).max(*last);
        *last = at;
        self.seq += 1;
        self.net.insert((at, self.seq), (conn, client, packet));
    }

    pub(super) fn arrive(&mut self, conn: u64, c: usize, packet: Packet) -> Result<(), String> {
        let link = self.conns.get(&conn);
        if link.is_some_and(|link| link.black_hole.is_some()) || self.holed.contains(&conn) {
            return Ok(());
        }
        match packet {
            Packet::Up(up) => {
                let Some(link) = link else {
                    return Ok(()); // the server is done with it
                };
                let hub_id = link.hub_id;
                let house = &mut self.hubs[link.hub];
                match up {
                    Up::Text(text) => house
                        .handle_text(hub_id, &text)
                        .map_err(|e| e.to_string())?,
                    Up::Pong => house
                        .feed_session(hub_id, |session, now| session.handle_pong(now))
                        .map_err(|e| e.to_string())?,
                    Up::CloseEcho | Up::Reset => {
                        house.feed_session(hub_id, |session, now| session.handle_close(now, None));
                    }
                }
            }
            Packet::Down(down) => {
                // What the server sent before it let go still arrives.
                if self.clients[c].conn != Some(conn) {
                    return Ok(()); // the client gave up on this connection
                }
                self.inbox.entry(c).or_default().push_back(down);
                self.read(c)?;
            }
        }
        Ok(())
    }

    /// Client `c` reads what arrived, unless it is stalled.
    pub(super) fn read(&mut self, c: usize) -> Result<(), String> {
        while self.clients[c].is_reading() {
            let Some(down) = self.inbox.get_mut(&c).and_then(VecDeque::pop_front) else {
                break;
            };
            let conn = self.clients[c].conn.expect("a reading client is connected");
            self.clients[c].silent_deadline = Some(self.now + SILENCE);
            match down {
                Down::Ping => self.post(conn, Packet::Up(Up::Pong)),
                Down::KeepAlive => {}
                Down::Close(close) => {
                    self.post(conn, Packet::Up(Up::CloseEcho));
                    let why = format!(
                        "closed by the server: {} {}",
                        close.code.as_u16(),
                        close.reason
                    );
                    self.lost(c, &why);
                }
                Down::Frame(delivery) => {
                    let message = self
                        .codec
                        .decode_server(delivery.frame.as_str())
                        .map_err(|e| format!("an invalid frame: {e:?}"))?;
                    if self.trace_len > 40 {
                        let frame = delivery.frame.as_str();
                        self.log(format!("c{c} <- {}", &frame[..frame.len().min(120)]));
                    }
                    self.count(c, &message);
                    let hub = self.clients[c].hub.expect("a reading client has connected");
                    let (now, faulty) = (self.now, self.faulty[hub]);
                    self.clients[c]
                        .receive(message, &mut self.ledger, faulty, now)
                        .map_err(|broken| format!("c{c}: {broken}"))?;
                }
            }
        }
        Ok(())
    }
}

impl World {
    /// A frame client `c` received, in the run's figures.
    fn count(&mut self, c: usize, message: &ServerMessage) {
        let summary = &mut self.ledger.summary;
        // Resumes: (recovered or not) in a `streams` or a join's reply.
        let mut resumes = Vec::new();
        match message {
            ServerMessage::Reply(reply) => {
                summary.answered += 1;
                resumes.extend(reply.recovered);
            }
            ServerMessage::Message { .. } => summary.received += 1,
            ServerMessage::Typing { .. } => summary.typing += 1,
            ServerMessage::Streams { streams } => {
                let rooms = streams
                    .iter()
                    .filter(|s| matches!(s.stream, Stream::Room(_)));
                resumes.extend(rooms.filter_map(|start| start.recovered));
            }
            _ => {}
        }
        for recovered in resumes {
            summary.resumed += 1;
            summary.not_recovered += u64::from(!recovered);
            summary.resumed_elsewhere += u64::from(self.clients[c].moved);
        }
    }
}
