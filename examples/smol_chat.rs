//! A chat server on smol with an authentication hook of its own.
//!
//! roomcast's protocol is already a chat: clients `join` rooms, `publish` to them, see who is
//! present and who is typing, and send `direct` messages. What a chat server adds is who its
//! users are. Here that is a fixed table of bearer tokens (`--token TOKEN=USER`, repeatable;
//! by default `alice-token` and `bob-token`), checked by an [`Authenticate`] hook before any
//! WebSocket upgrade or stream starts: no token, or an unknown one, is refused with
//! [`Refusal::unauthorized`] (401, and a JSON error). A real server checks a signed token instead
//! (the `roomcast` server checks a JWT); the hook's shape is the same.
//!
//! ```sh
//! cargo run -p roomcast-examples --bin smol-chat -- --listen 127.0.0.1:8092
//! python3 -m websockets 'ws://127.0.0.1:8092/ws?token=alice-token'
//! > {"type":"join","ref":1,"room":"lobby"}
//! > {"type":"publish","ref":2,"room":"lobby","data":{"text":"hi"}}
//! curl -N 'http://127.0.0.1:8092/events?rooms=lobby' -H 'Authorization: Bearer bob-token'
//! curl -i 'http://127.0.0.1:8092/events?token=wrong'                  # 401
//! ```
//!
//! It runs on smol's global executor through `roomcast_smol::serve`, which serves `/ws`,
//! `/events` and `/poll` on one port.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use roomcast_core::access::Identity;
use roomcast_core::engine::{MemoryEngine, MemoryLimits};
use roomcast_core::hub::{Hub, HubConfig};
use roomcast_core::names::UserId;
use roomcast_hyper::{Authenticate, Handshake, Options, Refusal, Roomcast};
use roomcast_io::{Budget, spawn_hub};
use roomcast_smol::{SmolRuntime, serve};

fn main() -> io::Result<()> {
    let users = tokens()?;
    // Runs before any upgrade or stream: a user, or a refusal.
    let authenticate: Authenticate = Arc::new(move |handshake: &Handshake<'_>| {
        let token = handshake
            .token() // `?token=` (browsers), or `Authorization: Bearer`
            .ok_or_else(|| Refusal::unauthorized("no token: connect with ?token=TOKEN"))?;
        users
            .get(&token)
            .cloned()
            .map(Identity::user) // no room grants, no expiry
            .ok_or_else(|| Refusal::unauthorized("unknown token"))
    });
    let options = Options {
        authenticate,
        ..Options::default()
    };

    smol::block_on(async {
        let hub = spawn_hub(
            &SmolRuntime,
            Hub::new(HubConfig::default()),
            MemoryEngine::new(MemoryLimits::default(), seed()),
            Budget::default(),
        );
        let roomcast = Roomcast::new(SmolRuntime, hub, options);
        let listener = smol::net::TcpListener::bind(listen_arg("127.0.0.1:8092")).await?;
        let addr = listener.local_addr()?;
        // The tests read this line to learn the port.
        println!("listening on http://{addr} (chat at ws://{addr}/ws?token=alice-token)");
        io::stdout().flush()?;
        serve(listener, roomcast).await
    })
}

/// The token table: the defaults, then every `--token TOKEN=USER`.
fn tokens() -> io::Result<BTreeMap<String, UserId>> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    let mut pairs = vec![
        ("alice-token".to_owned(), "alice".to_owned()),
        ("bob-token".to_owned(), "bob".to_owned()),
    ];
    let mut args = std::env::args();
    while let Some(arg) = args.next() {
        if arg == "--token" {
            let pair = args.next().unwrap_or_default();
            let (token, user) = pair
                .split_once('=')
                .ok_or_else(|| invalid(format!("--token {pair:?}: give TOKEN=USER")))?;
            pairs.push((token.to_owned(), user.to_owned()));
        }
    }
    pairs
        .into_iter()
        .map(|(token, user)| {
            let user = UserId::new(&user).map_err(|e| invalid(format!("user {user:?}: {e}")))?;
            Ok((token, user))
        })
        .collect()
}

/// `--listen ADDR`, or `default`.
fn listen_arg(default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == "--listen")
        .and_then(|at| args.get(at + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// A new seed per process: stream epochs differ across restarts, so a cursor of an earlier run
/// is answered `recovered: false`, never with another run's messages.
fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos() as u64)
}
