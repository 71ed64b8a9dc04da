//! `roomcast serve`: the settings, logging, the hub, the service, and the graceful drain on
//! SIGINT or SIGTERM.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_signal::{Signal, Signals};
use futures_lite::StreamExt;
use roomcast_core::engine::{MemoryEngine, MemoryLimits};
use roomcast_core::hub::Hub;
use roomcast_hyper::{Options, Roomcast, user_from_query};
use roomcast_io::{
    Budget, Credentials, CredentialsRef, HooksRef, Observe, Runtime, SessionOptions, spawn_hub,
};
use roomcast_redis::driver::RedisOptions;
use roomcast_smol::SmolRuntime;
use roomcast_store::{Store, StoreLimits, StoreOptions};
use roomcast_tokio::TokioRuntime;
use tracing::{info, warn};

use crate::app::{App, Nodes};
use crate::config::{RuntimeKind, ServeArgs, Settings, Storage};
use crate::hooks::AppHooks;
use crate::metrics::Metrics;
use crate::tls::Certificates;
use crate::trust;

pub(crate) fn serve(args: ServeArgs) -> Result<(), String> {
    let settings = Settings::resolve(args.with_file()?)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .map_err(|e| format!("log filter {:?}: {e}", settings.log))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Before the port opens: a SIGTERM from the moment anyone can connect drains, never kills.
    let signals = Signals::new([Signal::Int, Signal::Term]).map_err(|e| e.to_string())?;
    // Before the port opens too: a data directory another server holds is refused at once,
    // and a certificate that cannot serve.
    let engine = open_engine(&settings)?;
    let tls = match &settings.tls {
        Some((cert, key)) => {
            let certificates = Certificates::open(cert, key)?;
            let config = certificates.server_config()?;
            Some((certificates, config))
        }
        None => None,
    };
    let served = match settings.runtime {
        RuntimeKind::Tokio => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(threads) = settings.threads {
                builder.worker_threads(threads);
            }
            let runtime = builder.enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(settings.listen).await?;
                let addr = listener.local_addr()?;
                let runtime = TokioRuntime::current();
                if let Some((certificates, _)) = &tls {
                    runtime.spawn(reload_certificates(
                        runtime.clone(),
                        Arc::clone(certificates),
                    ));
                }
                run(
                    settings,
                    engine,
                    runtime,
                    addr,
                    signals,
                    |roomcast, app| async move {
                        let service = move |peer| app.service(peer);
                        match tls {
                            Some((_, config)) => {
                                roomcast_tokio::serve_tls_with(listener, roomcast, config, service)
                                    .await
                            }
                            None => roomcast_tokio::serve_with(listener, roomcast, service).await,
                        }
                    },
                )
                .await
            })
        }
        RuntimeKind::Smol => smol::block_on(async {
            let listener = smol::net::TcpListener::bind(settings.listen).await?;
            let addr = listener.local_addr()?;
            if let Some((certificates, _)) = &tls {
                SmolRuntime.spawn(reload_certificates(SmolRuntime, Arc::clone(certificates)));
            }
            run(
                settings,
                engine,
                SmolRuntime,
                addr,
                signals,
                |roomcast, app| async move {
                    let service = move |peer| app.service(peer);
                    match tls {
                        Some((_, config)) => {
                            roomcast_smol::serve_tls_with(listener, roomcast, config, service).await
                        }
                        None => roomcast_smol::serve_with(listener, roomcast, service).await,
                    }
                },
            )
            .await
        }),
    };
    served.map_err(|e| e.to_string())
}

/// Reads the certificate again on SIGHUP, and when its files change (checked every 2 s), for
/// as long as the process runs.
async fn reload_certificates<R: Runtime>(runtime: R, certificates: Arc<Certificates>) {
    let mut hangups = match Signals::new([Signal::Hup]) {
        Ok(hangups) => Some(hangups),
        Err(error) => {
            warn!(%error, "SIGHUP cannot reload the certificate; file changes still do");
            None
        }
    };
    loop {
        let hangup = async {
            match hangups.as_mut() {
                Some(hangups) => hangups.next().await.is_some(),
                None => futures_lite::future::pending().await,
            }
        };
        let tick = async {
            runtime
                .sleep_until(runtime.now() + Duration::from_secs(2))
                .await;
            false
        };
        let forced = futures_lite::future::or(hangup, tick).await;
        match certificates.reload(forced) {
            Ok(true) => info!("TLS certificate reloaded: new connections get it"),
            Ok(false) => {}
            Err(error) => warn!(%error, "TLS certificate not reloaded: the one in use stays"),
        }
    }
}

/// The engine that keeps the streams.
enum Engine {
    Memory(MemoryEngine),
    Store(Store),
    /// Connected once the runtime runs.
    Redis(RedisOptions),
}

/// Opens the store in the data directory (logging what it restored), or makes the memory
/// engine (logging what a restart loses).
fn open_engine(settings: &Settings) -> Result<Engine, String> {
    let limits = settings.storage_limits;
    match &settings.storage {
        Storage::Memory => {
            warn!(
                "--memory: the streams are kept in memory only: a restart loses every outbox and history"
            );
            // A new seed per process: stream epochs differ across restarts, so a client
            // resuming with a cursor of the previous process is told `recovered: false`.
            let seed = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |t| t.as_nanos() as u64)
                ^ u64::from(std::process::id());
            let limits = MemoryLimits {
                max_bytes: usize::try_from(limits.max_bytes).unwrap_or(usize::MAX),
                max_outboxes: limits.max_offline_outboxes,
            };
            Ok(Engine::Memory(MemoryEngine::new(limits, seed)))
        }
        Storage::Dir(dir) => {
            let options = StoreOptions {
                limits: StoreLimits {
                    max_bytes: limits.max_bytes,
                    max_outboxes: limits.max_offline_outboxes,
                },
                ..StoreOptions::default()
            };
            let (store, restored) =
                Store::open(dir, options).map_err(|error| format!("storage: {error}"))?;
            info!(
                dir = %dir.display(),
                streams = restored.streams,
                messages = restored.messages,
                bytes = restored.bytes,
                took_ms = restored.took.as_secs_f64() * 1000.0,
                "restored the stored streams"
            );
            Ok(Engine::Store(store))
        }
        Storage::Redis(url) => {
            let mut options = RedisOptions::new(url);
            options.queue = settings.hub.max_pending;
            options.plan.presence_ttl = settings.redis_presence_ttl;
            Ok(Engine::Redis(options))
        }
    }
}

/// Runs the server on `runtime`, whose `serve` accepts on its listener (bound to `addr`) until
/// a signal triggers the shutdown, then drains.
async fn run<R, F>(
    settings: Settings,
    engine: Engine,
    runtime: R,
    addr: SocketAddr,
    mut signals: Signals,
    serve: impl FnOnce(Roomcast<R>, Arc<App<R>>) -> F,
) -> std::io::Result<()>
where
    R: Runtime,
    F: Future<Output = std::io::Result<()>>,
{
    // What may wait for a session in the hub's hands: the same budget as its own queue.
    let mailbox = Budget {
        bytes: settings.session.queue_bytes,
        frames: settings.session.queue_frames,
    };
    let hub = Hub::new(settings.hub.clone());
    // The store's commit thread runs until this function returns: then what it has queued is
    // committed before the process exits.
    let (hub, _store, engine_link, registry) = match engine {
        Engine::Memory(engine) => (spawn_hub(&runtime, hub, engine, mailbox), None, None, None),
        Engine::Store(store) => {
            let hub = spawn_hub(&runtime, hub, store.link(), mailbox);
            let events = hub.clone();
            let running = store.start(move |batch| {
                let _ = events.engine_events(batch);
            });
            (hub, Some(running), None, None)
        }
        Engine::Redis(options) => {
            let (link, driver) = roomcast_redis::driver::connect(options)
                .await
                .map_err(|error| std::io::Error::other(error.to_string()))?;
            let link_state = link.link_state();
            let registry = link.registry();
            let hub = spawn_hub(&runtime, hub, link, mailbox);
            let events = hub.clone();
            driver.start(&runtime, move |batch| {
                let _ = events.engine_events(batch);
            });
            (hub, None, Some(link_state), Some(registry))
        }
    };
    let metrics = Metrics::new();
    let verifier = trust::verifier(&settings).map_err(std::io::Error::other)?;
    let authenticate = match &verifier {
        Some(verifier) => trust::authenticate(Arc::clone(verifier)),
        None => {
            warn!(
                "development mode: no JWT key, so ?user=NAME names the user unchecked; set --jwt-secret (or --jwt-public-key, --jwt-jwks) for production"
            );
            Arc::new(user_from_query)
        }
    };
    let verifier_none = verifier.is_none();
    let hooks = AppHooks::start(&settings.hooks, Arc::clone(&settings.hub.namespaces))
        .map_err(std::io::Error::other)?;
    let credentials = verifier.map(|verifier| CredentialsRef(verifier as Arc<dyn Credentials>));
    if settings.api_key.is_none() {
        warn!("the HTTP API (/api/...) is open: set --api-key to guard it");
    }
    let options = Options {
        session: SessionOptions {
            config: settings.session.clone(),
            observe: Observe(metrics.clone()),
            timer_slack: settings.timer_slack,
            credentials,
            hooks: hooks
                .clone()
                .map(|hooks| HooksRef(hooks as Arc<dyn roomcast_io::Hooks>)),
            ..SessionOptions::default()
        },
        authenticate,
        allowed_origins: settings.allowed_origins.clone(),
        // With keys, the echo socket asks for a token as /ws does.
        echo_open: verifier_none,
        on_connect: hooks.as_ref().and_then(AppHooks::on_connect),
        max_sessions_per_ip: settings.max_connections_per_ip,
        new_sessions: settings.new_sessions,
        trusted_proxies: settings.trusted_proxies.clone(),
        h2c: settings.h2c,
        ..Options::default()
    };
    let roomcast = Roomcast::new(runtime.clone(), hub, options);
    let shutdown = roomcast.shutdown().clone();
    let app = Arc::new(App {
        roomcast: roomcast.clone(),
        metrics,
        api_key: settings.api_key.clone(),
        metrics_key: settings.metrics_key.clone(),
        allowed_origins: settings.allowed_origins.clone(),
        body_timeout: settings.session.handshake_timeout,
        max_body: settings.session.max_frame,
        engine_link,
        nodes: registry.map(|registry| Nodes {
            name: settings.node_name.clone(),
            number: settings.hub.node,
            registry,
        }),
    });
    runtime.spawn(Arc::clone(&app).report_figures(runtime.clone()));
    // With TLS: HTTP/2 for clients that negotiate it, HTTP/1.1 for the others.
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    info!(
        %addr,
        "roomcast serving: demo page {scheme}://{addr}/, WebSocket /ws, SSE /events, long-poll /poll, echo /ws/echo, API /api/, /metrics, /healthz"
    );
    // The grace and a second more: a client that comes back after the hint finds the next
    // server, not this one's refused connections (one that comes sooner gets a 503 with
    // Retry-After: the drain still answers). Each session adds up to half of it again (the
    // driver's jitter).
    let hint = settings.session.shutdown_grace + Duration::from_secs(1);
    // The next server admits this many new sessions a second: the clients' return is spread
    // over sessions / rate after the hint, not bunched into one instant.
    let admitted_per_second = settings.new_sessions.per_second;
    let reconnect_ms = u64::try_from(hint.as_millis()).unwrap_or(u64::MAX);
    let grace = settings.session.shutdown_grace + settings.session.close_timeout;
    let draining = shutdown.clone();
    runtime.spawn(async move {
        if let Some(Ok(signal)) = signals.next().await {
            info!(
                ?signal,
                "draining: clients are told to reconnect, then closed"
            );
            shutdown.trigger_spread(reconnect_ms, admitted_per_second);
        }
        // A second signal ends the process at once.
        if let Some(Ok(signal)) = signals.next().await {
            warn!(
                ?signal,
                "second signal: exiting without waiting for the drain"
            );
            std::process::exit(1);
        }
    });
    // Serving goes on through the drain (new requests answered 503), until every session has
    // closed or the grace is over.
    let past_grace = async {
        draining.triggered().await;
        runtime
            .sleep_until(runtime.now() + grace + Duration::from_secs(1))
            .await;
        Ok(())
    };
    futures_lite::future::or(serve(roomcast.clone(), app), past_grace).await?;
    let drained = roomcast.shutdown().sessions() == 0;
    if drained {
        info!("drained: every session closed");
    } else {
        warn!(
            sessions = roomcast.shutdown().sessions(),
            "exiting with sessions still open past the grace period"
        );
    }
    Ok(())
}
