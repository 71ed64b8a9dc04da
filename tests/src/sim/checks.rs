//! The promises checked after every step, and at quiet points.

use super::*;

impl World {
    /// After every step: the hub's invariants and the memory budgets.
    pub(super) fn check(&self) -> Result<(), String> {
        let hub = self.house.hub();
        hub.check_invariants()?;
        if self.house.strays() > 0 {
            return Err(format!(
                "{} deliveries to sessions not in the hub",
                self.house.strays()
            ));
        }
        let budget = ROOMS * HISTORY.max_messages
            + USERS * hub.config().outbox_history.max_messages
            + hub.config().broadcast_history.max_messages;
        let stored = self.house.engine().stats().records;
        if stored > budget {
            return Err(format!(
                "{stored} messages stored, over the budget of {budget}"
            ));
        }
        // A replay batch is taken whole: at most a history's worth over the queue budget.
        let queue_budget = QUEUE_BYTES + HISTORY.max_messages * 256;
        for (session, queued) in self.house.sessions().map(|(id, s)| (id, s.queued_bytes())) {
            if queued > queue_budget {
                return Err(format!("{session}: a queue of {queued} bytes"));
            }
        }
        Ok(())
    }

    /// Faults healed and time run on: everything has converged.
    pub(super) fn quiet(&mut self) -> Result<(), String> {
        for client in &mut self.clients {
            client.stalled_until = client.stalled_until.map(|_| self.now);
        }
        self.house.engine_mut().calm(true);
        let until = self.now + SETTLE;
        let settled = self.run_until(until).and_then(|()| self.converged());
        self.house.engine_mut().calm(false);
        settled
    }

    /// After a quiet time, every client is where the server is.
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
            let hub: BTreeSet<String> = self
                .house
                .hub()
                .members(&room(r))
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect();
            if &hub != present {
                return Err(format!(
                    "quiet: room{r} presence {hub:?}, connected {present:?}"
                ));
            }
            let head = self.house.tap().oracle.head(r);
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
        if self.house.hub().session_count() != self.clients.len() {
            return Err(format!(
                "quiet: {} sessions for {} clients",
                self.house.hub().session_count(),
                self.clients.len()
            ));
        }
        Ok(())
    }
}
