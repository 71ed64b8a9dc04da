//! `roomcast serve`'s flags: each optional, from the command line, the environment or the TOML
//! file (in that order of precedence); [`Settings::resolve`](super::Settings::resolve) applies
//! the defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::RuntimeKind;
use crate::trust::namespaces::NamespaceConfig;

/// Every setting is optional here; [`Settings::resolve`](super::Settings::resolve) applies the
/// defaults. The same struct reads the TOML file, whose keys are the flags' names with `_`
/// (`jwt_secret = "..."`).
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServeArgs {
    /// A TOML file with any of these settings, keyed by their flag names with `_` for `-`
    /// (`listen = "0.0.0.0:8080"`, `history_age = "10m"`). Flags and environment variables
    /// override it.
    #[arg(long, env = "ROOMCAST_CONFIG")]
    #[serde(skip)]
    pub(crate) config: Option<PathBuf>,

    /// Address to listen on. [default: 127.0.0.1:8080]
    #[arg(long, env = "ROOMCAST_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,

    /// Serve TLS with this PEM certificate chain (with --tls-key): HTTP/2 for browsers that
    /// negotiate it (every tab's streams on one connection), HTTP/1.1 for the others. The pair
    /// is read again on SIGHUP and when a file changes. [default: plain HTTP]
    #[arg(long, env = "ROOMCAST_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// Serve HTTP/2 on plain connections that open with its preface (h2c by prior knowledge),
    /// for a proxy that speaks HTTP/2 to its upstream; others stay HTTP/1.1. [default: off]
    #[arg(long, env = "ROOMCAST_H2C", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) h2c: Option<bool>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "ROOMCAST_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,

    /// Secret for HS256 JSON Web Tokens: clients connect with `?token=JWT` or
    /// `Authorization: Bearer JWT`; `sub` is the user id, `exp` is required and ends the
    /// session, `nbf` is honoured. Without a key (this, --jwt-public-key or --jwt-jwks) the
    /// server runs in development mode, where `?user=NAME` names the user unchecked.
    #[arg(long, env = "ROOMCAST_JWT_SECRET", hide_env_values = true)]
    pub(crate) jwt_secret: Option<String>,

    /// Check tokens with this PEM public key instead: RSA (RS256) or EC P-256 (ES256).
    #[arg(long, env = "ROOMCAST_JWT_PUBLIC_KEY")]
    pub(crate) jwt_public_key: Option<PathBuf>,

    /// Check tokens with the keys of this JWKS file instead (RS256, ES256), chosen by `kid`.
    #[arg(long, env = "ROOMCAST_JWT_JWKS")]
    pub(crate) jwt_jwks: Option<PathBuf>,

    /// Tokens must carry this `iss`. [default: not checked]
    #[arg(long, env = "ROOMCAST_JWT_ISSUER")]
    pub(crate) jwt_issuer: Option<String>,

    /// Tokens must carry this `aud`. [default: not checked]
    #[arg(long, env = "ROOMCAST_JWT_AUDIENCE")]
    pub(crate) jwt_audience: Option<String>,

    /// Key for the HTTP API (`/api/...`): `Authorization: Bearer KEY`. Without it the API is
    /// open (logged at start), which only a loopback address or --insecure-dev allows.
    #[arg(long, env = "ROOMCAST_API_KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,

    /// Key for `/metrics` and `/api/status`: `Authorization: Bearer KEY`. [default: the API
    /// key]
    #[arg(long, env = "ROOMCAST_METRICS_KEY", hide_env_values = true)]
    pub(crate) metrics_key: Option<String>,

    /// Serve on a non-loopback address without an API key or without a JWT key (the open API,
    /// `?user=NAME`): for a trusted network only. Refused otherwise.
    #[arg(long, env = "ROOMCAST_INSECURE_DEV", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) insecure_dev: Option<bool>,

    /// Origins browsers may connect from, comma-separated (`https://app.example.com`); `*` for
    /// any. [default: any]
    #[arg(long, env = "ROOMCAST_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub(crate) allowed_origins: Option<Vec<String>>,

    /// Largest inbound frame, in bytes; a larger one closes the connection with 1009.
    /// [default: 65536]
    #[arg(long, env = "ROOMCAST_MAX_FRAME")]
    pub(crate) max_frame: Option<usize>,

    /// Bytes queued for one connection before it is closed as a slow consumer (4000; it then
    /// resumes without loss). [default: 1048576]
    #[arg(long, env = "ROOMCAST_QUEUE_BYTES")]
    pub(crate) queue_bytes: Option<usize>,

    /// Messages per second one connection may send (then `rate_limited` errors). [default: 100]
    #[arg(long, env = "ROOMCAST_RATE")]
    pub(crate) rate: Option<u32>,

    /// Burst above the rate. [default: 200]
    #[arg(long, env = "ROOMCAST_BURST")]
    pub(crate) burst: Option<u32>,

    /// Messages kept per room and for the broadcast feed, for resume. [default: 1000]
    #[arg(long, env = "ROOMCAST_HISTORY")]
    pub(crate) history: Option<usize>,

    /// How long room and broadcast messages are kept (`90s`, `10m`, `1h`). [default: 10m]
    #[arg(long, env = "ROOMCAST_HISTORY_AGE", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) history_age: Option<Duration>,

    /// Bytes of messages (payload and names) kept per room and for the broadcast feed; past
    /// it the oldest go. [default: 1048576]
    #[arg(long, env = "ROOMCAST_HISTORY_BYTES")]
    pub(crate) history_bytes: Option<usize>,

    /// Messages kept per user outbox (notifications, direct messages). [default: 1000]
    #[arg(long, env = "ROOMCAST_OUTBOX")]
    pub(crate) outbox: Option<usize>,

    /// How long outbox messages are kept. [default: 7days]
    #[arg(long, env = "ROOMCAST_OUTBOX_AGE", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) outbox_age: Option<Duration>,

    /// Bytes of messages (payload and names) kept per user outbox; past it the oldest go.
    /// [default: 1048576]
    #[arg(long, env = "ROOMCAST_OUTBOX_BYTES")]
    pub(crate) outbox_bytes: Option<usize>,

    /// Directory the streams are stored in (room histories, user outboxes, the broadcast
    /// feed): they survive a restart, a crash included; a message is acknowledged once it is
    /// on disk. A directory another running server holds is refused. [default: roomcast-data]
    #[arg(long, env = "ROOMCAST_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// Keep the streams in Redis (`redis://host:6379`, `rediss://host:6380` for TLS,
    /// `redis+sentinel://host:26379[,host:26379]/master` for the master Sentinels name, or
    /// `redis+cluster://host:6379[,host:6379]` for a Redis Cluster), shared
    /// with every other roomcast node on the same Redis: rooms, outboxes and the broadcast feed
    /// reach clients on any node, and a client resumes on any node. Excludes --data-dir and
    /// --memory. See docs/scaling.md.
    #[arg(long, env = "ROOMCAST_REDIS", hide_env_values = true)]
    pub(crate) redis: Option<String>,

    /// With --redis: how long a node's presence entries last unless it refreshes them (it does
    /// at a third of it): the users of a node that died leave their rooms within it.
    /// [default: 30s]
    #[arg(long, env = "ROOMCAST_REDIS_PRESENCE_TTL", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) redis_presence_ttl: Option<Duration>,

    /// With --redis: this node's name in `/api/status`'s `nodes`. [default: its number, drawn at
    /// start, in hex]
    #[arg(long, env = "ROOMCAST_NODE_NAME")]
    pub(crate) node_name: Option<String>,

    /// Keep the streams in memory only, without a data directory: a restart loses every outbox
    /// and history (logged at start).
    #[arg(long, env = "ROOMCAST_MEMORY", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) memory: Option<bool>,

    /// Bytes of messages stored in all (payload and names); past it a stream's oldest messages
    /// make room, and a new stream is refused (`limit_reached`, HTTP 507). [default: 1073741824]
    #[arg(long, env = "ROOMCAST_STORE_MAX_BYTES")]
    pub(crate) store_max_bytes: Option<u64>,

    /// Users away (no session) with stored messages, at most; a message to another is refused
    /// (`limit_reached`, HTTP 507). [default: 100000]
    #[arg(long, env = "ROOMCAST_MAX_OFFLINE_OUTBOXES")]
    pub(crate) max_offline_outboxes: Option<usize>,

    /// Storage operations in flight (sent to the store, not yet committed), at most; past it a
    /// message is refused at once (`unavailable`, HTTP 503): the disk does not keep up.
    /// [default: 10000]
    #[arg(long, env = "ROOMCAST_MAX_PENDING_WRITES")]
    pub(crate) max_pending_writes: Option<usize>,

    /// The application's connect hook: an HTTP URL roomcast POSTs each session that
    /// authenticated to, which may refuse it or widen its grants (docs/security.md).
    #[arg(long, env = "ROOMCAST_CONNECT_HOOK")]
    pub(crate) connect_hook: Option<String>,

    /// The application's join hook: asked about each join of a room whose namespace has
    /// `join = [..., "hook"]` and that nothing else admits.
    #[arg(long, env = "ROOMCAST_JOIN_HOOK")]
    pub(crate) join_hook: Option<String>,

    /// The application's publish hook: asked about each publish to a room whose namespace has
    /// `publish = "hook"`; it may allow, refuse, or give other data to publish.
    #[arg(long, env = "ROOMCAST_PUBLISH_HOOK")]
    pub(crate) publish_hook: Option<String>,

    /// Longest a hook call may take; past it the request is refused `unavailable` (503).
    /// [default: 2s]
    #[arg(long, env = "ROOMCAST_HOOK_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) hook_timeout: Option<Duration>,

    /// Hook calls in flight at once, at most; more are refused `unavailable` at once.
    /// [default: 64]
    #[arg(long, env = "ROOMCAST_HOOK_MAX_IN_FLIGHT")]
    pub(crate) hook_max_in_flight: Option<usize>,

    /// Connections one IP address may hold: every TCP connection, with the WebSocket, SSE or
    /// long-poll session it carries; more get 429 (a TLS connection counts from its handshake,
    /// and one over the limit is closed without one). [default: 1024]
    #[arg(long, env = "ROOMCAST_MAX_CONNECTIONS_PER_IP")]
    pub(crate) max_connections_per_ip: Option<usize>,

    /// New sessions (WebSocket, SSE, long-poll, STOMP, SockJS) the node opens per second, in
    /// bursts of --new-sessions-burst; more get 429 `rate_limited` with a `Retry-After` that
    /// spreads them over the seconds ahead, and a SIGTERM spreads the clients' return over
    /// sessions / this rate. 0: no limit. [default: 5000]
    #[arg(long, env = "ROOMCAST_MAX_NEW_SESSIONS")]
    pub(crate) max_new_sessions: Option<u32>,

    /// New sessions admitted at once by a node that was quiet. [default: 5000]
    #[arg(long, env = "ROOMCAST_NEW_SESSIONS_BURST")]
    pub(crate) new_sessions_burst: Option<u32>,

    /// Proxies whose `X-Forwarded-For` names the client, comma-separated addresses or ranges
    /// (`10.0.0.0/8,::1`): the per-IP limit then counts each client behind them, not the proxy.
    /// [default: none: the header is never believed]
    #[arg(long, env = "ROOMCAST_TRUSTED_PROXIES", value_delimiter = ',')]
    pub(crate) trusted_proxies: Option<Vec<String>>,

    /// How often the server pings a WebSocket. [default: 25s]
    #[arg(long, env = "ROOMCAST_PING_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) ping_interval: Option<Duration>,

    /// How long a WebSocket may stay silent after a ping before it is closed (4001).
    /// [default: 10s]
    #[arg(long, env = "ROOMCAST_PING_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) ping_timeout: Option<Duration>,

    /// How often an SSE stream gets a keep-alive comment. [default: 15s]
    #[arg(long, env = "ROOMCAST_KEEP_ALIVE", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) keep_alive: Option<Duration>,

    /// On SIGINT or SIGTERM: how long clients keep their connection after the `shutdown` notice,
    /// before it closes with 1001. [default: 5s]
    #[arg(long, env = "ROOMCAST_SHUTDOWN_GRACE", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) shutdown_grace: Option<Duration>,

    /// How long a room's presence changes wait to go out together: a join storm costs each
    /// member one `presence` frame per window, not one per arriving user. A change in a room
    /// quiet for longer goes out at once; 0s sends every change at once. [default: 200ms]
    #[arg(long, env = "ROOMCAST_PRESENCE_WINDOW", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) presence_window: Option<Duration>,

    /// Rooms with more users present get counts only: `presence {room, count}`, and `count`
    /// instead of `members` in the join reply. [default: 1000]
    #[arg(long, env = "ROOMCAST_PRESENCE_COUNTS_ABOVE")]
    pub(crate) presence_counts_above: Option<usize>,

    /// How often a room above that size gets its count, at most. [default: 1s]
    #[arg(long, env = "ROOMCAST_PRESENCE_COUNT_EVERY", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) presence_count_every: Option<Duration>,

    /// How late a session's timer (heartbeat, keep-alive, close deadlines) may fire, at most:
    /// deadlines move to a grid every session shares, so the heartbeats of many connections
    /// wake the server together. At most 1/16 of the time left; 0s for exact timers.
    /// [default: 250ms]
    #[arg(long, env = "ROOMCAST_TIMER_SLACK", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub(crate) timer_slack: Option<Duration>,

    /// The async runtime: `tokio` or `smol`. Both serve the same protocol and pass the same
    /// tests; tokio's scheduler runs a freshly woken task (a publisher) first, so fan-outs
    /// overlap and their frames coalesce (docs/performance.md). [default: tokio]
    #[arg(long, env = "ROOMCAST_RUNTIME")]
    pub(crate) runtime: Option<RuntimeKind>,

    /// Worker threads (tokio). smol's are set by its `SMOL_THREADS` environment variable.
    /// [default: one per CPU]
    #[arg(long, env = "ROOMCAST_THREADS")]
    pub(crate) threads: Option<usize>,

    /// Log filter: `error`, `warn`, `info`, `debug`, `trace`, or per module
    /// (`info,roomcast=debug`). [default: info]
    #[arg(long, env = "ROOMCAST_LOG")]
    pub(crate) log: Option<String>,

    /// The default namespace's policy (rooms without a `:`): config file only, a table
    /// `[default_namespace]` (docs/security.md). [default: open]
    #[arg(skip)]
    pub(crate) default_namespace: Option<NamespaceConfig>,

    /// Every other namespace's policy: config file only, tables `[namespaces.NAME]`; a room
    /// of a namespace not listed is refused.
    #[arg(skip)]
    pub(crate) namespaces: BTreeMap<String, NamespaceConfig>,
}

/// Fills every setting `self` leaves unset from `file`.
macro_rules! merge {
    ($args:ident, $file:ident, $($field:ident),* $(,)?) => {
        ServeArgs {
            config: $args.config,
            namespaces: $args.namespaces,
            $($field: $args.$field.or($file.$field)),*
        }
    };
}

impl ServeArgs {
    /// The namespaces, which only the file sets.
    fn with_namespaces(mut self, namespaces: BTreeMap<String, NamespaceConfig>) -> Self {
        if self.namespaces.is_empty() {
            self.namespaces = namespaces;
        }
        self
    }

    /// These settings over the TOML file's, if one is named.
    pub(crate) fn with_file(self) -> Result<Self, String> {
        let Some(path) = &self.config else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        let file: ServeArgs =
            toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        Ok(merge!(
            self,
            file,
            listen,
            tls_cert,
            tls_key,
            h2c,
            jwt_secret,
            jwt_public_key,
            jwt_jwks,
            jwt_issuer,
            jwt_audience,
            api_key,
            metrics_key,
            insecure_dev,
            allowed_origins,
            max_frame,
            queue_bytes,
            rate,
            burst,
            history,
            history_age,
            history_bytes,
            outbox,
            outbox_age,
            outbox_bytes,
            data_dir,
            redis,
            redis_presence_ttl,
            node_name,
            memory,
            store_max_bytes,
            max_offline_outboxes,
            max_pending_writes,
            max_connections_per_ip,
            max_new_sessions,
            new_sessions_burst,
            trusted_proxies,
            connect_hook,
            join_hook,
            publish_hook,
            hook_timeout,
            hook_max_in_flight,
            ping_interval,
            ping_timeout,
            keep_alive,
            shutdown_grace,
            presence_window,
            presence_counts_above,
            presence_count_every,
            timer_slack,
            runtime,
            threads,
            log,
            default_namespace,
        )
        .with_namespaces(file.namespaces))
    }
}
