//! `wasmhooks plugin run` and `wasmhooks plugin new`.

use std::io::Read;
use std::path::{Path, PathBuf};
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
    /// Create a new plugin crate, ready for `cargo build --release --target wasm32-wasip2`.
    New(NewArgs),
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

#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// Name of the plugin crate, e.g. `add-tenant`.
    name: String,
    /// Directory to create the crate in (default: `./<name>`).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Path to the wasmhooks-sdk crate, for a dependency by path (default:
    /// the SDK this binary was built from, when it is still there, otherwise
    /// the published crate).
    #[arg(long)]
    sdk_path: Option<PathBuf>,
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
                let dir = scaffold(&args)?;
                println!("created {}", dir.display());
                println!(
                    "build it: cd {} && cargo build --release --target wasm32-wasip2",
                    dir.display()
                );
                println!(
                    "run it:   wasmhooks plugin run target/wasm32-wasip2/release/{}.wasm --event event.json --config tenant=acme",
                    args.name.replace('-', "_")
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

/// Write a new plugin crate and return its directory.
fn scaffold(args: &NewArgs) -> anyhow::Result<PathBuf> {
    let name = &args.name;
    let valid = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!("`{name}` is not a valid crate name: use lower-case letters, digits, `-` and `_`, starting with a letter");
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("`{}` already exists and is not empty", dir.display());
    }
    let sdk = sdk_dependency(args.sdk_path.as_deref())?;
    std::fs::create_dir_all(dir.join("src"))?;
    let files = [
        (
            "Cargo.toml",
            template::CARGO_TOML
                .replace("{name}", name)
                .replace("{sdk}", &sdk),
        ),
        ("src/lib.rs", template::LIB_RS.replace("{name}", name)),
        ("event.json", template::EVENT_JSON.to_string()),
        (
            "README.md",
            template::README
                .replace("{name}", name)
                .replace("{wasm}", &name.replace('-', "_")),
        ),
        (".gitignore", "/target\n".to_string()),
    ];
    for (path, text) in files {
        std::fs::write(dir.join(path), text).with_context(|| format!("writing {path}"))?;
    }
    Ok(dir)
}

/// The `wasmhooks-sdk = ...` dependency line for a new plugin.
fn sdk_dependency(explicit: Option<&Path>) -> anyhow::Result<String> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => built_from.join("Cargo.toml").exists().then_some(built_from),
    };
    Ok(match path {
        Some(p) => {
            let p = p
                .canonicalize()
                .with_context(|| format!("SDK path `{}`", p.display()))?;
            format!("{{ path = {:?} }}", p.display().to_string())
        }
        None => format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    })
}

/// The files of a new plugin crate.
mod template {
    pub(super) const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
wasmhooks-sdk = {sdk}

[profile.release]
opt-level = "s"
lto = true
strip = true

# A plugin is a crate of its own, not part of any enclosing workspace.
[workspace]
"#;

    pub(super) const LIB_RS: &str = r#"//! {name}: a wasmhooks plugin.
//!
//! Adds `tenant` (from the hook's config) and `handledBy` to every payload.
//! In a synchronous trigger it allows the flow, merging the same fields in.

use wasmhooks_sdk::{config, export_hook, json, log, Error, Event, Hook, Outcome};

struct Plugin;

impl Hook for Plugin {
    fn handle(mut event: Event) -> Result<Outcome, Error> {
        let tenant = config::get("tenant").unwrap_or_else(|| "default".into());
        log::info(&format!("{} for tenant {tenant}", event.name));
        if event.is_sync() {
            return Ok(Outcome::allow_merge(json!({ "tenant": tenant })));
        }
        event.payload["tenant"] = tenant.into();
        event.payload["handledBy"] = "{name}".into();
        Ok(Outcome::payload(event.payload))
    }
}

export_hook!(Plugin);
"#;

    pub(super) const EVENT_JSON: &str = r#"{
  "event": "PostSignIn",
  "payload": {
    "event": "PostSignIn",
    "interactionEvent": "SignIn",
    "sessionId": "sess_123",
    "userId": "u_123",
    "user": { "id": "u_123", "primaryEmail": "ada@example.com" },
    "userIp": "203.0.113.7",
    "userAgent": "Mozilla/5.0"
  }
}
"#;

    pub(super) const README: &str = r#"# {name}

A wasmhooks plugin.

    cargo build --release --target wasm32-wasip2
    wasmhooks plugin run target/wasm32-wasip2/release/{wasm}.wasm --event event.json --config tenant=acme

(`rustup target add wasm32-wasip2` once, if the target is missing.)
"#;
}
