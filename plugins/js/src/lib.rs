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
//! [Boa]: https://boajs.dev

use boa_engine::builtins::promise::PromiseState;
use boa_engine::{js_string, Context, JsResult, JsValue, Module, NativeFunction, Source};
use wasmhooks_sdk::{config, export_hook, log, secrets, Error, Event, Hook, Outcome, Value};

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
    deny: Option<Denial>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
struct Denial {
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
    match level.as_str() {
        "debug" => log::debug(&message),
        "warn" => log::warn(&message),
        "error" => log::error(&message),
        _ => log::info(&message),
    }
    Ok(JsValue::undefined())
}

/// A context with the prelude loaded.
fn new_context() -> Result<Context, Error> {
    let mut context = Context::default();
    context
        .register_global_callable(js_string!("__log"), 2, NativeFunction::from_fn_ptr(console))
        .map_err(|e| Error::new(format!("engine setup: {e}")))?;
    context
        .register_global_callable(
            js_string!("__secret"),
            1,
            NativeFunction::from_fn_ptr(secret),
        )
        .map_err(|e| Error::new(format!("engine setup: {e}")))?;
    context
        .eval(Source::from_bytes(PRELUDE))
        .map_err(|e| Error::new(format!("engine setup: {e}")))?;
    Ok(context)
}

/// The name a snippet's positions are reported under.
const SNIPPET_PATH: &str = "snippet.js";

/// Parse the snippet as a module; the error names the position.
fn parse(source: &str, context: &mut Context) -> Result<Module, Error> {
    let source = Source::from_bytes(source).with_path(std::path::Path::new(SNIPPET_PATH));
    Module::parse(source, None, context)
        .map_err(|e| Error::new(format!("snippet does not parse: {e}")))
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
    Error::new(message)
}

/// Run the snippet's default export on `event`.
fn run(source: &str, event: &Event) -> Result<Outcome, Error> {
    let mut context = new_context()?;
    let module = parse(source, &mut context)?;
    let evaluated = module.load_link_evaluate(&mut context);
    let _ = context.run_jobs();
    if let PromiseState::Rejected(reason) = evaluated.state() {
        return Err(thrown(reason.display()));
    }
    let handler = module
        .namespace(&mut context)
        .get(js_string!("default"), &mut context)
        .map_err(|e| Error::new(e.to_string()))?;
    if !handler.is_callable() {
        return Err(Error::new(
            "a snippet must `export default function (event, ctx) { ... }`",
        ));
    }
    let event_json = wasmhooks_sdk::serde_json::json!({
        "id": event.id, "name": event.name, "createdAt": event.created_at,
        "payload": event.payload, "hookId": event.hook_id, "trigger": event.trigger,
    })
    .to_string();
    let user_config = config_json();
    let run = context
        .global_object()
        .get(js_string!("__run"), &mut context)
        .map_err(|e| Error::new(e.to_string()))?;
    let args = [
        handler,
        JsValue::from(js_string!(event_json.as_str())),
        JsValue::from(js_string!(user_config.as_str())),
    ];
    let answer = run
        .as_callable()
        .expect("the prelude defines __run")
        .call(&JsValue::undefined(), &args, &mut context)
        .map_err(thrown)?;
    let _ = context.run_jobs();
    let text = answer
        .to_string(&mut context)
        .map_err(|e| Error::new(e.to_string()))?
        .to_std_string_escaped();
    let reported: Reported = wasmhooks_sdk::serde_json::from_str(&text)
        .map_err(|e| Error::new(format!("snippet result: {e}")))?;
    Ok(outcome(reported, event.is_sync()))
}

/// The config, without the engine's own keys, as JSON text.
fn config_json() -> String {
    let config: wasmhooks_sdk::serde_json::Map<String, Value> = config::all()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("wasmhooks."))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Value::Object(config).to_string()
}

/// The plugin outcome for what the snippet reported.
fn outcome(reported: Reported, sync: bool) -> Outcome {
    if let Some(denial) = reported.deny.filter(|_| sync) {
        return Outcome::deny(denial.code, denial.message);
    }
    if let Some(reason) = reported.cancel {
        return Outcome::cancel(reason);
    }
    let mut outcome = match reported.payload {
        Some(payload) => Outcome::payload(payload),
        None => Outcome::unchanged(),
    };
    for (name, value) in reported.headers {
        outcome = outcome.with_header(name, value);
    }
    outcome
}

struct Js;

impl Hook for Js {
    fn handle(event: Event) -> Result<Outcome, Error> {
        let source = config::require(SNIPPET_KEY)?;
        if config::get(CHECK_KEY).is_some() {
            parse(&source, &mut new_context()?)?;
            return Ok(Outcome::unchanged());
        }
        run(&source, &event)
    }
}

export_hook!(Js);
