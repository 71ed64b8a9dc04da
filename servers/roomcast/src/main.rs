//! `roomcast`: the roomcast server and its tools.
//!
//! Today it carries the SSE conformance commands (`roomcast sse decode|encode`), the entry points
//! other implementations test against; `serve` and the rest arrive with the server.

mod sse_cli;

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
    /// Server-Sent Events tools: decode and encode `text/event-stream` bytes exactly as the
    /// WHATWG HTML standard specifies, for conformance testing and debugging.
    Sse {
        #[command(subcommand)]
        command: sse_cli::SseCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sse { command } => sse_cli::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("roomcast: {error}");
            ExitCode::FAILURE
        }
    }
}
