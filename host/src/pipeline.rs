//! The plugins a host's hooks run, loaded from the store on demand and
//! kept ready: shared by the dispatcher (steps before a webhook) and the
//! synchronous trigger door (steps while a user waits).
//!
//! A plugin is read again after `ttl`, so an upload by another host process
//! on the same database is seen; its machine code is reused while its
//! content hash is unchanged, and a burst of first calls compiles it once.
//!
//! The built-in JavaScript engine ([`JS_ENGINE`]) is not in the store: it
//! is embedded in the binary, built from `plugins/js` by the build script.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::hook::JS_ENGINE;
use crate::metrics::Metrics;
use crate::runtime::{content_hash, CallReport, Grants, Plugin, PluginEvent, Runtime};
use crate::store::SharedStore;

/// Loaded plugins by name.
pub struct PluginRegistry {
    store: SharedStore,
    runtime: Runtime,
    ttl: Duration,
    metrics: Arc<Metrics>,
    plugins: Mutex<HashMap<String, Arc<Loaded>>>,
    /// Held while a plugin is (re)loaded.
    loading: tokio::sync::Mutex<()>,
    /// The JavaScript engine, loaded on first use.
    js: tokio::sync::OnceCell<Plugin>,
}

/// The JavaScript engine component, built from `plugins/js`.
static JS_ENGINE_WASM: &[u8] = include_bytes!(env!("WASMHOOKS_JS_ENGINE"));

/// The built-in JavaScript engine component's bytes, as built.
pub fn js_engine_wasm() -> &'static [u8] {
    JS_ENGINE_WASM
}

/// Load the JavaScript engine into `runtime`, pre-initialised: its
/// interpreter is built once and snapshotted, so calls do not pay for it.
/// The pre-initialised component is kept beside the compile cache, keyed by
/// the engine's hash, and built again only when the engine changes.
pub async fn load_js_engine(runtime: &Runtime) -> Result<Plugin, String> {
    let fail = |e: String| format!("loading the JavaScript engine: {e}");
    let saved = runtime.cache_dir().map(|dir| {
        dir.join(format!(
            "js-engine-{}.preinit.wasm",
            &content_hash(JS_ENGINE_WASM)[..16]
        ))
    });
    let bytes = match saved.as_deref().map(std::fs::read) {
        Some(Ok(bytes)) => bytes,
        _ => {
            let bytes = runtime
                .preinitialize(JS_ENGINE_WASM, Duration::from_secs(30))
                .await
                .map_err(|e| fail(e.to_string()))?;
            if let Some(path) = &saved {
                // A failed write only costs the next start a pre-initialisation.
                let _ = std::fs::create_dir_all(path.parent().expect("a file in a directory"))
                    .and_then(|()| std::fs::write(path.with_extension("tmp"), &bytes))
                    .and_then(|()| std::fs::rename(path.with_extension("tmp"), path));
            }
            bytes
        }
    };
    runtime
        .load_async(bytes)
        .await
        .map_err(|e| fail(e.to_string()))
}

struct Loaded {
    fetched: Instant,
    hash: String,
    plugin: Plugin,
}

impl PluginRegistry {
    /// A registry reading plugins from `store`, loading them into `runtime`,
    /// checking the store again after `ttl`, and counting loads and calls
    /// in `metrics`.
    pub fn new(store: SharedStore, runtime: Runtime, ttl: Duration, metrics: Arc<Metrics>) -> Self {
        PluginRegistry {
            store,
            runtime,
            ttl,
            metrics,
            plugins: Mutex::default(),
            loading: tokio::sync::Mutex::new(()),
            js: tokio::sync::OnceCell::new(),
        }
    }

    /// The runtime plugins are loaded into.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The plugin registered as `name`, ready to call; the error says why
    /// it cannot be had (not registered, not loadable, store down).
    pub async fn get(&self, name: &str) -> Result<Plugin, String> {
        if name == JS_ENGINE {
            return self.js_engine().await;
        }
        let fresh = |p: &Arc<Loaded>| p.fetched.elapsed() < self.ttl;
        if let Some(p) = self.cached(name).filter(fresh) {
            return Ok(p.plugin.clone());
        }
        // One load at a time: a burst of calls compiles a plugin once.
        let _loading = self.loading.lock().await;
        let cached = self.cached(name);
        if let Some(p) = cached.as_ref().filter(|p| fresh(p)) {
            return Ok(p.plugin.clone());
        }
        let record = match self.store.get_plugin(name).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(format!("plugin `{name}` is not registered")),
            Err(e) => return Err(format!("loading plugin `{name}`: {e}")),
        };
        match cached.filter(|p| p.hash == record.hash) {
            Some(same) => {
                self.keep(name, same.plugin.clone());
                Ok(same.plugin.clone())
            }
            None => {
                let plugin = self
                    .runtime
                    .load_async(record.bytes)
                    .await
                    .map_err(|e| format!("plugin `{name}`: {e}"))?;
                self.insert(name, plugin.clone());
                Ok(plugin)
            }
        }
    }

    /// The built-in JavaScript engine, compiled (or read from the compile
    /// cache) on first use.
    pub async fn js_engine(&self) -> Result<Plugin, String> {
        self.js
            .get_or_try_init(|| async {
                let plugin = load_js_engine(&self.runtime).await?;
                self.metrics.plugin_load(plugin.origin());
                Ok(plugin)
            })
            .await
            .cloned()
    }

    /// Call plugin `name` (as [`PluginRegistry::get`] returned it) on
    /// `event` until `deadline`, counting the call in the metrics.
    pub async fn call(
        &self,
        name: &str,
        plugin: &Plugin,
        event: &PluginEvent,
        grants: &Arc<Grants>,
        deadline: tokio::time::Instant,
    ) -> CallReport {
        let report = plugin.call_until(event, grants, deadline).await;
        let outcome = match &report.result {
            Ok(outcome) => outcome.kind(),
            Err(e) => e.kind(),
        };
        self.metrics.plugin_call(name, outcome, report.duration);
        report
    }

    /// Use `plugin` for `name` from now on (it was just uploaded here).
    pub fn insert(&self, name: &str, plugin: Plugin) {
        self.metrics.plugin_load(plugin.origin());
        self.keep(name, plugin);
    }

    fn keep(&self, name: &str, plugin: Plugin) {
        let loaded = Loaded {
            fetched: Instant::now(),
            hash: plugin.hash().to_string(),
            plugin,
        };
        self.lock().insert(name.to_string(), Arc::new(loaded));
    }

    /// Drop `name` (it was deleted).
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    fn cached(&self, name: &str) -> Option<Arc<Loaded>> {
        self.lock().get(name).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Loaded>>> {
        self.plugins.lock().unwrap_or_else(|p| p.into_inner())
    }
}
