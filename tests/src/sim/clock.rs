//! The virtual clock: every timer and arrival, in order.

use super::*;

impl World {
    /// Runs every timer and arrival up to `until`, checking after each.
    pub(super) fn run_until(&mut self, until: Instant) -> Result<(), String> {
        loop {
            self.pump()?;
            self.check()?;
            match self.next_due() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.advance();
                    self.fire()?;
                }
                _ => {
                    self.now = until;
                    self.advance();
                    // What that moved is where it goes before anything looks.
                    self.pump()?;
                    return self.check();
                }
            }
        }
    }

    /// The engine's news due by now, then each hub's timers (so history is pruned before
    /// requests read it) and its sessions'.
    fn advance(&mut self) {
        self.store.borrow_mut().set_now(self.now);
        for house in &mut self.hubs {
            house.advance_to(self.now);
        }
    }

    pub(super) fn next_due(&self) -> Option<Instant> {
        let packets = self.net.keys().next().map(|(at, _)| *at);
        let kernels = self
            .conns
            .values()
            .filter_map(|c| c.black_hole)
            .map(|at| at + KERNEL_GIVES_UP);
        let clients = self.clients.iter().flat_map(|c| {
            [c.stalled_until, c.reconnect_at, c.silent_deadline]
                .into_iter()
                .flatten()
        });
        let hubs = self.hubs.iter().filter_map(|house| house.poll_timeout());
        packets
            .into_iter()
            .chain(hubs)
            .chain(self.store.borrow().next_due())
            .chain(kernels)
            .chain(clients)
            .min()
    }

    /// Everything else due at `now` (the harness ran the hub's and the sessions' timers).
    pub(super) fn fire(&mut self) -> Result<(), String> {
        let now = self.now;
        let mut given_up = Vec::new();
        for conn in self.conns.values_mut() {
            if conn
                .black_hole
                .is_some_and(|at| at + KERNEL_GIVES_UP <= now)
            {
                conn.black_hole = Some(now); // once: the session is done after this
                given_up.push((conn.hub, conn.hub_id));
            }
        }
        for (h, hub_id) in given_up {
            self.hubs[h].feed_session(hub_id, |session, now| session.handle_close(now, None));
        }
        for c in 0..self.clients.len() {
            if self.clients[c].stalled_until.is_some_and(|at| at <= now) {
                self.clients[c].stalled_until = None;
                self.clients[c].silent_deadline = Some(now + SILENCE);
                self.read(c)?;
            }
            if self.clients[c].silent_deadline.is_some_and(|at| at <= now) {
                self.lost(c, "gives up on a silent connection");
            }
            if self.clients[c].reconnect_at.is_some_and(|at| at <= now) {
                self.connect(c)?;
            }
        }
        while let Some(entry) = self.net.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (conn, c, packet) = entry.remove();
            self.arrive(conn, c, packet)?;
        }
        Ok(())
    }
}
