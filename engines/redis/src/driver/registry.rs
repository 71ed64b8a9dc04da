//! The node registry, a node's side: what the server reports of this node, and every live
//! node's figures as last read from Redis (at each presence refresh, a third of the presence
//! TTL), for `/api/status`. Reading it costs a status request no round trip to Redis.

use std::sync::Mutex;

/// This node's figures, and every node's.
#[derive(Debug, Default)]
pub struct Registry {
    own: Mutex<Option<(u64, String)>>,
    nodes: Mutex<Vec<String>>,
}

impl Registry {
    /// This node's (`node`, its number) figures now, as a JSON object: written to Redis at the
    /// next refresh.
    pub fn report(&self, node: u64, figures: String) {
        *self.own.lock().unwrap_or_else(|e| e.into_inner()) = Some((node, figures));
    }

    /// Every live node's figures (JSON objects, as each reported them), this one's included,
    /// as of the last refresh; empty before the first.
    pub fn nodes(&self) -> Vec<String> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn own(&self) -> Option<(u64, String)> {
        self.own.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn read(&self, nodes: Vec<String>) {
        *self.nodes.lock().unwrap_or_else(|e| e.into_inner()) = nodes;
    }
}
