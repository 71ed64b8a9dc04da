//! The IO half: redis-rs connections that run what the plan says, on tokio or smol alike.
//!
//! One task takes the hub's operations in order. It sends everything queued since its last
//! round trip as one pipeline (one round trip for many operations, as the store's group
//! commit is one fsync for many), and hands the events the replies mean to the hub. Follows
//! and unfollows go to a pub/sub connection in the same order, and a second task turns what
//! it receives into `Live` events.
//!
//! When Redis cannot be reached, the operations in flight fail `unavailable`, the hub hears
//! `LinkDown` (it then refuses appends at once) and the task reconnects with backoff; once
//! both connections are back and every followed channel subscribed again, the hub hears
//! `LinkUp` and reads the heads of what it follows, so a `Live` lost meanwhile is found.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_lite::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use roomcast_core::engine::{EngineEvent, Fault, Operation};
use roomcast_io::{EngineLink, EngineStats, Runtime};
use tracing::{info, warn};

use crate::plan::{Answer, Call, Plan, PlanConfig, Reply, Script, Step};

/// How a node reaches Redis.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// `redis://host:port/db` (or `rediss://`, `redis+unix://`).
    pub url: String,
    /// Keys and channels.
    pub plan: PlanConfig,
    /// Operations waiting for the driver: 10,000. Past it an operation fails `unavailable`
    /// at once (the hub bounds what it sends by the same figure, `HubConfig::max_pending`).
    pub queue: usize,
    /// Operations sent in one pipeline, at most: 512.
    pub batch: usize,
    /// A reply later than this is a link that failed: 5 s.
    pub response_timeout: Duration,
}

impl RedisOptions {
    /// Options for `url`, with the defaults.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            plan: PlanConfig::default(),
            queue: 10_000,
            batch: 512,
            response_timeout: Duration::from_secs(5),
        }
    }
}

/// Redis could not be reached, or refused the scripts.
#[derive(Debug)]
pub struct ConnectError(redis::RedisError);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis: {}", self.0)
    }
}

impl std::error::Error for ConnectError {}

/// The hub's side of the Redis engine: operations go to the driver without waiting.
pub struct RedisLink {
    operations: async_channel::Sender<Operation>,
    /// Failures of operations the driver's queue could not take, for `poll_event`.
    refused: VecDeque<EngineEvent>,
    link_up: Arc<AtomicBool>,
}

impl RedisLink {
    /// Whether the driver's connections to Redis are up now.
    pub fn is_up(&self) -> bool {
        self.link_up.load(Ordering::Relaxed)
    }
}

impl EngineLink for RedisLink {
    fn submit(&mut self, _now: std::time::Instant, operation: Operation) {
        if let Err(error) = self.operations.try_send(operation) {
            let operation = error.into_inner();
            if let Some(op) = op_of(&operation) {
                let fault = Fault::Unavailable("the redis driver's queue is full".into());
                self.refused.push_back(EngineEvent::Failed { op, fault });
            }
        }
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        self.refused.pop_front()
    }

    fn stats(&self) -> EngineStats {
        // What Redis holds is Redis's to report (`INFO`, `MEMORY USAGE`); a node knows only
        // its own part.
        EngineStats::default()
    }
}

/// The operation's number, for the operations that are answered.
fn op_of(operation: &Operation) -> Option<roomcast_core::engine::OpId> {
    match operation {
        Operation::Append { op, .. }
        | Operation::Read { op, .. }
        | Operation::MarkRead { op, .. }
        | Operation::Tops { op, .. } => Some(*op),
        _ => None,
    }
}

/// Connects to Redis: a first connection must succeed (a node does not start without its
/// engine). The link goes to the hub; [`Starting::start`] then runs the driver.
pub async fn connect(options: RedisOptions) -> Result<(RedisLink, Starting), ConnectError> {
    let client = redis::Client::open(options.url.as_str()).map_err(ConnectError)?;
    let connections = Connections::open(&client, &options)
        .await
        .map_err(ConnectError)?;
    info!(url = %redact(&options.url), "connected to redis");
    let (sender, receiver) = async_channel::bounded(options.queue.max(1));
    let link_up = Arc::new(AtomicBool::new(true));
    let link = RedisLink {
        operations: sender,
        refused: VecDeque::new(),
        link_up: Arc::clone(&link_up),
    };
    let starting = Starting {
        client,
        options,
        connections,
        receiver,
        link_up,
    };
    Ok((link, starting))
}

/// A driver connected and not yet running.
pub struct Starting {
    client: redis::Client,
    options: RedisOptions,
    connections: Connections,
    receiver: async_channel::Receiver<Operation>,
    link_up: Arc<AtomicBool>,
}

impl Starting {
    /// Runs the driver on `runtime`; `events` takes what it hears for the hub (a driver calls
    /// the hub's `engine_events` with them).
    pub fn start<R: Runtime>(
        self,
        runtime: &R,
        events: impl Fn(Vec<EngineEvent>) + Send + Sync + 'static,
    ) {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        let driver = Driver {
            plan: Plan::new(self.options.plan.clone(), seed),
            client: self.client,
            options: self.options,
            followed: BTreeSet::new(),
            events: Arc::new(events),
            link_up: self.link_up,
        };
        runtime.spawn(driver.run(runtime.clone(), self.receiver, self.connections));
    }
}

/// A URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The two connections: calls, and pub/sub.
struct Connections {
    calls: MultiplexedConnection,
    subscriptions: PubSubSink,
    messages: Option<PubSubStream>,
    /// Each script's SHA1, loaded on this connection's server.
    shas: Vec<(Script, String)>,
}

impl Connections {
    async fn open(client: &redis::Client, options: &RedisOptions) -> redis::RedisResult<Self> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.response_timeout))
            .set_response_timeout(Some(options.response_timeout));
        let mut calls = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let shas = load_scripts(&mut calls).await?;
        let (subscriptions, messages) = client.get_async_pubsub().await?.split();
        Ok(Self {
            calls,
            subscriptions,
            messages: Some(messages),
            shas,
        })
    }

    fn sha(&self, script: Script) -> &str {
        self.shas
            .iter()
            .find(|(s, _)| *s == script)
            .map(|(_, sha)| sha.as_str())
            .expect("every script is loaded")
    }
}

async fn load_scripts(
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

struct Driver {
    plan: Plan,
    client: redis::Client,
    options: RedisOptions,
    /// The channels followed: subscribed again after a reconnect.
    followed: BTreeSet<String>,
    events: Arc<dyn Fn(Vec<EngineEvent>) + Send + Sync>,
    link_up: Arc<AtomicBool>,
}

/// An operation planned and not yet answered.
struct Planned {
    calls: Vec<Call>,
    answer: Answer,
}

impl Driver {
    async fn run<R: Runtime>(
        mut self,
        runtime: R,
        operations: async_channel::Receiver<Operation>,
        mut connections: Connections,
    ) {
        self.listen(&runtime, &mut connections);
        let mut batch: Vec<Planned> = Vec::new();
        while let Ok(first) = operations.recv().await {
            let mut next = Some(first);
            let mut failed = false;
            while let Some(operation) = next.take() {
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |t| t.as_millis() as u64);
                match self.plan.plan(now_ms, operation) {
                    Step::Run { calls, answer } => batch.push(Planned { calls, answer }),
                    Step::Subscribe(channel) => {
                        // What was planned before the follow goes first.
                        failed |= !self.send(&mut connections, &mut batch).await;
                        self.followed.insert(channel.clone());
                        if !failed {
                            failed |= connections.subscriptions.subscribe(&channel).await.is_err();
                        }
                    }
                    Step::Unsubscribe(channel) => {
                        failed |= !self.send(&mut connections, &mut batch).await;
                        self.followed.remove(&channel);
                        if !failed {
                            failed |= connections
                                .subscriptions
                                .unsubscribe(&channel)
                                .await
                                .is_err();
                        }
                    }
                    Step::Nothing => {}
                }
                if batch.len() < self.options.batch {
                    next = operations.try_recv().ok();
                }
            }
            failed |= !self.send(&mut connections, &mut batch).await;
            if failed {
                connections = self.reconnect(&runtime, &operations).await;
            }
        }
    }

    /// Spawns the task that turns pub/sub messages into `Live`s. Its stream ending is a link
    /// that failed: the next batch finds it, or a probe does.
    fn listen<R: Runtime>(&self, runtime: &R, connections: &mut Connections) {
        let Some(mut messages) = connections.messages.take() else {
            return;
        };
        let plan = self.plan.clone();
        let events = Arc::clone(&self.events);
        let link_up = Arc::clone(&self.link_up);
        runtime.spawn(async move {
            while let Some(message) = messages.next().await {
                if let Some(live) =
                    plan.live(message.get_channel_name(), message.get_payload_bytes())
                {
                    events(vec![live]);
                }
            }
            link_up.store(false, Ordering::Relaxed);
        });
    }

    /// Sends the batch as one pipeline and hands its events on; false if the link failed (the
    /// batch's operations are then failed `unavailable`).
    async fn send(&mut self, connections: &mut Connections, batch: &mut Vec<Planned>) -> bool {
        if batch.is_empty() {
            return true;
        }
        let planned = std::mem::take(batch);
        let mut retry = Vec::new();
        let mut ok = true;
        match self.query(connections, &planned).await {
            Ok(mut replies) => {
                let mut events = Vec::with_capacity(planned.len());
                for one in planned {
                    let replies: Vec<Reply> = replies.drain(..one.calls.len()).collect();
                    // A server that lost the scripts (restarted, or `SCRIPT FLUSH`) ran none of
                    // them: loaded again, and the operation sent again.
                    let lost = replies
                        .iter()
                        .any(|r| matches!(r, Reply::Error(e) if e.starts_with("NOSCRIPT")));
                    if lost {
                        retry.push(one);
                    } else {
                        events.extend(self.plan.answer(one.answer, replies));
                    }
                }
                (self.events)(events);
            }
            Err(error) => {
                warn!(%error, "redis: a pipeline failed");
                let why = format!("redis: {error}");
                let events = planned.iter().map(|one| one.answer.failed(&why)).collect();
                (self.events)(events);
                ok = false;
            }
        }
        if !retry.is_empty() {
            match load_scripts(&mut connections.calls).await {
                Ok(shas) => connections.shas = shas,
                Err(_) => ok = false,
            }
            if ok {
                *batch = retry;
                return Box::pin(self.send(connections, batch)).await;
            }
            let events = retry
                .iter()
                .map(|one| one.answer.failed("redis lost its scripts"))
                .collect();
            (self.events)(events);
        }
        ok
    }

    async fn query(
        &self,
        connections: &mut Connections,
        planned: &[Planned],
    ) -> redis::RedisResult<Vec<Reply>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for one in planned {
            for call in &one.calls {
                match call {
                    Call::Script { script, keys, args } => {
                        let command = pipe
                            .cmd("EVALSHA")
                            .arg(connections.sha(*script))
                            .arg(keys.len())
                            .arg(keys);
                        for arg in args {
                            command.arg(arg.as_slice());
                        }
                    }
                    Call::Head { key } => {
                        pipe.cmd("HMGET").arg(key).arg("e").arg("o");
                    }
                }
            }
        }
        let results: Vec<redis::RedisResult<redis::Value>> =
            pipe.query_async(&mut connections.calls).await?;
        Ok(results
            .into_iter()
            .map(|result| match result {
                Ok(value) => reply(value),
                Err(error) => error_reply(&error),
            })
            .collect())
    }

    /// Tells the hub the link is down, reconnects with backoff (failing what comes meanwhile),
    /// subscribes again, and tells it the link is up.
    async fn reconnect<R: Runtime>(
        &mut self,
        runtime: &R,
        operations: &async_channel::Receiver<Operation>,
    ) -> Connections {
        self.link_up.store(false, Ordering::Relaxed);
        (self.events)(vec![EngineEvent::LinkDown]);
        let mut wait = Duration::from_millis(100);
        loop {
            // What the hub sends meanwhile fails at once rather than wait.
            let mut failed = Vec::new();
            while let Ok(operation) = operations.try_recv() {
                if let Some(op) = op_of(&operation) {
                    let fault = Fault::Unavailable("redis is unreachable".into());
                    failed.push(EngineEvent::Failed { op, fault });
                }
                match operation {
                    Operation::Follow { stream, .. } => {
                        self.followed.insert(self.plan.keys().channel(&stream));
                    }
                    Operation::Unfollow(stream) => {
                        self.followed.remove(&self.plan.keys().channel(&stream));
                    }
                    _ => {}
                }
            }
            if !failed.is_empty() {
                (self.events)(failed);
            }
            runtime.sleep_until(runtime.now() + wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            let Ok(mut connections) = Connections::open(&self.client, &self.options).await else {
                continue;
            };
            let mut subscribed = true;
            for channel in &self.followed {
                subscribed &= connections.subscriptions.subscribe(channel).await.is_ok();
            }
            if !subscribed {
                continue;
            }
            self.listen(runtime, &mut connections);
            info!("redis: the link is back");
            self.link_up.store(true, Ordering::Relaxed);
            (self.events)(vec![EngineEvent::LinkUp]);
            return connections;
        }
    }
}

/// A redis-rs value as the plan reads replies.
pub fn reply(value: redis::Value) -> Reply {
    match value {
        redis::Value::Nil => Reply::Nil,
        redis::Value::Int(n) => Reply::Int(n),
        redis::Value::BulkString(bytes) => Reply::Data(bytes),
        redis::Value::SimpleString(text) => Reply::Data(text.into_bytes()),
        redis::Value::Okay => Reply::Data(b"OK".to_vec()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            Reply::Array(items.into_iter().map(reply).collect())
        }
        redis::Value::ServerError(error) => Reply::Error(match error.details() {
            Some(details) => format!("{} {details}", error.code()),
            None => error.code().to_owned(),
        }),
        other => Reply::Error(format!("an unexpected reply: {other:?}")),
    }
}

/// A redis-rs error of one call as an error reply: its code (the first word) and the rest.
pub fn error_reply(error: &redis::RedisError) -> Reply {
    match (error.code(), error.detail()) {
        (Some(code), Some(detail)) => Reply::Error(format!("{code} {detail}")),
        (Some(code), None) => Reply::Error(code.to_owned()),
        _ => Reply::Error(error.to_string()),
    }
}
