//! The driver's task: operations in order, one pipeline per round trip, follows on the pub/sub
//! connection, the link's health checked every second, and reconnection.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use roomcast_core::engine::{EngineEvent, Fault, Operation, StreamId};
use roomcast_core::names::{RoomName, UserId};
use roomcast_io::Runtime;
use tracing::{info, warn};

use super::RedisOptions;
use super::calls::{query, routed};
use super::connections::{Connections, Listener, load_scripts};
use super::failover::Handed;
use super::health::{Health, Probe, Verdict};
use super::registry::Registry;
use super::target::Target;
use crate::plan::{Answer, Call, Plan, Reply, Step};

/// How often the link's health is looked at while no operation comes.
const TICK: Duration = Duration::from_secs(1);

type Events = Arc<dyn Fn(Vec<EngineEvent>) + Send + Sync>;

pub(super) struct Driver {
    plan: Plan,
    target: Target,
    options: RedisOptions,
    /// The channels followed: subscribed again after a reconnect.
    followed: BTreeSet<String>,
    events: Events,
    link_up: Arc<AtomicBool>,
    health: Arc<Health>,
    probe: Probe,
    probe_channel: String,
    /// This node's presence entries (room, user), refreshed while they last, and its number.
    present: BTreeSet<(RoomName, UserId)>,
    node: u64,
    /// When the presence entries are next refreshed and the followed rooms' presence read.
    next_presence: Instant,
    /// What the hub was handed, checked after a reconnection.
    handed: Arc<Handed>,
    /// When the Sentinels are next asked which server is master.
    next_sentinel: Instant,
    registry: Arc<Registry>,
    /// Appends whose answer a link failure lost, with when to stop retrying them.
    unsure: Vec<(Planned, Instant)>,
}

/// An operation planned and not yet answered.
struct Planned {
    calls: Vec<Call>,
    answer: Answer,
    /// For a retried append: when its time to be retried ends.
    retry_until: Option<Instant>,
}

impl Driver {
    pub(super) fn new(
        target: Target,
        options: RedisOptions,
        events: Events,
        link_up: Arc<AtomicBool>,
        registry: Arc<Registry>,
    ) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        let probe_channel = format!("{}:probe:{seed:016x}", options.plan.prefix);
        Self {
            plan: Plan::new(options.plan.clone(), seed),
            target,
            options,
            followed: BTreeSet::new(),
            events,
            link_up,
            health: Arc::new(Health::new(Instant::now())),
            probe: Probe::default(),
            probe_channel,
            present: BTreeSet::new(),
            node: 0,
            next_presence: Instant::now(),
            handed: Arc::default(),
            next_sentinel: Instant::now(),
            registry,
            unsure: Vec::new(),
        }
    }

    fn listener(&self) -> Listener {
        Listener {
            plan: self.plan.clone(),
            probe_channel: self.probe_channel.clone(),
            health: Arc::clone(&self.health),
            handed: Arc::clone(&self.handed),
            events: Arc::clone(&self.events),
        }
    }

    pub(super) async fn run<R: Runtime>(
        mut self,
        runtime: R,
        operations: async_channel::Receiver<Operation>,
    ) {
        let opened = self.open(&runtime).await;
        let mut connections = match opened {
            Ok(connections) => connections,
            Err(error) => {
                warn!(%error, "redis: the driver's first connection failed");
                self.reconnect(&runtime, &operations).await
            }
        };
        let mut batch: Vec<Planned> = Vec::new();
        loop {
            let tick = runtime.now() + TICK;
            let next = futures_lite::future::or(async { Some(operations.recv().await) }, async {
                runtime.sleep_until(tick).await;
                None
            })
            .await;
            let mut failed = false;
            match next {
                Some(Ok(first)) => {
                    failed = !self
                        .take(&mut connections, &operations, &mut batch, first)
                        .await;
                }
                // The hub is gone.
                Some(Err(_)) => return,
                None => {}
            }
            if !failed {
                failed = !self.checked(&mut connections).await;
            }
            if !failed && Instant::now() >= self.next_presence {
                failed = !self.presence(&mut connections).await;
            }
            if !failed && self.target.is_sentinel() && Instant::now() >= self.next_sentinel {
                self.next_sentinel = Instant::now() + self.options.sentinel_check;
                failed = self.target.moved().await;
            }
            if failed {
                connections = self.reconnect(&runtime, &operations).await;
            }
        }
    }

    /// Both connections to the master now.
    async fn open<R: Runtime>(&mut self, runtime: &R) -> redis::RedisResult<Connections> {
        let opened = self.target.open().await?;
        Connections::open(runtime, opened, &self.options, self.listener()).await
    }

    /// Takes `first` and what is queued behind it (up to a batch), in order; false if the link
    /// failed.
    async fn take(
        &mut self,
        connections: &mut Connections,
        operations: &async_channel::Receiver<Operation>,
        batch: &mut Vec<Planned>,
        first: Operation,
    ) -> bool {
        let mut next = Some(first);
        let mut ok = true;
        while let Some(operation) = next.take() {
            let now_ms = now_ms();
            self.remember(&operation);
            match self.plan.plan(now_ms, operation) {
                Step::Run { calls, answer } => batch.push(Planned {
                    calls,
                    answer,
                    retry_until: None,
                }),
                Step::Subscribe(channel) => {
                    // What was planned before the follow goes first.
                    ok &= self.send(connections, batch).await;
                    self.followed.insert(channel.clone());
                    ok = ok && connections.subscribe(&channel).await.is_ok();
                    // A room followed from now on: who is present in it on every node.
                    if let Some(StreamId::Room(room)) = self.plan.keys().stream_of_channel(&channel)
                        && let Step::Run { calls, answer } = self.plan.presence_read(now_ms, &room)
                    {
                        batch.push(Planned {
                            calls,
                            answer,
                            retry_until: None,
                        });
                    }
                }
                Step::Unsubscribe(channel) => {
                    ok &= self.send(connections, batch).await;
                    self.followed.remove(&channel);
                    if let Some(stream) = self.plan.keys().stream_of_channel(&channel) {
                        self.handed.forget(&stream);
                    }
                    ok = ok && connections.unsubscribe(&channel).await.is_ok();
                }
                Step::Nothing => {}
            }
            if batch.len() < self.options.batch {
                next = operations.try_recv().ok();
            }
        }
        ok && self.send(connections, batch).await
    }

    /// This node's presence entries refreshed, and every followed room's presence read (so
    /// that what was missed, such as a dead node's entries expiring, converges); false if the
    /// link failed.
    async fn presence(&mut self, connections: &mut Connections) -> bool {
        self.next_presence = Instant::now() + self.options.plan.presence_ttl / 3;
        let now_ms = now_ms();
        let mut batch = Vec::new();
        if !self.present.is_empty() {
            let entries: Vec<(RoomName, UserId)> = self.present.iter().cloned().collect();
            if let Step::Run { calls, answer } =
                self.plan.presence_refresh(now_ms, self.node, &entries)
            {
                batch.push(Planned {
                    calls,
                    answer,
                    retry_until: None,
                });
            }
        }
        for channel in &self.followed {
            if let Some(StreamId::Room(room)) = self.plan.keys().stream_of_channel(channel)
                && let Step::Run { calls, answer } = self.plan.presence_read(now_ms, &room)
            {
                batch.push(Planned {
                    calls,
                    answer,
                    retry_until: None,
                });
            }
        }
        self.send(connections, &mut batch).await && self.report(connections, now_ms).await
    }

    /// This node's figures to the node registry, and every node's read back; false if the
    /// link failed.
    async fn report(&mut self, connections: &mut Connections, now_ms: u64) -> bool {
        let Some((node, figures)) = self.registry.own() else {
            return true;
        };
        let call = self.plan.nodes(now_ms, node, &figures);
        let mut replies = match connections
            .calls
            .run(vec![routed(connections, &call)])
            .await
        {
            Ok(replies) => replies,
            Err(error) => {
                warn!(%error, "redis: the node registry could not be written");
                return false;
            }
        };
        let nodes: redis::RedisResult<Vec<String>> = replies
            .pop()
            .unwrap_or(Ok(redis::Value::Nil))
            .and_then(|value| Ok(redis::from_redis_value(value)?));
        match nodes {
            Ok(nodes) => self.registry.read(nodes),
            // An answer not as the script gives it: the registry stays as it was.
            Err(error) => warn!(%error, "redis: the node registry's answer was not understood"),
        }
        true
    }

    /// The pub/sub link's health: probed when quiet; false if it is deaf.
    async fn checked(&mut self, connections: &mut Connections) -> bool {
        let verdict = self.probe.check(
            &self.health,
            Instant::now(),
            self.options.probe_idle,
            self.options.probe_timeout,
        );
        match verdict {
            Verdict::Fine => true,
            Verdict::Probe => connections
                .publish(&self.probe_channel, "probe")
                .await
                .is_ok(),
            Verdict::Deaf(why) => {
                warn!(why, "redis: the pub/sub link is deaf: reconnecting");
                false
            }
        }
    }

    /// Sends the batch as one pipeline and hands its events on; false if the link failed (the
    /// batch's appends are then kept to be retried once it is back, the rest failed
    /// `unavailable`).
    async fn send(&mut self, connections: &mut Connections, batch: &mut Vec<Planned>) -> bool {
        let mut planned = std::mem::take(batch);
        // Twice at most: the second time after loading scripts a restarted server lost.
        for _ in 0..2 {
            if planned.is_empty() {
                return true;
            }
            let calls = planned.iter().flat_map(|one| one.calls.iter());
            let mut replies = match query(connections, calls).await {
                Ok(replies) => replies,
                Err(error) => {
                    warn!(%error, "redis: a pipeline failed");
                    let why = format!("redis: {error}");
                    // An append may have been stored, its answer lost: it is sent again once
                    // the link is back, as a retry that finds the first attempt (`append.lua`).
                    // The rest fail: nothing of theirs is lost by failing.
                    let deadline = Instant::now() + self.options.retry_within;
                    let mut events = Vec::new();
                    for one in planned {
                        match Plan::retry(&one.calls) {
                            Some(calls) => {
                                let until = one.retry_until.unwrap_or(deadline);
                                let retry = Planned {
                                    calls,
                                    answer: one.answer,
                                    retry_until: Some(until),
                                };
                                self.unsure.push((retry, until));
                            }
                            None => events.extend(one.answer.failed(&why)),
                        }
                    }
                    (self.events)(events);
                    return false;
                }
            };
            let mut events = Vec::with_capacity(planned.len());
            let mut again = Vec::new();
            let mut demoted = false;
            for one in planned {
                let replies: Vec<Reply> = replies.drain(..one.calls.len()).collect();
                // A server that lost the scripts (restarted, or `SCRIPT FLUSH`) ran none of
                // them: they are loaded again, and the operation is sent again.
                let lost = replies
                    .iter()
                    .any(|r| matches!(r, Reply::Error(e) if e.starts_with("NOSCRIPT")));
                // A master demoted to a replica (a failover): the link is no good, whatever
                // else it still answers.
                demoted |= replies
                    .iter()
                    .any(|r| matches!(r, Reply::Error(e) if e.starts_with("READONLY")));
                if lost {
                    again.push(one);
                } else {
                    if let Some((stream, at, nonce)) = Plan::read_nonce(&one.answer, &replies) {
                        self.handed.note(stream, at, nonce);
                    }
                    events.extend(self.plan.answer(one.answer, replies));
                }
            }
            (self.events)(events);
            if demoted {
                warn!("redis: the server is a replica now: reconnecting to the master");
                let failed = again
                    .iter()
                    .filter_map(|one| one.answer.failed("redis: the master moved"))
                    .collect();
                (self.events)(failed);
                return false;
            }
            if !again.is_empty() {
                match load_scripts(&mut connections.calls).await {
                    Ok(shas) => connections.shas = shas,
                    Err(_) => {
                        let failed = again
                            .iter()
                            .filter_map(|one| one.answer.failed("redis lost its scripts"))
                            .collect();
                        (self.events)(failed);
                        return false;
                    }
                }
            }
            planned = again;
        }
        true
    }

    /// Tells the hub the link is down, reconnects with backoff (failing what comes meanwhile),
    /// subscribes again, and tells it the link is up.
    async fn reconnect<R: Runtime>(
        &mut self,
        runtime: &R,
        operations: &async_channel::Receiver<Operation>,
    ) -> Connections {
        self.link_up.store(false, Ordering::Relaxed);
        self.handed.close();
        (self.events)(vec![EngineEvent::LinkDown]);
        let mut wait = Duration::from_millis(100);
        loop {
            self.refuse_queued(operations);
            self.give_up_unsure();
            // Woken at the first retry's deadline too, to answer it then.
            let pause = self
                .unsure
                .iter()
                .map(|(_, until)| *until)
                .min()
                .map_or(wait, |until| {
                    until.saturating_duration_since(Instant::now()).min(wait)
                });
            runtime.sleep_until(runtime.now() + pause).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            let Ok(mut connections) = self.open(runtime).await else {
                continue;
            };
            let mut subscribed = true;
            for channel in &self.followed {
                subscribed &= connections.subscribe(channel).await.is_ok();
            }
            if !subscribed || !self.verify(&mut connections).await {
                continue;
            }
            // The appends whose answer was lost, retried before anything new.
            let mut retries: Vec<Planned> = self.unsure.drain(..).map(|(one, _)| one).collect();
            if !self.send(&mut connections, &mut retries).await {
                continue;
            }
            self.handed.reopen();
            self.probe.reset();
            // Presence written again and read at once.
            self.next_presence = Instant::now();
            info!("redis: the link is back");
            self.link_up.store(true, Ordering::Relaxed);
            (self.events)(vec![EngineEvent::LinkUp]);
            return connections;
        }
    }

    /// The appends whose answer was lost and whose time to be retried is over fail
    /// `unavailable`: whether they were stored is for a client's resume to show.
    fn give_up_unsure(&mut self) {
        let now = Instant::now();
        let (over, left): (Vec<_>, Vec<_>) = self
            .unsure
            .drain(..)
            .partition(|(_, deadline)| *deadline <= now);
        self.unsure = left;
        let events: Vec<EngineEvent> = over
            .iter()
            .filter_map(|(one, _)| one.answer.failed("redis is unreachable"))
            .collect();
        if !events.is_empty() {
            (self.events)(events);
        }
    }

    /// Checks that Redis still holds the newest record the hub was handed of each followed
    /// stream, starting a new epoch where not (`failover.rs`); false if the link failed.
    async fn verify(&mut self, connections: &mut Connections) -> bool {
        let checks = self.handed.to_check();
        if checks.is_empty() {
            return true;
        }
        let commands = checks
            .iter()
            .map(|(stream, at, nonce)| routed(connections, &self.plan.verify(stream, *at, nonce)))
            .collect();
        let answers: redis::RedisResult<Vec<i64>> =
            connections.calls.run(commands).await.and_then(|replies| {
                replies
                    .into_iter()
                    .map(|reply| reply.and_then(|value| Ok(redis::from_redis_value(value)?)))
                    .collect()
            });
        match answers {
            Ok(answers) => {
                for ((stream, at, _), reset) in checks.iter().zip(answers) {
                    if reset == 1 {
                        warn!(
                            stream = stream.key(),
                            delivered = %at,
                            "redis lost records this node delivered (a failover): the stream \
                             starts a new epoch, its readers are told recovered: false"
                        );
                        self.handed.forget(stream);
                    }
                }
                true
            }
            Err(error) => {
                warn!(%error, "redis: the check after the reconnection failed");
                false
            }
        }
    }

    /// Keeps this node's presence entries, for their refresh.
    fn remember(&mut self, operation: &Operation) {
        if let Operation::Presence {
            node,
            room,
            user,
            present,
        } = operation
        {
            self.node = *node;
            let entry = (room.clone(), user.clone());
            if *present {
                self.present.insert(entry);
            } else {
                self.present.remove(&entry);
            }
        }
    }

    /// What the hub sent while the link is down fails at once rather than wait; follows are
    /// remembered for the reconnection.
    fn refuse_queued(&mut self, operations: &async_channel::Receiver<Operation>) {
        let mut failed = Vec::new();
        while let Ok(operation) = operations.try_recv() {
            if let Some(op) = operation.op() {
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
                // Written once the link is back, with the refresh.
                other => self.remember(&other),
            }
        }
        if !failed.is_empty() {
            (self.events)(failed);
        }
    }
}

/// Milliseconds since the Unix epoch: the records' times and the presence entries' expiry.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_millis() as u64)
}
