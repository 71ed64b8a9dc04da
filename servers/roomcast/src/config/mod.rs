//! `roomcast serve`'s settings: flags, environment variables and an optional TOML file, in that
//! order of precedence, over the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use roomcast_core::hub::{HistoryLimit, HubConfig};
use roomcast_core::session::SessionConfig;
use roomcast_hyper::{Cidr, NewSessions};
use serde::Deserialize;

pub(crate) use self::args::ServeArgs;
use crate::hooks::HookSettings;
use crate::trust::namespaces;

mod args;

/// Every setting, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    /// The certificate chain and key, for TLS.
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    /// h2c by prior knowledge on plain connections.
    pub(crate) h2c: bool,
    pub(crate) jwt_secret: Option<String>,
    pub(crate) jwt_public_key: Option<PathBuf>,
    pub(crate) jwt_jwks: Option<PathBuf>,
    pub(crate) jwt_issuer: Option<String>,
    pub(crate) jwt_audience: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) metrics_key: Option<String>,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) max_connections_per_ip: usize,
    pub(crate) new_sessions: NewSessions,
    pub(crate) trusted_proxies: Vec<Cidr>,
    /// The application's hooks.
    pub(crate) hooks: HookSettings,
    pub(crate) session: SessionConfig,
    pub(crate) hub: HubConfig,
    /// Where the streams are kept.
    pub(crate) storage: Storage,
    /// With Redis: how long presence entries last unrefreshed.
    pub(crate) redis_presence_ttl: Duration,
    /// With Redis: this node's name.
    pub(crate) node_name: String,
    /// What may be stored in all.
    pub(crate) storage_limits: StorageLimits,
    /// [`roomcast_io::SessionOptions::timer_slack`].
    pub(crate) timer_slack: Duration,
    pub(crate) runtime: RuntimeKind,
    /// `None`: one per CPU.
    pub(crate) threads: Option<usize>,
    pub(crate) log: String,
}

/// Where the streams are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Storage {
    /// On disk, in this directory.
    Dir(PathBuf),
    /// In memory: lost with the process.
    Memory,
    /// In Redis, at this URL, shared with the other nodes.
    Redis(String),
}

/// A number for this node, different from every other's: the time, the process id and a
/// count mixed, never 0 (a single node's number).
fn node_number() -> u64 {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos() as u64);
    let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut z = nanos ^ (u64::from(std::process::id()) << 40) ^ count.rotate_left(20);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).max(1)
}

/// The storage budgets, whichever the storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StorageLimits {
    pub(crate) max_bytes: u64,
    pub(crate) max_offline_outboxes: usize,
}

/// Which async runtime serves.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RuntimeKind {
    /// tokio, multi-threaded.
    #[default]
    Tokio,
    /// smol's global executor.
    Smol,
}

impl Settings {
    /// The settings, defaults applied and checked.
    pub(crate) fn resolve(args: ServeArgs) -> Result<Self, String> {
        let defaults = SessionConfig::default();
        let session = SessionConfig {
            max_frame: args.max_frame.unwrap_or(defaults.max_frame),
            queue_bytes: args.queue_bytes.unwrap_or(defaults.queue_bytes),
            rate_per_sec: args.rate.unwrap_or(defaults.rate_per_sec),
            burst: args.burst.unwrap_or(defaults.burst),
            ping_interval: args.ping_interval.unwrap_or(defaults.ping_interval),
            ping_timeout: args.ping_timeout.unwrap_or(defaults.ping_timeout),
            keep_alive: args.keep_alive.unwrap_or(defaults.keep_alive),
            shutdown_grace: args.shutdown_grace.unwrap_or(defaults.shutdown_grace),
            ..defaults
        };
        let hub_defaults = HubConfig::default();
        let room = HistoryLimit {
            max_messages: args
                .history
                .unwrap_or(hub_defaults.room_history.max_messages),
            max_age: args
                .history_age
                .unwrap_or(hub_defaults.room_history.max_age),
            max_bytes: args
                .history_bytes
                .unwrap_or(hub_defaults.room_history.max_bytes),
        };
        let mut hub = HubConfig {
            room_history: room,
            broadcast_history: room,
            outbox_history: HistoryLimit {
                max_messages: args
                    .outbox
                    .unwrap_or(hub_defaults.outbox_history.max_messages),
                max_age: args
                    .outbox_age
                    .unwrap_or(hub_defaults.outbox_history.max_age),
                max_bytes: args
                    .outbox_bytes
                    .unwrap_or(hub_defaults.outbox_history.max_bytes),
            },
            max_pending: args.max_pending_writes.unwrap_or(hub_defaults.max_pending),
            presence_window: args.presence_window.unwrap_or(hub_defaults.presence_window),
            presence_counts_above: args
                .presence_counts_above
                .unwrap_or(hub_defaults.presence_counts_above),
            presence_count_every: args
                .presence_count_every
                .unwrap_or(hub_defaults.presence_count_every),
            ..hub_defaults
        };
        let checks = [
            (session.max_frame == 0, "max_frame must be at least 1"),
            (session.queue_bytes == 0, "queue_bytes must be at least 1"),
            (
                session.ping_interval.is_zero(),
                "ping_interval must not be 0",
            ),
            (session.ping_timeout.is_zero(), "ping_timeout must not be 0"),
            (session.keep_alive.is_zero(), "keep_alive must not be 0"),
            (
                args.redis_presence_ttl
                    .is_some_and(|ttl| ttl < Duration::from_secs(1)),
                "redis_presence_ttl must be at least 1s",
            ),
            (args.threads == Some(0), "threads must be at least 1"),
            (
                hub.max_pending == 0,
                "max_pending_writes must be at least 1",
            ),
            (
                hub.room_history.max_bytes == 0 || hub.outbox_history.max_bytes == 0,
                "history_bytes and outbox_bytes must be at least 1",
            ),
        ];
        if let Some((_, message)) = checks.iter().find(|(bad, _)| *bad) {
            return Err((*message).to_owned());
        }
        if args.jwt_secret.as_deref() == Some("") {
            return Err("jwt_secret must not be empty".into());
        }
        let keys = [
            args.jwt_secret.is_some(),
            args.jwt_public_key.is_some(),
            args.jwt_jwks.is_some(),
        ];
        if keys.iter().filter(|given| **given).count() > 1 {
            return Err("jwt_secret, jwt_public_key and jwt_jwks exclude each other".into());
        }
        let listen = args
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let api_key = args.api_key.filter(|key| !key.is_empty());
        let keyed = keys.iter().any(|given| *given);
        if !listen.ip().is_loopback() && !args.insecure_dev.unwrap_or(false) {
            if api_key.is_none() {
                return Err(format!(
                    "refusing to serve an open API on {listen}: set --api-key (or --insecure-dev on a trusted network)"
                ));
            }
            if !keyed {
                return Err(format!(
                    "refusing to serve ?user=NAME logins on {listen}: set --jwt-secret, --jwt-public-key or --jwt-jwks (or --insecure-dev on a trusted network)"
                ));
            }
        }
        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("tls_cert and tls_key go together".into()),
        };
        let trusted_proxies = args
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .filter(|text| !text.is_empty())
            .map(|text| {
                text.parse::<Cidr>()
                    .map_err(|why| format!("trusted_proxies: {why}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        hub.namespaces = Arc::new(namespaces::resolve(
            args.default_namespace.as_ref(),
            &args.namespaces,
            hub.room_history,
        )?);
        let url = |url: Option<String>, name: &str| -> Result<Option<String>, String> {
            match url.filter(|url| !url.is_empty()) {
                Some(url) if !url.starts_with("http://") => Err(format!(
                    "{name} must be an http:// URL (the application, near roomcast)"
                )),
                url => Ok(url),
            }
        };
        let hooks = HookSettings {
            connect: url(args.connect_hook, "connect_hook")?,
            join: url(args.join_hook, "join_hook")?,
            publish: url(args.publish_hook, "publish_hook")?,
            timeout: args.hook_timeout.unwrap_or(Duration::from_secs(2)),
            max_in_flight: args.hook_max_in_flight.unwrap_or(64),
        };
        if hooks.timeout.is_zero() || hooks.max_in_flight == 0 {
            return Err("hook_timeout and hook_max_in_flight must not be 0".into());
        }
        let (join_hook, publish_hook) = hub.namespaces.hooks_asked();
        if join_hook && hooks.join.is_none() {
            return Err("a namespace's join names \"hook\": set --join-hook".into());
        }
        if publish_hook && hooks.publish.is_none() {
            return Err("a namespace's publish is \"hook\": set --publish-hook".into());
        }
        let storage = match (args.memory.unwrap_or(false), args.data_dir, args.redis) {
            (true, Some(_), _) => return Err("--memory and --data-dir exclude each other".into()),
            (true, _, Some(_)) => return Err("--memory and --redis exclude each other".into()),
            (_, Some(_), Some(_)) => return Err("--data-dir and --redis exclude each other".into()),
            (false, None, Some(url)) if url.is_empty() => {
                return Err("redis must be a URL (redis://host:6379)".into());
            }
            (false, None, Some(url)) => Storage::Redis(url),
            (true, None, None) => Storage::Memory,
            (false, dir, None) => {
                Storage::Dir(dir.unwrap_or_else(|| PathBuf::from("roomcast-data")))
            }
        };
        if matches!(storage, Storage::Redis(_)) {
            // Each node its own number: what its sessions append comes back from Redis to
            // every node, and a node knows its own by it (exclude-sender, answers).
            hub.node = node_number();
            // Redis loses no pub/sub message on a connection that stays up (a client that
            // falls behind is disconnected, which the driver sees), and the driver reads the
            // heads after every reconnection: the hub's own check of the heads is a rarer
            // safety net here, not every 5 s (it was most of Redis's commands per message).
            hub.check_every = Duration::from_secs(30);
        }
        let node_name = args
            .node_name
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| format!("{:016x}", hub.node));
        let storage_limits = StorageLimits {
            max_bytes: args.store_max_bytes.unwrap_or(1 << 30),
            max_offline_outboxes: args.max_offline_outboxes.unwrap_or(100_000),
        };
        Ok(Self {
            listen,
            tls,
            h2c: args.h2c.unwrap_or(false),
            jwt_secret: args.jwt_secret,
            jwt_public_key: args.jwt_public_key,
            jwt_jwks: args.jwt_jwks,
            jwt_issuer: args.jwt_issuer.filter(|issuer| !issuer.is_empty()),
            jwt_audience: args.jwt_audience.filter(|audience| !audience.is_empty()),
            metrics_key: args
                .metrics_key
                .filter(|key| !key.is_empty())
                .or_else(|| api_key.clone()),
            api_key,
            allowed_origins: args.allowed_origins.unwrap_or_default(),
            max_connections_per_ip: args.max_connections_per_ip.unwrap_or(1024),
            new_sessions: NewSessions {
                per_second: args
                    .max_new_sessions
                    .unwrap_or(NewSessions::default().per_second),
                burst: args
                    .new_sessions_burst
                    .unwrap_or(NewSessions::default().burst),
            },
            trusted_proxies,
            hooks,
            session,
            hub,
            storage,
            redis_presence_ttl: args.redis_presence_ttl.unwrap_or(Duration::from_secs(30)),
            node_name,
            storage_limits,
            timer_slack: args.timer_slack.unwrap_or(roomcast_io::DEFAULT_TIMER_SLACK),
            runtime: args.runtime.unwrap_or_default(),
            threads: args.threads,
            log: args.log.unwrap_or_else(|| "info".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = Settings::resolve(ServeArgs::default()).expect("valid");
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.session.max_frame, 65536);
        assert_eq!(settings.session.ping_interval, Duration::from_secs(25));
        assert_eq!(settings.hub.room_history.max_messages, 1000);
        assert_eq!(
            settings.hub.outbox_history.max_age,
            Duration::from_secs(7 * 86400)
        );
        assert_eq!(settings.max_connections_per_ip, 1024);
        assert!(settings.jwt_secret.is_none());
        assert_eq!(settings.log, "info");
        assert_eq!(settings.timer_slack, Duration::from_millis(250));
    }

    #[test]
    fn the_file_fills_what_flags_leave_unset() {
        let dir = std::env::temp_dir().join(format!("roomcast-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("roomcast.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nhistory_age = \"90s\"\nmax_frame = 1024\n\
             allowed_origins = [\"https://a.example\"]\ntimer_slack = \"0s\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path.clone()),
            max_frame: Some(2048),
            ..ServeArgs::default()
        };
        let settings = Settings::resolve(args.with_file().expect("readable")).expect("valid");
        assert_eq!(settings.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(settings.hub.room_history.max_age, Duration::from_secs(90));
        assert_eq!(settings.session.max_frame, 2048, "the flag wins");
        assert_eq!(settings.allowed_origins, ["https://a.example"]);
        assert_eq!(settings.timer_slack, Duration::ZERO);

        std::fs::write(&path, "listen_on = 1\n").expect("write");
        let error = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        }
        .with_file()
        .expect_err("unknown keys are refused");
        assert!(error.contains("listen_on"), "{error}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        let args = ServeArgs {
            keep_alive: Some(Duration::ZERO),
            ..ServeArgs::default()
        };
        assert_eq!(
            Settings::resolve(args).expect_err("invalid"),
            "keep_alive must not be 0"
        );
    }

    #[test]
    fn storage_budgets_have_defaults_and_knobs() {
        let settings = Settings::resolve(ServeArgs::default()).expect("valid");
        assert_eq!(
            settings.storage,
            Storage::Dir(PathBuf::from("roomcast-data"))
        );
        assert_eq!(settings.storage_limits.max_bytes, 1 << 30);
        assert_eq!(settings.storage_limits.max_offline_outboxes, 100_000);
        assert_eq!(settings.hub.max_pending, 10_000);
        assert_eq!(settings.hub.room_history.max_bytes, 1 << 20);
        assert_eq!(settings.hub.outbox_history.max_bytes, 1 << 20);

        let args = ServeArgs {
            memory: Some(true),
            store_max_bytes: Some(5_000),
            max_offline_outboxes: Some(7),
            max_pending_writes: Some(3),
            history_bytes: Some(100),
            outbox_bytes: Some(200),
            ..ServeArgs::default()
        };
        let settings = Settings::resolve(args).expect("valid");
        assert_eq!(settings.storage, Storage::Memory);
        assert_eq!(
            settings.storage_limits,
            StorageLimits {
                max_bytes: 5_000,
                max_offline_outboxes: 7
            }
        );
        assert_eq!(settings.hub.max_pending, 3);
        assert_eq!(settings.hub.room_history.max_bytes, 100);
        assert_eq!(settings.hub.broadcast_history.max_bytes, 100);
        assert_eq!(settings.hub.outbox_history.max_bytes, 200);

        let both = ServeArgs {
            memory: Some(true),
            data_dir: Some(PathBuf::from("elsewhere")),
            ..ServeArgs::default()
        };
        assert_eq!(
            Settings::resolve(both).expect_err("exclusive"),
            "--memory and --data-dir exclude each other"
        );
        let redis = |memory, data_dir: Option<&str>, url: &str| ServeArgs {
            memory,
            data_dir: data_dir.map(PathBuf::from),
            redis: Some(url.to_owned()),
            ..ServeArgs::default()
        };
        let refused = [
            (redis(Some(true), None, "redis://r"), "--memory and --redis"),
            (
                redis(None, Some("d"), "redis://r"),
                "--data-dir and --redis",
            ),
            (redis(None, None, ""), "redis must be a URL"),
        ];
        for (args, why) in refused {
            let error = Settings::resolve(args).expect_err("refused");
            assert!(error.starts_with(why), "{error}");
        }
        let settings = Settings::resolve(redis(None, None, "redis://r:6379")).expect("valid");
        assert_eq!(settings.storage, Storage::Redis("redis://r:6379".into()));
        assert_ne!(
            settings.hub.node, 0,
            "a node of many has a number of its own"
        );
        let other = Settings::resolve(redis(None, None, "redis://r:6379")).expect("valid");
        assert_ne!(settings.hub.node, other.hub.node);
        let none_pending = ServeArgs {
            max_pending_writes: Some(0),
            ..ServeArgs::default()
        };
        assert_eq!(
            Settings::resolve(none_pending).expect_err("invalid"),
            "max_pending_writes must be at least 1"
        );
    }

    /// `docs/operations.md` lists every flag of `roomcast serve`, with its environment
    /// variable: the page and `--help` come from the same code, and this keeps them so.
    #[test]
    fn the_operations_page_lists_every_flag() {
        use clap::{Args as _, Command};
        let page = include_str!("../../../../docs/operations.md");
        let command = ServeArgs::augment_args(Command::new("serve"));
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" {
                continue;
            }
            assert!(
                page.contains(&format!("`--{long}`")),
                "docs/operations.md does not list --{long}"
            );
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                assert!(
                    page.contains(&format!("`{env}`")),
                    "docs/operations.md does not list {env}"
                );
            }
        }
    }
}
