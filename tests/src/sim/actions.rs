//! What clients do, and the faults that happen to them.

use roomcast_core::engine::Retention;

use super::*;

impl World {
    /// One random action of one random client, or a fault.
    pub(super) fn act(&mut self) -> Result<(), String> {
        let c = self.rng.index(self.clients.len());
        let connected = self.clients[c].conn.is_some();
        let sse = self.clients[c].kind == SessionKind::Sse;
        // An SSE client sends nothing: it changes rooms by connecting again.
        let talks = connected && !sse;
        match self.rng.below(100) {
            30..40 if connected && sse => {
                let r = self.rng.index(ROOMS);
                if !self.clients[c].rooms.remove(&r) {
                    self.clients[c].rooms.insert(r);
                }
                self.reset(c);
                self.clients[c].reconnect_at = Some(self.now);
            }
            0..30 if talks => {
                let joined: Vec<usize> = self.in_rooms(c);
                if !joined.is_empty() {
                    let r = joined[self.rng.index(joined.len())];
                    let data = Payload::from_json("1").expect("JSON");
                    let room = room(r);
                    self.send(
                        c,
                        Request::Publish {
                            room: r,
                            reset: false,
                        },
                        ClientMessage::Publish { room, data },
                    );
                }
            }
            30..40 if talks => {
                // A room it is still leaving is joined again once the leave is answered.
                let r = self.rng.index(ROOMS);
                if !self.clients[c].views.contains_key(&r) && self.clients[c].rooms.insert(r) {
                    self.join(c, r);
                }
            }
            40..46 if talks => {
                let joined = self.in_rooms(c);
                if !joined.is_empty() {
                    let r = joined[self.rng.index(joined.len())];
                    self.clients[c].rooms.remove(&r);
                    self.clients[c].views.insert(r, View::Leaving);
                    let message = ClientMessage::Leave { room: room(r) };
                    self.send(c, Request::Leave(r), message);
                }
            }
            46..50 if talks => {
                let to = user(self.rng.index(USERS));
                let data = Payload::from_json("2").expect("JSON");
                self.send(c, Request::Direct, ClientMessage::Direct { to, data });
            }
            50..52 if talks => {
                // Its outbox read up to what it has seen: the senders get receipts.
                if let Some(upto) = self.clients[c].seen_user {
                    self.send(c, Request::Read, ClientMessage::Read { upto });
                }
            }
            52..62 => {
                // A server publishes (the HTTP API), now and then a burst.
                let h = self.rng.index(self.hubs.len());
                let r = self.rng.index(ROOMS);
                let count = if self.rng.chance(20) { 40 } else { 1 };
                for _ in 0..count {
                    let data = Payload::from_json("3").expect("JSON");
                    let ticket = self.hubs[h].feed_hub(|hub, now| hub.publish(now, room(r), data));
                    self.api.insert((h, ticket));
                }
            }
            62..66 => {
                let h = self.rng.index(self.hubs.len());
                let data = Payload::from_json("4").expect("JSON");
                let to = user(self.rng.index(USERS));
                let ticket = self.hubs[h].feed_hub(|hub, now| hub.notify(now, to, None, data));
                self.api.insert((h, ticket));
            }
            66..70 if connected => self.reset(c),
            70..73 if connected => {
                let conn = self.clients[c].conn.expect("connected");
                if let Some(link) = self.conns.get_mut(&conn) {
                    link.black_hole = Some(self.now);
                }
                self.ledger.summary.black_holes += 1;
                self.log(format!("c{c}: its link becomes a black hole"));
            }
            73..77 if connected && self.clients[c].is_reading() => {
                let until = self.now + Duration::from_millis(self.rng.between(500, 6000));
                self.clients[c].stalled_until = Some(until);
                self.clients[c].silent_deadline = None;
                self.ledger.summary.stalls += 1;
                self.log(format!("c{c}: stops reading for a while"));
            }
            78..80 if self.faulty.contains(&true) => {
                let h = self.rng.index(self.hubs.len());
                let outage = Duration::from_millis(self.rng.between(100, 3000));
                if self.faulty[h] && self.store.borrow_mut().flap(h, outage) {
                    self.hubs[h].drive();
                    self.log(format!("hub{h}'s engine link goes down for {outage:?}"));
                }
            }
            80 if self.store.borrow().fails_over() => {
                // What the engine stored so far is the oracle's before the loss, and what it
                // keeps after it is the oracle's again, in the new epoch.
                self.learn()?;
                let r = self.rng.index(ROOMS);
                let retention = Retention {
                    max_messages: HISTORY.max_messages,
                    max_bytes: HISTORY.max_bytes,
                    max_age: HISTORY.max_age,
                };
                let stream = StreamId::Room(room(r));
                let lost = self.store.borrow_mut().lose_tail(&stream, retention);
                self.ledger.oracle.lost(r);
                self.learn()?;
                self.log(format!(
                    "a failover loses room{r}'s last {lost}: a new epoch"
                ));
            }
            81..84 if talks => {
                let joined = self.in_rooms(c);
                if !joined.is_empty() {
                    let r = joined[self.rng.index(joined.len())];
                    let typing = self.rng.chance(70);
                    let message = ClientMessage::Typing {
                        room: room(r),
                        typing,
                    };
                    self.send(c, Request::Typing, message);
                }
            }
            84 => {
                let h = self.rng.index(self.hubs.len());
                self.kill(h);
            }
            77 => {
                self.ledger.summary.storms += 1;
                self.log("a reconnect storm".into());
                for c in 0..self.clients.len() {
                    if self.clients[c].conn.is_some() {
                        self.reset(c);
                        let at = self.now + Duration::from_millis(self.rng.below(300));
                        self.clients[c].reconnect_at = Some(at);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Hub `h`'s process is killed: its kernel resets its connections (each client sees it and
    /// reconnects to any hub), the servers' commands given to it are never answered (their
    /// callers see the reset too), and a new hub on a new node number takes its place. The dead
    /// node's presence stays in the engine until its TTL.
    fn kill(&mut self, h: usize) {
        let conns: Vec<(u64, usize, SessionId)> = self
            .conns
            .iter()
            .filter(|(_, conn)| conn.hub == h)
            .map(|(id, conn)| (*id, conn.client, conn.hub_id))
            .collect();
        for (id, c, hub_id) in conns {
            self.conns.remove(&id);
            self.by_session.remove(&(h, hub_id));
            if self.clients[c].conn == Some(id) {
                self.lost(c, "its hub died");
            }
        }
        self.api.retain(|(hub, _)| *hub != h);
        let node = self.next_node;
        self.next_node += 1;
        self.store.borrow_mut().restart(h, node);
        self.hubs[h] = house(&self.store, h, node, self.now, self.planted);
        self.ledger.summary.hubs_killed += 1;
        self.log(format!("hub{h} dies: node {node:#x} takes its place"));
    }

    pub(super) fn in_rooms(&self, c: usize) -> Vec<usize> {
        let client = &self.clients[c];
        client
            .views
            .iter()
            .filter(|(_, view)| matches!(view, View::In(_)))
            .map(|(r, _)| *r)
            .collect()
    }

    /// Joins room `r`, resuming from a [resume point](Self::resume_point).
    pub(super) fn join(&mut self, c: usize, r: usize) {
        let since = self.resume_point(c, r);
        self.clients[c].views.insert(r, View::Joining);
        let message = ClientMessage::Join {
            token: None,
            room: room(r),
            since,
        };
        self.send(c, Request::Join { room: r, since }, message);
    }

    /// Where client `c` resumes room `r` from: what it saw there mostly, now and then an older
    /// position, one history no longer covers, or one of a made-up epoch. It forgets what it
    /// saw after that point: the replay brings it again.
    fn resume_point(&mut self, c: usize, r: usize) -> Option<Position> {
        let mut since = self.clients[c].seen.get(&r).copied();
        if let Some(real) = since {
            since = match self.rng.below(20) {
                0 => Some(Position {
                    offset: real.offset.saturating_sub(self.rng.between(1, 5)),
                    ..real
                }),
                1 => self.ledger.oracle.lost_position(r, self.now).or(since),
                2 => Some(Position {
                    epoch: self.rng.next(),
                    ..real
                }),
                _ => since,
            };
        }
        match since {
            Some(p) => self.clients[c].seen.insert(r, p),
            None => self.clients[c].seen.remove(&r),
        };
        since
    }

    /// A request from client `c` on its connection, with a fresh ref.
    pub(super) fn send(&mut self, c: usize, request: Request, message: ClientMessage) {
        let Some(conn) = self.clients[c].conn else {
            return;
        };
        self.next_ref += 1;
        let n = self.next_ref;
        let envelope = roomcast_core::envelope::ClientEnvelope {
            reference: Some(n.into()),
            message,
        };
        self.clients[c].pending.insert(n, request);
        self.log(format!("c{c} -> {}", envelope.encode()));
        self.post(conn, Packet::Up(Up::Text(envelope.encode())));
    }

    /// The client drops its connection; the server sees it after the link's latency.
    pub(super) fn reset(&mut self, c: usize) {
        let Some(conn) = self.clients[c].conn else {
            return;
        };
        self.post(conn, Packet::Up(Up::Reset));
        self.lost(c, "resets its connection");
        self.ledger.summary.resets += 1;
    }

    /// Client `c` is without a connection: it comes back after a backoff.
    pub(super) fn lost(&mut self, c: usize, why: &str) {
        self.clients[c].lost();
        self.inbox.remove(&c);
        let backoff = Duration::from_millis(self.rng.between(50, 1000));
        self.clients[c].reconnect_at = Some(self.now + backoff);
        self.log(format!("c{c}: {why}"));
    }

    pub(super) fn connect(&mut self, c: usize) -> Result<(), String> {
        self.clients[c].reconnect_at = None;
        let (kind, u) = (self.clients[c].kind, self.clients[c].user);
        let mut cursor = Cursor::new();
        if let Some(position) = self.clients[c].seen_user {
            cursor
                .set(Stream::User, position)
                .map_err(|e| e.to_string())?;
        }
        // SSE: its rooms and where it resumes them are in the connect (`?rooms=`, and
        // `Last-Event-ID`), weighed by the oracle as the hub takes them.
        let mut rooms = Vec::new();
        if kind == SessionKind::Sse {
            for r in self.clients[c].rooms.clone() {
                let since = self.resume_point(c, r);
                let oracle = &self.ledger.oracle;
                let expect = since.is_some_and(|since| oracle.covers(r, since, self.now));
                if let Some(since) = since {
                    let stream = Stream::Room(room(r));
                    cursor.set(stream, since).map_err(|e| e.to_string())?;
                }
                let history = oracle.describe(r, self.now);
                self.clients[c].resuming.insert(r, (since, expect, history));
                self.clients[c].views.insert(r, View::In(BTreeSet::new()));
                rooms.push(room(r));
            }
        }
        let connect = Connect {
            access: Default::default(),
            user: user(u),
            broadcast: false,
            rooms,
            cursor: Some(cursor),
        };
        // A load balancer without stickiness: any hub.
        let h = self.rng.index(self.hubs.len());
        let hub_id = self.hubs[h]
            .connect(kind, connect)
            .map_err(|e| format!("hub{h}: {e}"))?;
        let conn = self.next_conn;
        self.next_conn += 1;
        let latency = Duration::from_millis(self.rng.between(1, 80));
        self.conns.insert(
            conn,
            Conn {
                client: c,
                hub: h,
                hub_id,
                latency,
                black_hole: None,
                last_up: self.now,
                last_down: self.now,
            },
        );
        self.by_session.insert((h, hub_id), conn);
        let client = &mut self.clients[c];
        client.moved = client.hub.is_some_and(|last| last != h);
        client.hub = Some(h);
        client.conn = Some(conn);
        client.silent_deadline = Some(self.now + SILENCE);
        self.ledger.summary.connections += 1;
        self.ledger.summary.moved += u64::from(client.moved);
        self.log(format!(
            "c{c}: connects to hub{h} as {hub_id} ({latency:?} away)"
        ));
        if kind == SessionKind::WebSocket {
            for r in self.clients[c].rooms.clone() {
                self.join(c, r);
            }
        }
        Ok(())
    }
}
