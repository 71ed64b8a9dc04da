//! `roomcast`: the roomcast server and its tools.
//!
//! `serve` runs the roomcast protocol over WebSocket on the embedded in-memory hub; `echo` a plain
//! echo socket; `sse decode|encode` the SSE conformance tools. The HTTP endpoints (SSE streams,
//! long-poll, the HTTP API, the demo page) arrive with the server work.

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
    /// Serve the roomcast protocol over WebSocket on the embedded in-memory hub.
    ///
    /// Development mode: there is no authentication yet, `?user=NAME` on the connection URL names
    /// the user, and `?cursor=` resumes from a previous connection's cursor.
    Serve(serve::ServeArgs),
    /// Serve a plain WebSocket echo socket: every text and binary message comes back unchanged
    /// (for conformance suites such as Autobahn, and for trying clients out).
    Echo(serve::EchoArgs),
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
        Command::Echo(args) => serve::echo(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("roomcast: {error}");
            ExitCode::FAILURE
        }
    }
}
