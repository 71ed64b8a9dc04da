//! A node's two connections to Redis, calls and pub/sub, and the task that listens to the
//! second: it turns messages into `Live`s and notes when it last heard anything, so that a
//! link that went deaf is found (see `health.rs`).

use std::sync::Arc;

use futures_lite::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use roomcast_core::engine::EngineEvent;
use roomcast_io::Runtime;

use super::RedisOptions;
use super::failover::Handed;
use super::health::Health;
use crate::plan::{Plan, Script};

/// The two connections of one generation.
pub(super) struct Connections {
    pub(super) calls: MultiplexedConnection,
    pub(super) subscriptions: PubSubSink,
    /// Each script's SHA1, loaded on this connection's server.
    pub(super) shas: Vec<(Script, String)>,
    /// Dropped with the connections: their listener then stops, even on a link that never
    /// closes (half-open).
    _stop: async_channel::Sender<()>,
}

impl Connections {
    /// Opens both, loads the scripts, subscribes to the node's probe channel, and starts the
    /// listener on `runtime`.
    pub(super) async fn open<R: Runtime>(
        runtime: &R,
        client: &redis::Client,
        options: &RedisOptions,
        listener: Listener,
    ) -> redis::RedisResult<Self> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.response_timeout))
            .set_response_timeout(Some(options.response_timeout));
        let mut calls = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let shas = load_scripts(&mut calls).await?;
        let (mut subscriptions, messages) = client.get_async_pubsub().await?.split();
        subscriptions.subscribe(&listener.probe_channel).await?;
        let (stop, stopped) = async_channel::bounded(1);
        let generation = listener.health.next_generation();
        runtime.spawn(async move {
            let mut messages = messages;
            loop {
                let next = futures_lite::future::or(
                    async {
                        let _ = stopped.recv().await;
                        None
                    },
                    async { Some(messages.next().await) },
                )
                .await;
                let message = match next {
                    // Let go of: a newer generation serves.
                    None => return,
                    Some(None) => {
                        listener.health.ended(generation);
                        return;
                    }
                    Some(Some(message)) => message,
                };
                listener.health.heard();
                let channel = message.get_channel_name();
                if channel == listener.probe_channel {
                    continue;
                }
                let payload = message.get_payload_bytes();
                let Some(live) = listener.plan.live(channel, payload) else {
                    continue;
                };
                if let EngineEvent::Live { .. } = live {
                    // Held back until a reconnection's check has run (`failover.rs`).
                    if !listener.handed.open() {
                        continue;
                    }
                    if let Some((stream, at, nonce)) = listener.plan.live_nonce(channel, payload) {
                        listener.handed.note(stream, at, nonce);
                    }
                }
                (listener.events)(vec![live]);
            }
        });
        Ok(Self {
            calls,
            subscriptions,
            shas,
            _stop: stop,
        })
    }

    pub(super) fn sha(&self, script: Script) -> &str {
        self.shas
            .iter()
            .find(|(s, _)| *s == script)
            .map(|(_, sha)| sha.as_str())
            .expect("every script is loaded")
    }
}

/// What the listener of each generation needs.
#[derive(Clone)]
pub(super) struct Listener {
    pub(super) plan: Plan,
    pub(super) probe_channel: String,
    pub(super) health: Arc<Health>,
    pub(super) handed: Arc<Handed>,
    pub(super) events: Arc<dyn Fn(Vec<EngineEvent>) + Send + Sync>,
}

pub(super) async fn load_scripts(
    calls: &mut MultiplexedConnection,
) -> redis::RedisResult<Vec<(Script, String)>> {
    let mut shas = Vec::new();
    for script in Script::ALL {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script.source())
            .query_async(calls)
            .await?;
        shas.push((script, sha));
    }
    Ok(shas)
}
