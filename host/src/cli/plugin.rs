//! `wasmhooks plugin run` and `wasmhooks plugin new`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::runtime::{
    CallReport, Grants, HostPattern, Limits, LogLine, Origin, Outcome, PluginError, PluginEvent,
    Runtime, RuntimeConfig,
};

/// `wasmhooks plugin ...`
#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Run a plugin once on an event and print the outcome as JSON.
    Run(RunArgs),
    /// Create a new plugin project in Rust, JavaScript or Python, with its
    /// build command, a sample event and a README.
    New(super::scaffold::NewArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The plugin component (`.wasm`).
    plugin: PathBuf,
    #[command(flatten)]
    call: CallArgs,
}

/// How to call a plugin or snippet once: the event, its grants and limits.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The event as JSON, from a file or `-` for stdin: either
    /// `{"event": "PostSignIn", "payload": {...}}` or a Logto webhook body
    /// (whose `event` field names the event).
    #[arg(long)]
    event: String,
    /// A config value, `key=value`; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
    config: Vec<(String, String)>,
    /// A secret, `key=value`; repeatable.
    #[arg(long = "secret", value_name = "KEY=VALUE", value_parser = key_value)]
    secrets: Vec<(String, String)>,
    /// A host the call may reach over HTTP (`api.example.com`,
    /// `*.example.com`, `host:port`, `*`); repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<HostPattern>,
    /// A private network the call may reach anyway, e.g. `127.0.0.1/32`; repeatable.
    #[arg(long = "allow-network", value_name = "CIDR")]
    allow_networks: Vec<ipnet::IpNet>,
    /// Name of the synchronous trigger to answer (implies --sync).
    #[arg(long)]
    trigger: Option<String>,
    /// Call as a synchronous hook (allow/deny); the trigger is named after
    /// the event unless --trigger says otherwise.
    #[arg(long)]
    sync: bool,
    /// Time limit for the call, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Memory limit for the call, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// Keep compiled plugins in this directory, so the next run skips compiling.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

impl PluginCommand {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            PluginCommand::Run(args) => run(args).await,
            PluginCommand::New(args) => {
                let project = super::scaffold::scaffold(&args)?;
                println!("created {}", project.dir.display());
                println!(
                    "build it: cd {} && {}",
                    project.dir.display(),
                    project.build
                );
                println!(
                    "run it:   wasmhooks plugin run {} --event event.json --config tenant=acme",
                    project.wasm
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// Read `--event`: a file path or `-` for stdin.
fn read_event(source: &str, trigger: Option<String>) -> anyhow::Result<PluginEvent> {
    let text = if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the event from stdin")?;
        text
    } else {
        std::fs::read_to_string(source)
            .with_context(|| format!("reading the event file `{source}`"))?
    };
    let doc: Value = serde_json::from_str(&text)
        .with_context(|| format!("the event in `{source}` is not JSON"))?;
    let Value::Object(mut map) = doc else {
        bail!("the event in `{source}` must be a JSON object");
    };
    let field = |map: &serde_json::Map<String, Value>, key: &str| {
        map.get(key).and_then(Value::as_str).map(String::from)
    };
    let name = field(&map, "event")
        .with_context(|| format!("the event in `{source}` has no string field `event`"))?;
    let id = field(&map, "id").unwrap_or_else(|| format!("evt_cli_{}", std::process::id()));
    let created_at = field(&map, "createdAt").unwrap_or_else(|| {
        humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
    });
    let hook_id = field(&map, "hookId").unwrap_or_else(|| "cli".into());
    // `{"event", "payload"}` wraps the payload; anything else is the payload.
    let payload = match map.remove("payload") {
        Some(payload) => payload,
        None => Value::Object(map),
    };
    Ok(PluginEvent {
        id,
        trigger,
        name,
        created_at,
        payload: RawValue::from_string(payload.to_string())?,
        hook_id,
    })
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.plugin)
        .with_context(|| format!("reading `{}`", args.plugin.display()))?;
    let what = args.plugin.display().to_string();
    call_once(Component::Bytes(&bytes, &what), args.call, Vec::new()).await
}

/// What `call_once` runs.
pub(crate) enum Component<'a> {
    /// A component's bytes, and what to call it in errors.
    Bytes(&'a [u8], &'a str),
    /// The built-in JavaScript engine.
    JsEngine,
}

/// Load `component`, call it once as `call` says with `extra_config`
/// added, print the report as JSON, and exit non-zero on failure: `plugin
/// run` and `snippet run`.
pub(crate) async fn call_once(
    component: Component<'_>,
    call: CallArgs,
    extra_config: Vec<(String, String)>,
) -> anyhow::Result<ExitCode> {
    let mut event = read_event(&call.event, None)?;
    if call.sync || call.trigger.is_some() {
        event.trigger = Some(call.trigger.clone().unwrap_or_else(|| event.name.clone()));
    }
    let runtime = Runtime::new(RuntimeConfig {
        limits: Limits {
            timeout: Duration::from_millis(call.timeout_ms),
            memory_bytes: call.memory_mib << 20,
            ..Limits::default()
        },
        cache_dir: call.cache_dir,
        max_instances: 4,
    })?;
    let plugin = match component {
        Component::Bytes(bytes, what) => runtime
            .load(bytes)
            .with_context(|| format!("loading `{what}`"))?,
        Component::JsEngine => crate::pipeline::load_js_engine(&runtime)
            .await
            .map_err(anyhow::Error::msg)?,
    };
    let grants = Arc::new(Grants {
        config: call.config.into_iter().chain(extra_config).collect(),
        secrets: call.secrets.into_iter().collect(),
        http: crate::runtime::HttpGrant {
            hosts: call.allow_hosts,
            private_networks: call.allow_networks,
        },
    });
    let report = plugin.call(&event, &grants).await;
    let printed = Printed::new(&report, plugin.origin());
    println!("{}", serde_json::to_string_pretty(&printed)?);
    Ok(match &report.result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    })
}

/// What `plugin run` prints: the outcome's fields, then logs and timing.
#[derive(Serialize)]
struct Printed<'a> {
    #[serde(flatten)]
    result: PrintedResult<'a>,
    logs: &'a [LogLine],
    logs_truncated: bool,
    duration_ms: f64,
    compiled: bool,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PrintedResult<'a> {
    Ok(&'a Outcome),
    Err {
        outcome: &'static str,
        kind: &'static str,
        message: String,
    },
}

impl<'a> Printed<'a> {
    fn new(report: &'a CallReport, origin: Origin) -> Self {
        let result = match &report.result {
            Ok(outcome) => PrintedResult::Ok(outcome),
            Err(e) => PrintedResult::Err {
                outcome: "error",
                kind: PluginError::kind(e),
                message: e.to_string(),
            },
        };
        Printed {
            result,
            logs: &report.logs.lines,
            logs_truncated: report.logs.truncated,
            duration_ms: report.duration.as_secs_f64() * 1000.0,
            compiled: origin == Origin::Compiled,
        }
    }
}
