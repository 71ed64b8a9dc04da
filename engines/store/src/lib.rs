//! roomcast-store: the hub's streams on disk, with [redb](https://docs.rs/redb).
//!
//! One file in a data directory holds every stream's records and its state (epoch, offsets,
//! read mark), so a restart, SIGTERM or SIGKILL alike, loses nothing the hub was told is
//! stored, and a client's cursor from before it resumes after it. One commit thread takes
//! every operation queued since its last commit into one write transaction (group commit),
//! commits it with one fsync (`Durability::Immediate`), and only then tells the hub:
//! `Appended` and `Live` follow the fsync, so a reply's `id` or an HTTP 200 means the message
//! is on disk.
//!
//! ```no_run
//! # fn example<R: roomcast_io::Runtime>(runtime: R) -> Result<(), roomcast_store::StoreError> {
//! use roomcast_core::hub::{Hub, HubConfig};
//! use roomcast_store::{Store, StoreOptions};
//!
//! let (store, restored) = Store::open("roomcast-data".as_ref(), StoreOptions::default())?;
//! println!("restored {} messages in {:?}", restored.messages, restored.took);
//! let hub = roomcast_io::spawn_hub(&runtime, Hub::new(HubConfig::default()), store.link(), Default::default());
//! let hub_for_events = hub.clone();
//! let _running = store.start(move |events| {
//!     let _ = hub_for_events.engine_events(events);
//! });
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod compact;
mod meta;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, StorageBackend};
use roomcast_core::engine::{EngineEvent, Operation, StreamId, StreamKind};
use roomcast_io::{EngineLink, EngineStats};

use crate::batch::State;
pub use crate::compact::{Compacted, compact};
use crate::meta::{Meta, RECORDS, STREAMS};

/// The store's budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Bytes of messages kept in all ([`Record::size`](roomcast_core::engine::Record::size)):
    /// 1 GiB. An append past it drops its stream's oldest messages to make room; a stream that
    /// has none to drop is refused (`limit_reached`; HTTP 507 for the API).
    pub max_bytes: u64,
    /// Outboxes holding messages for users who are away: 100,000. A message to another such
    /// user past it is refused.
    pub max_outboxes: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 30,
            max_outboxes: 100_000,
        }
    }
}

/// How a store runs.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// Its budgets.
    pub limits: StoreLimits,
    /// Most operations in one commit: 10,000.
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            limits: StoreLimits::default(),
            max_batch: 10_000,
        }
    }
}

/// What a store found when it opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Streams.
    pub streams: usize,
    /// Messages.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The time it took.
    pub took: Duration,
}

/// Why a store could not open or commit.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory is held by another running server.
    Locked(PathBuf),
    /// A file operation failed.
    Io(std::io::Error),
    /// redb failed.
    Database(redb::Error),
    /// What is on disk is not what the store wrote.
    Corrupt(&'static str),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Locked(dir) => write!(
                f,
                "the data directory {} is in use by another running server (its LOCK file is held)",
                dir.display()
            ),
            Self::Io(error) => write!(f, "{error}"),
            Self::Database(error) => write!(f, "{error}"),
            Self::Corrupt(what) => write!(f, "the store is corrupt: {what}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The store's file in its data directory.
const FILE: &str = "roomcast.redb";

/// Takes the data directory's lock (`LOCK`, an exclusive file lock), held while the file is
/// open: a second process on the directory is refused.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(dir.to_owned())),
        Err(std::fs::TryLockError::Error(error)) => Err(error.into()),
    }
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(error: $t) -> Self {
                Self::Database(error.into())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError
);

/// An open store, not yet running: [`link`](Self::link) it to the hub, then
/// [`start`](Self::start) its commit thread.
pub struct Store {
    state: State,
    shared: Arc<Shared>,
    max_batch: usize,
    /// Held for the store's life: another server cannot open the directory meanwhile.
    _lock: Option<File>,
}

/// What the hub's side and the commit thread share.
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    streams: AtomicUsize,
    rooms_with_history: AtomicUsize,
    outboxes: AtomicUsize,
    messages: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Default)]
struct Queue {
    operations: VecDeque<Operation>,
    closed: bool,
}

impl Store {
    /// Opens the store in `dir` (made if missing), holding its lock for the store's life, and
    /// reads what it holds.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<(Self, Restored), StoreError> {
        std::fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        let db = Database::create(dir.join(FILE))?;
        let (store, restored) = Self::with_database(db, options)?;
        Ok((
            Self {
                _lock: Some(lock),
                ..store
            },
            restored,
        ))
    }

    /// A store on `backend` (a test's, which may fail at will), without a lock file.
    pub fn with_backend(
        backend: impl StorageBackend,
        options: StoreOptions,
    ) -> Result<(Self, Restored), StoreError> {
        let db = Database::builder().create_with_backend(backend)?;
        Self::with_database(db, options)
    }

    fn with_database(db: Database, options: StoreOptions) -> Result<(Self, Restored), StoreError> {
        let started = Instant::now();
        // The tables exist from the first open on, so reads never find them missing.
        let txn = db.begin_write()?;
        txn.open_table(STREAMS)?;
        txn.open_table(RECORDS)?;
        txn.commit()?;
        let mut metas = BTreeMap::new();
        let mut restored = Restored::default();
        let mut next_id = 0;
        {
            let txn = db.begin_read()?;
            let streams = txn.open_table(STREAMS)?;
            for entry in streams.iter()? {
                let (key, value) = entry?;
                let stream = StreamId::from_key(key.value())
                    .ok_or(StoreError::Corrupt("a stream key that does not parse"))?;
                let meta = Meta::decode(value.value())
                    .ok_or(StoreError::Corrupt("a stream's state that does not decode"))?;
                next_id = next_id.max(meta.id);
                restored.messages += meta.len();
                restored.bytes += meta.bytes;
                metas.insert(stream, meta);
            }
        }
        restored.streams = metas.len();
        // Nobody follows anything yet: every outbox holding messages is a user away.
        let held = |kind: StreamKind| {
            metas
                .iter()
                .filter(|(stream, meta)| stream.kind() == kind && !meta.is_empty())
                .count()
        };
        let (outboxes, rooms_with_history) = (held(StreamKind::Outbox), held(StreamKind::Room));
        restored.took = started.elapsed();
        let state = State {
            db,
            bytes: restored.bytes,
            metas,
            followed: BTreeSet::new(),
            limits: options.limits,
            next_id,
            // A new seed per open: a stream made after a restart gets an epoch unlike any
            // before it.
            seed: now_ms() ^ u64::from(std::process::id()).rotate_left(32),
            epochs: 0,
            outboxes,
            messages: restored.messages,
            rooms_with_history,
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            streams: AtomicUsize::new(0),
            rooms_with_history: AtomicUsize::new(0),
            outboxes: AtomicUsize::new(0),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        });
        shared.publish(&state);
        let store = Self {
            state,
            shared,
            max_batch: options.max_batch.max(1),
            _lock: None,
        };
        Ok((store, restored))
    }

    /// The hub's side: give it to [`spawn_hub`](roomcast_io::spawn_hub).
    pub fn link(&self) -> StoreLink {
        StoreLink {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Starts the commit thread; `events` takes each commit's events, in order (give them to
    /// [`HubHandle::engine_events`](roomcast_io::HubHandle::engine_events)). Dropping the
    /// returned handle commits what is queued, then stops the thread.
    pub fn start(self, mut events: impl FnMut(Vec<EngineEvent>) + Send + 'static) -> Running {
        let shared = Arc::clone(&self.shared);
        let Self {
            mut state,
            max_batch,
            _lock: lock,
            ..
        } = self;
        let thread = std::thread::Builder::new()
            .name("roomcast-store".into())
            .spawn(move || {
                let _lock = lock;
                while let Some(batch) = shared.next_batch(max_batch) {
                    let out = state.run(batch, now_ms());
                    shared.publish(&state);
                    if !out.is_empty() {
                        events(out);
                    }
                }
                shared.publish(&state);
            })
            .expect("a thread for the store");
        Running {
            shared: Arc::clone(&self.shared),
            thread: Some(thread),
        }
    }
}

/// A running store's commit thread.
pub struct Running {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The store as the hub drives it: operations go to the commit thread's queue at once, never
/// waiting; events come back through [`Store::start`]'s callback.
#[derive(Clone)]
pub struct StoreLink {
    shared: Arc<Shared>,
}

impl EngineLink for StoreLink {
    fn submit(&mut self, _now: Instant, operation: Operation) {
        // One node: its presence and typing are its hub's own, and cost no commit.
        if matches!(
            operation,
            Operation::Presence { .. } | Operation::Typing { .. }
        ) {
            return;
        }
        self.shared.lock().operations.push_back(operation);
        self.shared.wake.notify_one();
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        None
    }

    fn stats(&self) -> EngineStats {
        let shared = &self.shared;
        EngineStats {
            streams: shared.streams.load(Ordering::Relaxed),
            rooms_with_history: shared.rooms_with_history.load(Ordering::Relaxed),
            outboxes: shared.outboxes.load(Ordering::Relaxed),
            messages: usize::try_from(shared.messages.load(Ordering::Relaxed))
                .unwrap_or(usize::MAX),
            bytes: usize::try_from(shared.bytes.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for operations; takes up to `max` of them. `None` once closed and drained.
    fn next_batch(&self, max: usize) -> Option<Vec<Operation>> {
        let mut queue = self.lock();
        loop {
            if !queue.operations.is_empty() {
                let take = queue.operations.len().min(max);
                return Some(queue.operations.drain(..take).collect());
            }
            if queue.closed {
                return None;
            }
            queue = self
                .wake
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The figures, after a commit: the state's counters, kept exact by each batch.
    fn publish(&self, state: &State) {
        self.streams.store(state.metas.len(), Ordering::Relaxed);
        self.rooms_with_history
            .store(state.rooms_with_history, Ordering::Relaxed);
        self.outboxes.store(state.outboxes, Ordering::Relaxed);
        self.messages.store(state.messages, Ordering::Relaxed);
        self.bytes.store(state.bytes, Ordering::Relaxed);
    }
}

/// The wall clock, in milliseconds since the Unix epoch: records' ages survive restarts.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
}
