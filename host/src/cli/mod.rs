//! The `wasmhooks` command line: argument parsing and the commands, each a
//! thin layer over the library.

mod plugin;

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
    /// Write, try and inspect plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

impl Cli {
    /// Run the parsed command; the exit code says whether it succeeded.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Plugin(command) => command.run().await,
        }
    }
}
