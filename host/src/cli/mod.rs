//! The `wasmhooks` command line: argument parsing and the commands, each a
//! thin layer over the library.

mod plugin;
mod scaffold;
mod serve;
mod snippet;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// wasmhooks: run sandboxed WebAssembly hooks for auth platform events.
#[derive(Debug, Parser)]
#[command(name = "wasmhooks", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: HTTP API, delivery workers, sync triggers.
    Serve(serve::ServeArgs),
    /// Write, try and inspect plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Try JavaScript snippets.
    #[command(subcommand)]
    Snippet(snippet::SnippetCommand),
}

impl Cli {
    /// Run the parsed command; the exit code says whether it succeeded.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => args.run().await,
            Command::Plugin(command) => {
                init_logging(false, "warn");
                command.run().await
            }
            Command::Snippet(command) => {
                init_logging(false, "warn");
                command.run().await
            }
        }
    }
}

/// Log to stderr, as text or JSON lines, at the level `RUST_LOG` asks, or
/// `default` without it.
pub(crate) fn init_logging(json: bool, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
