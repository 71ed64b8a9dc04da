//! `roomcast serve`.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use roomcast_core::hub::{Hub, HubConfig};
use roomcast_hyper::{Options, Roomcast};
use roomcast_io::spawn_hub;
use roomcast_smol::SmolRuntime;

use crate::sse_cli::CliError;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ROOMCAST_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

pub(crate) fn serve(args: ServeArgs) -> Result<(), CliError> {
    // A new seed per process: stream epochs differ across restarts, so a client resuming with a
    // cursor of the previous process is told `recovered: false`, never given wrong messages.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos() as u64)
        ^ u64::from(std::process::id());
    smol::block_on(async {
        let hub = spawn_hub(&SmolRuntime, Hub::new(HubConfig::default(), seed), 4096, 64);
        let roomcast = Roomcast::new(SmolRuntime, hub, Options::default());
        let listener = smol::net::TcpListener::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        eprintln!(
            "roomcast: serving on http://{addr}: WebSocket /ws, SSE /events, long-poll /poll, \
             echo /ws/echo (development mode: ?user=NAME names the user)"
        );
        roomcast_smol::serve(listener, roomcast).await
    })
    .map_err(CliError::Io)
}
