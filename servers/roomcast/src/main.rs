//! `roomcast`: the roomcast server and its tools.
//!
//! `serve` runs the roomcast endpoints (WebSocket, SSE, long-poll, a plain echo) on the embedded
//! in-memory hub; `sse decode|encode` the SSE conformance tools. The HTTP API and
//! the demo page arrive with the server work.

mod serve;
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
    /// Serve roomcast on the embedded in-memory hub: the protocol over WebSocket (/ws), SSE
    /// streams (/events?rooms=a,b), long-poll (/poll?cursor=) and a plain echo (/ws/echo).
    ///
    /// Development mode: there is no authentication yet, `?user=NAME` on the URL names the user;
    /// `?cursor=` (WebSocket, long-poll) and `Last-Event-ID` (SSE) resume.
    Serve(serve::ServeArgs),
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
        Command::Serve(args) => serve::serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("roomcast: {error}");
            ExitCode::FAILURE
        }
    }
}
