//! `js`: the built-in JavaScript snippet engine, [QuickJS] (through
//! rquickjs) inside an ordinary wasmhooks plugin. A snippet is data, not a
//! module to compile: its source arrives in the step's config under
//! `wasmhooks.snippet`, and the rest of the config and the secrets become
//! `ctx.config` and `ctx.secrets`.
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
//! The export may be `async` and use `fetch`, which goes through the host's
//! outbound HTTP policy like any plugin's requests.
//!
//! With `wasmhooks.check` set, the snippet is only parsed: a syntax error
//! comes back with its line and column, and nothing runs.
//!
//! The component targets the `preinit-hook` world: the host calls
//! `wizer-initialize` once, which builds the interpreter and its prelude,
//! and snapshots that state, so a call starts with the interpreter ready.
//! Each call is still a fresh instance of the snapshot.
//!
//! [QuickJS]: https://github.com/quickjs-ng/quickjs

use std::cell::RefCell;

use rquickjs::{Coerced, Context, Ctx, Exception, Function, Module, Runtime, Value};
use serde_json::Value as Json;
use wasmhooks_sdk::http::Request;

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

/// Glue between the snippet and the plugin: `console`, `fetch`, and the
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
  const report = (result) => {
    if (result !== undefined && result !== null) {
      if (typeof result !== "object") throw new TypeError("a snippet returns the event (an object) or nothing");
      outcome.payload = "payload" in result ? result.payload : result;
    }
    return JSON.stringify(outcome);
  };
  const result = handler(event, ctx);
  return result instanceof Promise ? result.then(report) : report(result);
};
const __headers = (pairs) => {
  const map = new Map(pairs.map(([name, value]) => [name.toLowerCase(), value]));
  return {
    get: (name) => map.get(String(name).toLowerCase()) ?? null,
    has: (name) => map.has(String(name).toLowerCase()),
    entries: () => map.entries(),
    [Symbol.iterator]: () => map.entries(),
  };
};
globalThis.fetch = async (url, init = {}) => {
  const headers = Object.entries(init.headers ?? {}).map(([name, value]) => [String(name), String(value)]);
  const body = init.body === undefined || init.body === null ? "" : String(init.body);
  const answer = JSON.parse(__fetch(String(init.method ?? "GET"), String(url), JSON.stringify(headers), body));
  return {
    status: answer.status,
    ok: answer.status >= 200 && answer.status < 300,
    url: String(url),
    headers: __headers(answer.headers),
    text: async () => answer.body,
    json: async () => JSON.parse(answer.body),
  };
};
"#;

/// What the prelude reports back.
#[derive(serde::Deserialize)]
struct Reported {
    /// Kept as the text the snippet wrote, handed on without a re-parse.
    #[serde(default)]
    payload: Option<Box<serde_json::value::RawValue>>,
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

/// The interpreter: a QuickJS runtime and one context with the prelude
/// loaded.
struct Engine {
    /// Owns the heap; kept alive beside the context that uses it.
    _runtime: Runtime,
    context: Context,
}

/// Write a `console` line to the call's log.
fn console(level: String, message: String) {
    let level = match level.as_str() {
        "debug" => LogLevel::Debug,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => LogLevel::Info,
    };
    log::write(level, &message);
}

/// What `__fetch` hands back to the prelude's `fetch`.
#[derive(serde::Serialize)]
struct Fetched {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// `__fetch(method, url, headers, body)`: one request through the host's
/// outbound policy (granted hosts only, bounded by the call's deadline),
/// answered as JSON text. A request that fails (unreachable, malformed)
/// throws a `TypeError`, as `fetch` does in browsers; one outside the grant
/// is stopped by the host, which fails the whole call.
fn fetch(
    ctx: Ctx<'_>,
    method: String,
    url: String,
    headers: String,
    body: String,
) -> rquickjs::Result<String> {
    let headers: Vec<(String, String)> = serde_json::from_str(&headers)
        .map_err(|e| Exception::throw_type(&ctx, &format!("fetch headers: {e}")))?;
    let request = headers
        .iter()
        .fold(Request::new(&method, &url), |request, (name, value)| {
            request.header(name, value)
        })
        .body(body.into_bytes());
    let response = request
        .send()
        .map_err(|e| Exception::throw_type(&ctx, &format!("fetch {url} failed: {e}")))?;
    let fetched = Fetched {
        status: response.status,
        headers: response.headers,
        body: String::from_utf8_lossy(&response.body).into_owned(),
    };
    Ok(serde_json::to_string(&fetched).expect("strings and numbers serialise"))
}

/// How deep QuickJS lets the C stack (1 MiB in a Rust wasm module) grow
/// before a script's recursion throws a `RangeError`, leaving room for the
/// Rust frames around it.
const C_STACK_LIMIT: usize = 512 << 10;

/// Build the interpreter and load the prelude.
fn new_engine() -> Result<Engine, Error> {
    let setup = |e: rquickjs::Error| format!("engine setup: {e}");
    let runtime = Runtime::new().map_err(setup)?;
    runtime.set_max_stack_size(C_STACK_LIMIT);
    let context = Context::full(&runtime).map_err(setup)?;
    context
        .with(|ctx| -> rquickjs::Result<()> {
            let globals = ctx.globals();
            globals.set("__log", Function::new(ctx.clone(), console)?)?;
            globals.set(
                "__secret",
                Function::new(ctx.clone(), |name: String| secrets::get(&name))?,
            )?;
            globals.set("__fetch", Function::new(ctx.clone(), fetch)?)?;
            ctx.eval::<(), _>(PRELUDE)
        })
        .map_err(setup)?;
    Ok(Engine {
        _runtime: runtime,
        context,
    })
}

thread_local! {
    /// The interpreter, built by `wizer-initialize` into the snapshot every
    /// call starts from (or on first use when not pre-initialised).
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// Run `f` in the ready interpreter.
fn with_context<T>(f: impl FnOnce(&Ctx<'_>) -> Result<T, Error>) -> Result<T, Error> {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(new_engine()?);
        }
        let engine = slot.as_ref().expect("just set");
        engine.context.with(|ctx| f(&ctx))
    })
}

/// The name a snippet's positions are reported under.
const SNIPPET_PATH: &str = "snippet.js";

/// The pending exception behind `error`, as text (`TypeError: …`) and the
/// stack QuickJS recorded for it.
fn exception(ctx: &Ctx<'_>, error: rquickjs::Error) -> (String, String) {
    if !matches!(error, rquickjs::Error::Exception) {
        return (error.to_string(), String::new());
    }
    let thrown = ctx.catch();
    let text = thrown
        .get::<Coerced<String>>()
        .map(|c| c.0)
        .unwrap_or_else(|_| "an exception".into());
    let stack = thrown
        .as_exception()
        .and_then(|e| e.stack())
        .unwrap_or_default();
    (text, stack)
}

/// The frames of `stack` in the snippet's own code, at most five, a frame
/// repeated by recursion shown once.
fn snippet_frames(stack: &str) -> Vec<&str> {
    let mut frames: Vec<&str> = Vec::new();
    for frame in stack.lines().map(str::trim) {
        if frame.contains(SNIPPET_PATH) && frames.last() != Some(&frame) {
            frames.push(frame);
            if frames.len() == 5 {
                break;
            }
        }
    }
    frames
}

/// Parse the snippet as a module; the error names the position
/// (`SyntaxError: … at line 2, col 24`).
fn parse<'js>(source: &str, ctx: &Ctx<'js>) -> Result<Module<'js>, Error> {
    Module::declare(ctx.clone(), SNIPPET_PATH, source).map_err(|e| {
        let (text, stack) = exception(ctx, e);
        let position = snippet_frames(&stack)
            .first()
            .and_then(|frame| {
                let at = frame.rsplit(&format!("{SNIPPET_PATH}:")).next()?;
                let mut numbers = at.trim_end_matches(')').split(':');
                Some(format!(
                    " at line {}, col {}",
                    numbers.next()?,
                    numbers.next()?
                ))
            })
            .unwrap_or_default();
        format!("snippet does not parse: {text}{position}")
    })
}

/// An exception as a person reads it: the message, then at most five
/// frames of the snippet's own code (`at f (snippet.js:3:12)`).
fn thrown(ctx: &Ctx<'_>, error: rquickjs::Error) -> Error {
    let (text, stack) = exception(ctx, error);
    let mut message = format!("snippet threw {text}");
    for frame in snippet_frames(&stack) {
        message.push('\n');
        message.push_str(frame);
    }
    message
}

/// The event's fields other than the payload, as the snippet names them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EventFields<'a> {
    id: &'a str,
    name: &'a str,
    created_at: &'a str,
    hook_id: &'a str,
    trigger: Option<&'a str>,
}

/// The event as the snippet sees it, as JSON text. The payload arrives as
/// JSON the host has checked, so it is spliced in as it is rather than
/// parsed and written again.
fn event_json(event: &Event) -> String {
    let fields = serde_json::to_string(&EventFields {
        id: &event.id,
        name: &event.name,
        created_at: &event.created_at,
        hook_id: &event.hook_id,
        trigger: event.trigger.as_deref(),
    })
    .expect("strings serialise");
    let open = fields.strip_suffix('}').expect("an object");
    format!("{open},\"payload\":{}}}", event.payload)
}

/// Run the snippet's default export on `event`.
fn run(source: &str, event: &Event, ctx: &Ctx<'_>) -> Result<Outcome, Error> {
    let (module, evaluated) = parse(source, ctx)?.eval().map_err(|e| thrown(ctx, e))?;
    evaluated.finish::<()>().map_err(|e| thrown(ctx, e))?;
    let handler: Value = module.get("default").map_err(|e| thrown(ctx, e))?;
    let Some(handler) = handler.into_function() else {
        return Err("a snippet must `export default function (event, ctx) { ... }`".into());
    };
    let event_json = event_json(event);
    let run: Function = ctx.globals().get("__run").map_err(|e| thrown(ctx, e))?;
    let answer: Value = run
        .call((handler, event_json, config_json()))
        .map_err(|e| thrown(ctx, e))?;
    // An `async` snippet answers a promise: run its jobs until it settles.
    let answer: String = match answer.as_promise() {
        Some(promise) => promise.finish().map_err(|e| match e {
            rquickjs::Error::WouldBlock => "the snippet's promise never settled".to_string(),
            e => thrown(ctx, e),
        })?,
        None => answer.get().map_err(|e| thrown(ctx, e))?,
    };
    while ctx.execute_pending_job() {}
    let reported: Reported =
        serde_json::from_str(&answer).map_err(|e| format!("snippet result: {e}"))?;
    Ok(outcome(reported, event.trigger.is_some()))
}

/// The config, without the engine's own keys, as JSON text.
fn config_json() -> String {
    let config: serde_json::Map<String, Json> = config::get_all()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("wasmhooks."))
        .map(|(k, v)| (k, Json::String(v)))
        .collect();
    Json::Object(config).to_string()
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
        payload: reported.payload.map(|p| p.get().to_string()),
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
        with_context(|ctx| {
            if config::get(CHECK_KEY).is_some() {
                parse(&source, ctx)?;
                return Ok(Outcome::Continue(Proceed {
                    payload: None,
                    headers: Vec::new(),
                }));
            }
            run(&source, &event, ctx)
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
