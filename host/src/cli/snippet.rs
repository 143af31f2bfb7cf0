//! `wasmhooks snippet run`: try a JavaScript snippet on an event with the
//! built-in engine, exactly as a hook step runs it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::plugin::{call_once, CallArgs, Component};
use crate::hook::SNIPPET_KEY;

/// `wasmhooks snippet ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SnippetCommand {
    /// Run a snippet once on an event and print the outcome as JSON.
    Run(SnippetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SnippetArgs {
    /// The snippet (`.js`): `export default function (event, ctx) { ... }`.
    file: PathBuf,
    #[command(flatten)]
    call: CallArgs,
}

impl SnippetCommand {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        let SnippetCommand::Run(args) = self;
        let source = std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading `{}`", args.file.display()))?;
        call_once(
            Component::JsEngine,
            args.call,
            vec![(SNIPPET_KEY.to_string(), source)],
        )
        .await
    }
}
