//! The promises checked after every step, and at quiet points.

use super::*;

impl World {
    /// After every step: each hub's invariants, deliveries and session queues; the memory
    /// budget of the engine they share.
    pub(super) fn check(&self) -> Result<(), String> {
        // A replay batch is taken whole: at most a history's worth over the queue budget.
        let queue_budget = QUEUE_BYTES + HISTORY.max_messages * 256;
        for (h, house) in self.hubs.iter().enumerate() {
            house
                .hub()
                .check_invariants()
                .map_err(|broken| format!("hub{h}: {broken}"))?;
            if house.strays() > 0 {
                return Err(format!(
                    "hub{h}: {} deliveries to sessions not in the hub",
                    house.strays()
                ));
            }
            for (session, queued) in house.sessions().map(|(id, s)| (id, s.queued_bytes())) {
                if queued > queue_budget {
                    return Err(format!("hub{h}: {session}: a queue of {queued} bytes"));
                }
            }
        }
        let config = self.hubs[0].hub().config();
        let budget = ROOMS * HISTORY.max_messages
            + USERS * config.outbox_history.max_messages
            + config.broadcast_history.max_messages;
        let stored = self.store.borrow().stats().records;
        if stored > budget {
            return Err(format!(
                "{stored} messages stored, over the budget of {budget}"
            ));
        }
        Ok(())
    }

    /// Faults healed and time run on: everything has converged.
    pub(super) fn quiet(&mut self) -> Result<(), String> {
        for client in &mut self.clients {
            client.stalled_until = client.stalled_until.map(|_| self.now);
        }
        self.store.borrow_mut().calm(true);
        let until = self.now + SETTLE;
        let settled = self.run_until(until).and_then(|()| self.converged());
        self.store.borrow_mut().calm(false);
        settled
    }

    /// After a quiet time, every client is where the servers are, and the servers agree.
    fn converged(&mut self) -> Result<(), String> {
        if !self.api.is_empty() {
            return Err(format!("quiet: commands not answered: {:?}", self.api));
        }
        let mut truth: Vec<BTreeSet<String>> = vec![BTreeSet::new(); ROOMS];
        for (c, client) in self.clients.iter().enumerate() {
            if client.conn.is_none() {
                return Err(format!("quiet: c{c} is not connected"));
            }
            if !client.pending.is_empty() {
                return Err(format!(
                    "quiet: c{c} waits for refs {:?}",
                    client.pending.keys()
                ));
            }
            for r in &client.rooms {
                if !matches!(client.views.get(r), Some(View::In(_))) {
                    return Err(format!("quiet: c{c} is not back in room{r}"));
                }
                truth[*r].insert(format!("user{}", client.user));
            }
        }
        for (r, present) in truth.iter().enumerate() {
            // Every hub a session of the room is on: its own users and the others' (a hub
            // with none there keeps nothing of the room).
            for (h, house) in self.hubs.iter().enumerate() {
                if !house.hub().is_followed(&StreamId::Room(room(r))) {
                    continue;
                }
                let hub: BTreeSet<String> = house
                    .hub()
                    .members(&room(r))
                    .iter()
                    .map(|u| u.as_str().to_owned())
                    .collect();
                if &hub != present {
                    return Err(format!(
                        "quiet: hub{h} has room{r} presence {hub:?}, connected {present:?}"
                    ));
                }
            }
            let head = self.ledger.oracle.head(r);
            for (c, client) in self.clients.iter().enumerate() {
                if let Some(View::In(seen)) = client.views.get(&r) {
                    // An SSE client is not told the members at connect: it cannot know them.
                    if client.kind == SessionKind::WebSocket && seen != present {
                        return Err(format!(
                            "quiet: c{c} sees {seen:?} in room{r}, not {present:?}"
                        ));
                    }
                    let last = client.seen.get(&r).copied();
                    if head.is_some() && last != head {
                        return Err(format!(
                            "quiet: c{c} saw {last:?} in room{r}, the last is {head:?}"
                        ));
                    }
                }
            }
        }
        let sessions: usize = self.hubs.iter().map(|h| h.hub().session_count()).sum();
        if sessions != self.clients.len() {
            return Err(format!(
                "quiet: {sessions} sessions on the hubs for {} clients",
                self.clients.len()
            ));
        }
        Ok(())
    }
}
