//! The IO half: redis-rs connections that run what the plan says, on tokio or smol alike.
//!
//! One task takes the hub's operations in order. It sends everything queued since its last
//! round trip as one pipeline (one round trip for many operations, as the store's group
//! commit is one fsync for many), and hands the events the replies mean to the hub. Follows
//! and unfollows go to a pub/sub connection in the same order, and a listener task turns what
//! it receives into `Live` events.
//!
//! When Redis cannot be reached, the operations in flight fail `unavailable`, the hub hears
//! `LinkDown` (it then refuses appends at once) and the task reconnects with backoff; once
//! both connections are back and every followed channel subscribed again, the hub hears
//! `LinkUp` and reads the heads of what it follows, so a `Live` lost meanwhile is found. A
//! pub/sub link that ends, or goes deaf while open, is found by `health.rs` and handled the
//! same way.

mod calls;
mod connections;
mod convert;
mod failover;
mod health;
mod registry;
mod run;
mod settings;
mod target;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use roomcast_core::engine::{EngineEvent, Fault, Operation};
use roomcast_io::{EngineLink, EngineStats, Runtime};
use tracing::info;

pub use self::convert::{error_reply, reply};
pub use self::registry::Registry;
use crate::plan::PlanConfig;

/// How a node reaches Redis.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// `redis://host:port/db` (or `rediss://` for TLS, `redis+unix://`),
    /// `redis+sentinel://host:26379[,host:26379...]/master[/db]` for the master a set of
    /// Sentinels names.
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
    /// A pub/sub link silent this long is probed: 5 s.
    pub probe_idle: Duration,
    /// A probe not heard back this long is a deaf link: 2 s.
    pub probe_timeout: Duration,
    /// How long an append whose answer a link failure lost is retried, 5 s: once the link is
    /// back within it, the retry answers the first attempt's position if that was stored
    /// (stored once either way); past it the append fails `unavailable`.
    pub retry_within: Duration,
    /// With Sentinels: how often they are asked which server is master, 1 s. A new one means
    /// a reconnection, whether or not the old one still answers.
    pub sentinel_check: Duration,
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
            probe_idle: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(2),
            retry_within: Duration::from_secs(5),
            sentinel_check: Duration::from_secs(1),
        }
    }
}

/// Why a node cannot start on this Redis.
#[derive(Debug)]
pub enum ConnectError {
    /// It could not be reached.
    Unreachable(redis::RedisError),
    /// It may drop keys under memory pressure (`maxmemory-policy` other than `noeviction`),
    /// which would lose acknowledged messages without a new epoch.
    Eviction(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(error) => write!(f, "redis: {error}"),
            Self::Eviction(policy) => write!(
                f,
                "redis: maxmemory-policy is {policy}: it may evict stored messages, which roomcast \
                 cannot detect; set `maxmemory-policy noeviction` (roomcast then answers \
                 limit_reached when Redis is full)"
            ),
        }
    }
}

impl std::error::Error for ConnectError {}

/// The hub's side of the Redis engine: operations go to the driver without waiting.
pub struct RedisLink {
    operations: async_channel::Sender<Operation>,
    /// Failures of operations the driver's queue could not take, for `poll_event`.
    refused: VecDeque<EngineEvent>,
    link_up: Arc<AtomicBool>,
    registry: Arc<Registry>,
}

impl RedisLink {
    /// The node registry: this node reports its figures there, and reads every node's.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// Whether the driver's connections to Redis are up now.
    pub fn is_up(&self) -> bool {
        self.link_up.load(Ordering::Relaxed)
    }

    /// A handle that reads the same, for health checks.
    pub fn link_state(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.link_up)
    }
}

impl EngineLink for RedisLink {
    fn submit(&mut self, _now: std::time::Instant, operation: Operation) {
        if let Err(error) = self.operations.try_send(operation) {
            let operation = error.into_inner();
            if let Some(op) = operation.op() {
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

/// Checks that Redis is there and keeps what it is given (`settings.rs`: `maxmemory-policy
/// noeviction`, and a warning for what its persistence may lose). The link goes to the hub;
/// [`Starting::start`] then runs the driver.
pub async fn connect(options: RedisOptions) -> Result<(RedisLink, Starting), ConnectError> {
    let mut options = options;
    let mut target = target::Target::parse(&options.url).map_err(ConnectError::Unreachable)?;
    // On a cluster a stream's appends are published to its shard alone.
    options.plan.sharded |= target.is_cluster();
    settings::check(&mut target).await?;
    info!(url = %redact(&options.url), "connected to redis");
    let (sender, receiver) = async_channel::bounded(options.queue.max(1));
    let link_up = Arc::new(AtomicBool::new(true));
    let registry = Arc::new(Registry::default());
    let link = RedisLink {
        operations: sender,
        refused: VecDeque::new(),
        link_up: Arc::clone(&link_up),
        registry: Arc::clone(&registry),
    };
    let starting = Starting {
        target,
        options,
        receiver,
        link_up,
        registry,
    };
    Ok((link, starting))
}

/// A driver checked and not yet running.
pub struct Starting {
    target: target::Target,
    options: RedisOptions,
    receiver: async_channel::Receiver<Operation>,
    link_up: Arc<AtomicBool>,
    registry: Arc<Registry>,
}

impl Starting {
    /// Runs the driver on `runtime`; `events` takes what it hears for the hub (a driver calls
    /// the hub's `engine_events` with them).
    pub fn start<R: Runtime>(
        self,
        runtime: &R,
        events: impl Fn(Vec<EngineEvent>) + Send + Sync + 'static,
    ) {
        let driver = run::Driver::new(
            self.target,
            self.options,
            Arc::new(events),
            self.link_up,
            self.registry,
        );
        runtime.spawn(driver.run(runtime.clone(), self.receiver));
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
