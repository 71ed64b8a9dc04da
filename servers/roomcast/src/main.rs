//! `roomcast`: the roomcast server and its tools.
//!
//! `serve` runs everything on the embedded in-memory hub: the demo page, WebSocket, SSE,
//! long-poll, a plain echo, the HTTP API, status, metrics and health; `token` mints a JWT;
//! `sse decode|encode` are the SSE conformance tools. The load tool is a crate of its own,
//! `roomcast-bench` (tools/bench), which runs this binary as the server under test.

mod admin;
mod api;
mod app;
mod config;
mod guard;
mod hooks;
mod metrics;
mod reply;
mod routes;
mod serve;
mod sse_cli;
mod tls;
mod trust;

use std::fmt;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// roomcast: real-time messaging over WebSocket and Server-Sent Events.
#[derive(Parser)]
#[command(name = "roomcast", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve roomcast on one port, storing its streams in --data-dir (or in memory with
    /// --memory): the demo page (/), the
    /// protocol over WebSocket (/ws), SSE streams (/events?rooms=a,b), long-poll (/poll), a plain
    /// echo (/ws/echo), the HTTP API (POST /api/notify, /api/broadcast,
    /// /api/rooms/ROOM/publish), /api/status, /metrics (Prometheus) and /healthz.
    ///
    /// Every setting comes from a flag, else its environment variable, else the TOML file of
    /// --config, else its default. Without --jwt-secret the server runs in development mode:
    /// `?user=NAME` names the user unchecked. SIGINT or SIGTERM drains gracefully: clients are
    /// told to reconnect, closed after --shutdown-grace, and the process exits 0.
    Serve(Box<config::ServeArgs>),
    /// Mint a JSON Web Token (HS256) for trying a server that has a JWT secret:
    /// `roomcast token --user alice --secret S`, then connect with `?token=...`.
    Token(trust::mint::TokenArgs),
    /// Give the store's freed pages back to the filesystem after a large purge (redb reuses
    /// them anyway, so a store whose history turns over needs none): `roomcast compact
    /// --data-dir DIR`. Refused while a server runs on the directory.
    Compact(CompactArgs),
    /// Server-Sent Events tools: decode and encode `text/event-stream` bytes exactly as the
    /// WHATWG HTML standard specifies, for conformance testing and debugging.
    Sse {
        #[command(subcommand)]
        command: sse_cli::SseCommand,
    },
}

/// `roomcast compact`'s settings.
#[derive(clap::Args)]
struct CompactArgs {
    /// The data directory of the store to compact.
    #[arg(long, default_value = "roomcast-data")]
    data_dir: std::path::PathBuf,
}

/// Compacts the store, and says what it gained.
fn compact(args: CompactArgs) -> Result<(), String> {
    let dir = &args.data_dir;
    let done = roomcast_store::compact(dir).map_err(|error| format!("compact: {error}"))?;
    println!(
        "compacted {}: {} bytes, was {}",
        dir.join("roomcast.redb").display(),
        done.after,
        done.before
    );
    Ok(())
}

/// Why a command failed: printed after `roomcast: `, and the exit status is 1.
#[derive(Debug)]
enum CliError {
    /// `serve` could not start, or stopped on an error; already worded.
    Serve(String),
    /// `token` could not mint; already worded.
    Token(String),
    /// `compact` could not compact; already worded.
    Compact(String),
    /// `sse decode` or `sse encode` failed: its input, a limit, or standard IO.
    Sse(sse_cli::CliError),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serve(message) | Self::Token(message) | Self::Compact(message) => {
                f.write_str(message)
            }
            Self::Sse(error) => error.fmt(f),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sse { command } => sse_cli::run(command).map_err(CliError::Sse),
        Command::Serve(args) => serve::serve(*args).map_err(CliError::Serve),
        Command::Token(args) => trust::mint::token(args).map_err(CliError::Token),
        Command::Compact(args) => compact(args).map_err(CliError::Compact),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("roomcast: {error}");
            ExitCode::FAILURE
        }
    }
}
