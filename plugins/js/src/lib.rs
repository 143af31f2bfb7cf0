//! `js`: the built-in JavaScript snippet engine, [Boa] inside an ordinary
//! wasmhooks plugin. A snippet is data, not a module to compile: its source
//! arrives in the step's config under `wasmhooks.snippet`, and the rest of
//! the config and the secrets become `ctx.config` and `ctx.secrets`.
//!
//! A snippet is an ES module whose default export is called with the event
//! and a context:
//!
//! ```js
//! export default function (event, ctx) {
//!   if (event.payload.user?.primaryEmail?.endsWith("@test.example")) return ctx.cancel("test user");
//!   event.payload.tenant = ctx.config.tenant;
//!   ctx.setHeader("x-tenant", ctx.config.tenant);
//!   return event;
//! }
//! ```
//!
//! Returning the event (changed or not) continues with its payload;
//! returning nothing leaves the payload as it was. `ctx.cancel(reason)`
//! drops a delivery; in a synchronous trigger `ctx.deny(code, message)`
//! refuses the flow and a changed payload becomes the patch.
//! `console.log` (and `info`, `warn`, `error`, `debug`) go to the call's log.
//!
//! With `wasmhooks.check` set, the snippet is only parsed: a syntax error
//! comes back with its line and column, and nothing runs.
//!
//! The component targets the `preinit-hook` world: the host calls
//! `wizer-initialize` once, which builds the interpreter and its prelude,
//! and snapshots that state, so a call starts with the interpreter ready.
//! Each call is still a fresh instance of the snapshot.
//!
//! [Boa]: https://boajs.dev

use std::cell::RefCell;

use boa_engine::builtins::promise::PromiseState;
use boa_engine::{js_string, Context, JsResult, JsValue, Module, NativeFunction, Source};
use serde_json::Value;

#[allow(missing_docs, clippy::all, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../plugin-sdk/wit",
        world: "wasmhooks:hook/preinit-hook",
        generate_all,
    });
}

use bindings::wasmhooks::hook::log::Level as LogLevel;
use bindings::wasmhooks::hook::types::{Denial, Event, Header, Outcome, Proceed};
use bindings::wasmhooks::hook::{config, log, secrets};

/// An error message for the host.
type Error = String;

/// The config key holding the snippet's source.
pub const SNIPPET_KEY: &str = "wasmhooks.snippet";
/// The config key asking for a parse-only check.
pub const CHECK_KEY: &str = "wasmhooks.check";

/// Glue between the snippet and the plugin: the `console` object, and the
/// `ctx` a snippet gets, whose calls record the outcome.
const PRELUDE: &str = r#"
const __fmt = (v) => typeof v === "string" ? v : (() => { try { return JSON.stringify(v); } catch { return String(v); } })();
globalThis.console = Object.fromEntries(["debug", "info", "log", "warn", "error"].map((level) =>
  [level, (...args) => __log(level === "log" ? "info" : level, args.map(__fmt).join(" "))]));
const __secrets = new Proxy({}, {
  get: (_, key) => typeof key === "string" ? __secret(key) : undefined,
  has: (_, key) => typeof key === "string" && __secret(key) !== undefined,
});
globalThis.__run = (handler, eventJson, configJson) => {
  const event = JSON.parse(eventJson);
  const outcome = { headers: {} };
  const ctx = Object.freeze({
    config: Object.freeze(JSON.parse(configJson)),
    secrets: __secrets,
    trigger: event.trigger ?? null,
    cancel(reason) { outcome.cancel = String(reason ?? "cancelled by snippet"); return undefined; },
    deny(code, message) { outcome.deny = { code: String(code), message: String(message ?? code) }; return undefined; },
    setHeader(name, value) { outcome.headers[String(name)] = String(value); },
  });
  const result = handler(event, ctx);
  if (result !== undefined && result !== null) {
    if (typeof result !== "object") throw new TypeError("a snippet returns the event (an object) or nothing");
    outcome.payload = "payload" in result ? result.payload : result;
  }
  return JSON.stringify(outcome);
};
"#;

/// What the prelude reports back.
#[derive(serde::Deserialize)]
struct Reported {
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    cancel: Option<String>,
    #[serde(default)]
    deny: Option<Denied>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
struct Denied {
    code: String,
    message: String,
}

fn secret(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let name = args
        .first()
        .cloned()
        .unwrap_or_default()
        .to_string(context)?
        .to_std_string_escaped();
    Ok(match secrets::get(&name) {
        Some(value) => JsValue::from(js_string!(value.as_str())),
        None => JsValue::undefined(),
    })
}

fn console(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let text = |i: usize, context: &mut Context| -> JsResult<String> {
        Ok(args
            .get(i)
            .cloned()
            .unwrap_or_default()
            .to_string(context)?
            .to_std_string_escaped())
    };
    let (level, message) = (text(0, context)?, text(1, context)?);
    let level = match level.as_str() {
        "debug" => LogLevel::Debug,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => LogLevel::Info,
    };
    log::write(level, &message);
    Ok(JsValue::undefined())
}

/// A context with the prelude loaded.
fn new_context() -> Result<Context, Error> {
    let mut context = Context::default();
    context
        .register_global_callable(js_string!("__log"), 2, NativeFunction::from_fn_ptr(console))
        .map_err(|e| format!("engine setup: {e}"))?;
    context
        .register_global_callable(
            js_string!("__secret"),
            1,
            NativeFunction::from_fn_ptr(secret),
        )
        .map_err(|e| format!("engine setup: {e}"))?;
    context
        .eval(Source::from_bytes(PRELUDE))
        .map_err(|e| format!("engine setup: {e}"))?;
    Ok(context)
}

thread_local! {
    /// The interpreter, built by `wizer-initialize` into the snapshot every
    /// call starts from (or on first use when not pre-initialised).
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Run `f` on the ready interpreter.
fn with_context<T>(f: impl FnOnce(&mut Context) -> Result<T, Error>) -> Result<T, Error> {
    CONTEXT.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(new_context()?);
        }
        f(slot.as_mut().expect("just set"))
    })
}

/// The name a snippet's positions are reported under.
const SNIPPET_PATH: &str = "snippet.js";

/// Parse the snippet as a module; the error names the position.
fn parse(source: &str, context: &mut Context) -> Result<Module, Error> {
    let source = Source::from_bytes(source).with_path(std::path::Path::new(SNIPPET_PATH));
    Module::parse(source, None, context).map_err(|e| format!("snippet does not parse: {e}"))
}

/// An exception as a person reads it: the message, then at most five
/// frames of the snippet's own code (`at f (snippet.js:3:12)`).
fn thrown(e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    let mut lines = text.lines();
    let mut message = format!("snippet threw {}", lines.next().unwrap_or_default());
    for frame in lines.filter(|l| l.contains(SNIPPET_PATH)).take(5) {
        message.push('\n');
        message.push_str(frame.trim());
    }
    message
}

/// Run the snippet's default export on `event`.
fn run(source: &str, event: &Event, context: &mut Context) -> Result<Outcome, Error> {
    let module = parse(source, context)?;
    let evaluated = module.load_link_evaluate(context);
    let _ = context.run_jobs();
    if let PromiseState::Rejected(reason) = evaluated.state() {
        return Err(thrown(reason.display()));
    }
    let handler = module
        .namespace(context)
        .get(js_string!("default"), context)
        .map_err(|e| e.to_string())?;
    if !handler.is_callable() {
        return Err("a snippet must `export default function (event, ctx) { ... }`".into());
    }
    let payload: Value =
        serde_json::from_str(&event.payload).map_err(|e| format!("event payload: {e}"))?;
    let event_json = serde_json::json!({
        "id": event.id, "name": event.name, "createdAt": event.created_at,
        "payload": payload, "hookId": event.hook_id, "trigger": event.trigger,
    })
    .to_string();
    let run = context
        .global_object()
        .get(js_string!("__run"), context)
        .map_err(|e| e.to_string())?;
    let args = [
        handler,
        JsValue::from(js_string!(event_json.as_str())),
        JsValue::from(js_string!(config_json().as_str())),
    ];
    let answer = run
        .as_callable()
        .expect("the prelude defines __run")
        .call(&JsValue::undefined(), &args, context)
        .map_err(thrown)?;
    let _ = context.run_jobs();
    let text = answer
        .to_string(context)
        .map_err(|e| e.to_string())?
        .to_std_string_escaped();
    let reported: Reported =
        serde_json::from_str(&text).map_err(|e| format!("snippet result: {e}"))?;
    Ok(outcome(reported, event.trigger.is_some()))
}

/// The config, without the engine's own keys, as JSON text.
fn config_json() -> String {
    let config: serde_json::Map<String, Value> = config::get_all()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("wasmhooks."))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Value::Object(config).to_string()
}

/// The plugin outcome for what the snippet reported.
fn outcome(reported: Reported, sync: bool) -> Outcome {
    if let Some(denial) = reported.deny.filter(|_| sync) {
        return Outcome::Deny(Denial {
            code: denial.code,
            message: denial.message,
        });
    }
    if let Some(reason) = reported.cancel {
        return Outcome::Cancel(reason);
    }
    Outcome::Continue(Proceed {
        payload: reported.payload.map(|p| p.to_string()),
        headers: reported
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
    })
}

struct Js;

impl bindings::exports::wasmhooks::hook::handler::Guest for Js {
    fn handle(event: Event) -> Result<Outcome, String> {
        let source = config::get(SNIPPET_KEY)
            .ok_or_else(|| format!("no snippet: config `{SNIPPET_KEY}` is missing"))?;
        with_context(|context| {
            if config::get(CHECK_KEY).is_some() {
                parse(&source, context)?;
                return Ok(Outcome::Continue(Proceed {
                    payload: None,
                    headers: Vec::new(),
                }));
            }
            run(&source, &event, context)
        })
    }
}

impl bindings::Guest for Js {
    fn wizer_initialize() {
        with_context(|_| Ok(())).expect("the interpreter starts");
    }
}

/// The component's exports (generated glue, hence the unsafe code). Only
/// a wasm build exports them: a native build of this crate (the workspace's
/// `cargo test`) cannot link symbols named like `wasmhooks:hook/...`.
#[cfg(target_family = "wasm")]
#[allow(unsafe_code)]
mod exports {
    use super::Js;
    crate::bindings::export!(Js with_types_in crate::bindings);
}
