//! The `wasmhooks` command: a thin shell over the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: delivery allocates many
/// short-lived buffers across threads, where glibc's spends a tenth of the
/// server's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = wasmhooks::cli::Cli::parse();
    match cli.run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
