//! A node's two links to Redis, calls and pub/sub, and what listens to the second: it turns
//! messages into `Live`s and notes when it last heard anything, so that a link that went deaf
//! is found (see `health.rs`).
//!
//! On one server (or a Sentinel's master) these are a multiplexed connection and a pub/sub
//! connection, with a listener task. On a Redis Cluster both are one cluster connection
//! (RESP3): calls are pipelined per slot, each stream's keys and channel being in one slot, and
//! subscriptions are sharded (`SSUBSCRIBE`), their messages pushed to the listener.

use std::collections::HashMap;
use std::sync::Arc;

use futures_lite::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{PushKind, RedisResult, Value};
use roomcast_core::engine::EngineEvent;
use roomcast_io::Runtime;

use super::RedisOptions;
use super::failover::Handed;
use super::health::Health;
use super::target::Opened;
use crate::plan::{Plan, Script};

/// The calls link.
pub(super) enum Calls {
    One(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// The pub/sub link.
enum Subscriptions {
    One(PubSubSink),
    /// The same cluster connection as the calls'.
    Cluster(ClusterConnection),
}

/// The links of one generation.
pub(super) struct Connections {
    pub(super) calls: Calls,
    subscriptions: Subscriptions,
    /// Each script's SHA1, loaded on this link's servers.
    pub(super) shas: Vec<(Script, String)>,
    /// Dropped with the connections: their listener then stops, even on a link that never
    /// closes (half-open).
    _stop: async_channel::Sender<()>,
}

/// One command of a pipeline, with the key that routes it on a cluster.
pub(super) struct Routed {
    pub(super) key: Vec<u8>,
    pub(super) command: redis::Cmd,
}

impl Connections {
    /// Opens the links, loads the scripts, subscribes to the node's probe channel, and starts
    /// the listener on `runtime`.
    pub(super) async fn open<R: Runtime>(
        runtime: &R,
        opened: Opened,
        options: &RedisOptions,
        listener: Listener,
    ) -> RedisResult<Self> {
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let generation = listener.health.next_generation();
        let (mut calls, mut subscriptions) = match opened {
            Opened::One(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(options.response_timeout))
                    .set_response_timeout(Some(options.response_timeout));
                let calls = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                let (sink, messages) = client.get_async_pubsub().await?.split();
                runtime.spawn(listen(listener.clone(), generation, messages, stopped));
                (Calls::One(calls), Subscriptions::One(sink))
            }
            Opened::Cluster(builder) => {
                let heard = listener.clone();
                let client = (*builder)
                    .connection_timeout(options.response_timeout)
                    .response_timeout(options.response_timeout)
                    .push_sender(move |push: redis::PushInfo| {
                        heard.pushed(generation, push);
                        Ok::<(), redis::aio::SendError>(())
                    })
                    .build()?;
                let connection = client.get_async_connection().await?;
                drop(stopped);
                (
                    Calls::Cluster(connection.clone()),
                    Subscriptions::Cluster(connection),
                )
            }
        };
        let shas = load_scripts(&mut calls).await?;
        subscriptions.subscribe(&listener.probe_channel).await?;
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

    /// Follows a channel.
    pub(super) async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        self.subscriptions.subscribe(channel).await
    }

    /// Leaves it.
    pub(super) async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match &mut self.subscriptions {
            Subscriptions::One(sink) => sink.unsubscribe(channel).await,
            Subscriptions::Cluster(connection) => connection.sunsubscribe(channel).await,
        }
    }

    /// `PUBLISH` (`SPUBLISH` on a cluster) of `message` on `channel`.
    pub(super) async fn publish(&mut self, channel: &str, message: &str) -> RedisResult<()> {
        let verb = match self.calls {
            Calls::One(_) => "PUBLISH",
            Calls::Cluster(_) => "SPUBLISH",
        };
        let command = redis::cmd(verb).arg(channel).arg(message).clone();
        let key = channel.as_bytes().to_vec();
        let mut replies = self.calls.run(vec![Routed { key, command }]).await?;
        replies.pop().unwrap_or(Ok(Value::Nil)).map(drop)
    }
}

impl Subscriptions {
    async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Self::One(sink) => sink.subscribe(channel).await,
            Self::Cluster(connection) => connection.ssubscribe(channel).await,
        }
    }
}

impl Calls {
    /// Runs `commands` in order, each reply (or error reply) in its place: one pipeline on one
    /// server; on a cluster one pipeline per slot, all at once (the order within a slot, so
    /// within a stream, kept).
    pub(super) async fn run(
        &mut self,
        commands: Vec<Routed>,
    ) -> RedisResult<Vec<RedisResult<Value>>> {
        match self {
            Self::One(connection) => {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for routed in commands {
                    pipe.add_command(routed.command);
                }
                pipe.query_async(connection).await
            }
            Self::Cluster(connection) => {
                let count = commands.len();
                let mut slots: HashMap<Slot, (Vec<usize>, redis::Pipeline)> = HashMap::new();
                for (index, routed) in commands.into_iter().enumerate() {
                    let (indices, pipe) =
                        slots.entry(Slot::for_key(&routed.key)).or_insert_with(|| {
                            let mut pipe = redis::pipe();
                            pipe.ignore_errors();
                            (Vec::new(), pipe)
                        });
                    indices.push(index);
                    pipe.add_command(routed.command);
                }
                let runs = slots.into_values().map(|(indices, pipe)| {
                    let mut connection = connection.clone();
                    async move {
                        let replies: RedisResult<Vec<RedisResult<Value>>> =
                            pipe.query_async(&mut connection).await;
                        (indices, replies)
                    }
                });
                let mut replies: Vec<Option<RedisResult<Value>>> =
                    (0..count).map(|_| None).collect();
                for (indices, answered) in futures_util::future::join_all(runs).await {
                    for (index, reply) in indices.into_iter().zip(answered?) {
                        replies[index] = Some(reply);
                    }
                }
                Ok(replies
                    .into_iter()
                    .map(|reply| reply.unwrap_or(Ok(Value::Nil)))
                    .collect())
            }
        }
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

impl Listener {
    /// A message of `channel` on the links of `generation`: heard, and, unless it is the
    /// probe or the links are no longer the driver's, handed on.
    fn message(&self, generation: u64, channel: &str, payload: &[u8]) {
        if !self.health.is_current(generation) {
            return;
        }
        self.health.heard();
        if channel == self.probe_channel {
            return;
        }
        let Some(live) = self.plan.live(channel, payload) else {
            return;
        };
        if let EngineEvent::Live { .. } = live {
            // Held back until a reconnection's check has run (`failover.rs`).
            if !self.handed.open() {
                return;
            }
            if let Some((stream, at, nonce)) = self.plan.live_nonce(channel, payload) {
                self.handed.note(stream, at, nonce);
            }
        }
        (self.events)(vec![live]);
    }

    /// A push of a cluster connection of `generation`.
    fn pushed(&self, generation: u64, push: redis::PushInfo) {
        if !self.health.is_current(generation) {
            return;
        }
        match push.kind {
            PushKind::SMessage | PushKind::Message => {
                if let [Value::BulkString(channel), Value::BulkString(payload)] =
                    push.data.as_slice()
                {
                    self.message(generation, &String::from_utf8_lossy(channel), payload);
                }
            }
            // A node's connection dropped: redis-rs would resubscribe by itself, but what was
            // published meanwhile is lost; a reconnection of everything finds it.
            PushKind::Disconnection => self.health.ended(generation),
            _ => self.health.heard(),
        }
    }
}

/// The listener task of one server's pub/sub connection.
async fn listen(
    listener: Listener,
    generation: u64,
    mut messages: redis::aio::PubSubStream,
    stopped: async_channel::Receiver<()>,
) {
    loop {
        let next = futures_lite::future::or(
            async {
                let _ = stopped.recv().await;
                None
            },
            async { Some(messages.next().await) },
        )
        .await;
        match next {
            // Let go of: a newer generation serves.
            None => return,
            Some(None) => {
                listener.health.ended(generation);
                return;
            }
            Some(Some(message)) => {
                listener.message(
                    generation,
                    message.get_channel_name(),
                    message.get_payload_bytes(),
                );
            }
        }
    }
}

pub(super) async fn load_scripts(calls: &mut Calls) -> RedisResult<Vec<(Script, String)>> {
    let mut shas = Vec::new();
    for script in Script::ALL {
        let load = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script.source())
            .clone();
        // On a cluster `SCRIPT LOAD` goes to every node.
        let sha: String = match calls {
            Calls::One(connection) => load.query_async(connection).await?,
            Calls::Cluster(connection) => load.query_async(connection).await?,
        };
        shas.push((script, sha));
    }
    Ok(shas)
}
