//! The plugins a host's hooks run, kept compiled and ready so that a call
//! never waits on the store: shared by the dispatcher (steps before a
//! webhook) and the synchronous trigger door (steps while a user waits).
//!
//! - A plugin is compiled once, off the async workers; a burst of first
//!   calls waits for that one compilation, and calls that arrive while an
//!   upload is still compiling wait for it too.
//! - A background task lists the store's plugins every `refresh` period and
//!   loads new or changed ones (by content hash) before they replace the
//!   running version, so uploads and deletions by other processes on the
//!   same database are seen without a call ever reading the store.
//! - Only a name this process has never seen is read from the store in the
//!   call path (once, shared by concurrent callers).
//!
//! The built-in JavaScript engine ([`JS_ENGINE`]) is not in the store: it
//! is embedded in the binary, built from `plugins/js` by the build script.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio_util::sync::CancellationToken;

use crate::hook::JS_ENGINE;
use crate::metrics::Metrics;
use crate::runtime::{
    content_hash, js_engine_wasm, CallReport, Deadline, Grants, Plugin, PluginEvent, Runtime,
};
use crate::store::SharedStore;

/// Where a plugin stands in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    /// Compiled and linked: calls run at once.
    Ready,
    /// Being compiled; calls wait for it.
    Compiling,
    /// Could not be loaded; calls fail with the reason given beside it.
    Failed,
    /// Stored, not loaded here yet.
    Stored,
}

/// A load in progress or done, shared by everyone waiting for it.
pub type Load = Shared<BoxFuture<'static, Result<Plugin, String>>>;

struct Entry {
    /// The content hash being loaded, when known before the load ends.
    hash: Option<String>,
    load: Load,
}

impl Entry {
    fn status(&self) -> (PluginState, Option<String>) {
        match self.load.peek() {
            None => (PluginState::Compiling, None),
            Some(Ok(_)) => (PluginState::Ready, None),
            Some(Err(e)) => (PluginState::Failed, Some(e.clone())),
        }
    }

    /// The hash of what this entry holds or is loading.
    fn hash(&self) -> Option<String> {
        match self.load.peek() {
            Some(Ok(plugin)) => Some(plugin.hash().to_string()),
            _ => self.hash.clone(),
        }
    }
}

/// Loaded plugins by name.
pub struct PluginRegistry {
    store: SharedStore,
    runtime: Runtime,
    refresh: Duration,
    metrics: Arc<Metrics>,
    plugins: Mutex<HashMap<String, Arc<Entry>>>,
    /// The JavaScript engine, loaded on first use.
    js: tokio::sync::OnceCell<Plugin>,
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
            &content_hash(js_engine_wasm())[..16]
        ))
    });
    let bytes = match saved.as_deref().map(std::fs::read) {
        Some(Ok(bytes)) => bytes,
        _ => {
            let bytes = runtime
                .preinitialize(js_engine_wasm(), Duration::from_secs(30))
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

impl PluginRegistry {
    /// A registry reading plugins from `store`, loading them into `runtime`,
    /// looking for changes every `refresh` (once [`PluginRegistry::watch`]
    /// runs), and counting loads and calls in `metrics`.
    pub fn new(
        store: SharedStore,
        runtime: Runtime,
        refresh: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        PluginRegistry {
            store,
            runtime,
            refresh,
            metrics,
            plugins: Mutex::default(),
            js: tokio::sync::OnceCell::new(),
        }
    }

    /// The runtime plugins are loaded into.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Load every stored plugin now, then follow the store's changes until
    /// `shutdown`, in a background task.
    pub fn watch(self: &Arc<Self>, shutdown: CancellationToken) {
        let this = Arc::downgrade(self);
        let refresh = self.refresh;
        tokio::spawn(async move {
            loop {
                let Some(registry) = Weak::upgrade(&this) else {
                    return;
                };
                registry.sync_with_store().await;
                drop(registry);
                tokio::select! {
                    () = tokio::time::sleep(refresh) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        });
    }

    /// Bring the loaded plugins in line with the store: drop deleted ones,
    /// load new and changed ones, and only then let them replace the old.
    async fn sync_with_store(&self) {
        let stored = match self.store.list_plugins().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "listing plugins failed; loaded plugins kept");
                return;
            }
        };
        let stored: HashMap<String, String> =
            stored.into_iter().map(|p| (p.name, p.hash)).collect();
        self.lock().retain(|name, _| stored.contains_key(name));
        for (name, hash) in stored {
            let current = self.entry(&name);
            let stale = match &current {
                None => true,
                // A load in progress is left to finish.
                Some(entry) if entry.load.peek().is_none() => false,
                Some(entry) => entry.hash().as_deref() != Some(hash.as_str()),
            };
            if !stale {
                continue;
            }
            let next = self.start_fetch(&name, Some(hash));
            // Wait here, in the background, so calls keep the old version
            // until the new one is ready.
            let _ = next.load.clone().await;
            let mut plugins = self.lock();
            let unchanged = match (plugins.get(&name), &current) {
                (Some(now), Some(before)) => Arc::ptr_eq(now, before),
                (None, None) => true,
                _ => false,
            };
            if unchanged {
                plugins.insert(name, next);
            }
        }
    }

    /// The plugin registered as `name`, ready to call; the error says why
    /// it cannot be had (not registered, not loadable, store down).
    pub async fn get(&self, name: &str) -> Result<Plugin, String> {
        if name == JS_ENGINE {
            return self.js_engine().await;
        }
        let entry = {
            let mut plugins = self.lock();
            match plugins.get(name).filter(|e| !is_fetch_failure(e)) {
                Some(entry) => entry.clone(),
                None => {
                    let entry = self.start_fetch(name, None);
                    plugins.insert(name.to_string(), entry.clone());
                    entry
                }
            }
        };
        entry.load.clone().await
    }

    /// What `name` is in this process (ready, compiling, failed or only
    /// stored), and why it failed.
    pub fn status(&self, name: &str) -> (PluginState, Option<String>) {
        self.entry(name)
            .map_or((PluginState::Stored, None), |entry| entry.status())
    }

    /// Start compiling `bytes` in the background, counting the load in the
    /// metrics; [`PluginRegistry::install`] makes it a name's plugin.
    pub fn compile(&self, bytes: Vec<u8>) -> Load {
        let runtime = self.runtime.clone();
        let metrics = self.metrics.clone();
        spawn_load(async move {
            let plugin = runtime.load_async(bytes).await.map_err(|e| e.to_string())?;
            metrics.plugin_load(plugin.origin());
            Ok(plugin)
        })
    }

    /// Use `load` (of a component whose hash is `hash`) for `name` from now
    /// on; calls wait for it while it compiles.
    pub fn install(&self, name: &str, hash: &str, load: Load) {
        let entry = Arc::new(Entry {
            hash: Some(hash.to_string()),
            load,
        });
        self.lock().insert(name.to_string(), entry);
    }

    /// Start reading `name` from the store and loading it.
    fn start_fetch(&self, name: &str, hash: Option<String>) -> Arc<Entry> {
        let store = self.store.clone();
        let runtime = self.runtime.clone();
        let metrics = self.metrics.clone();
        let label = name.to_string();
        let load = spawn_load(async move {
            let record = match store.get_plugin(&label).await {
                Ok(Some(record)) => record,
                Ok(None) => return Err(format!("plugin `{label}` is not registered")),
                Err(e) => return Err(format!("{FETCH_FAILED} `{label}`: {e}")),
            };
            let plugin = runtime
                .load_async(record.bytes)
                .await
                .map_err(|e| format!("plugin `{label}`: {e}"))?;
            metrics.plugin_load(plugin.origin());
            Ok(plugin)
        });
        Arc::new(Entry { hash, load })
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
        deadline: Deadline,
    ) -> CallReport {
        let report = plugin.call_until(event, grants, deadline).await;
        let outcome = match &report.result {
            Ok(outcome) => outcome.kind(),
            Err(e) => e.kind(),
        };
        self.metrics.plugin_call(name, outcome, report.duration);
        report
    }

    /// Drop `name` (it was deleted).
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    fn entry(&self, name: &str) -> Option<Arc<Entry>> {
        self.lock().get(name).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.plugins.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How a failure to read the store starts, so the next call tries again
/// rather than keeping it.
const FETCH_FAILED: &str = "reading plugin";

/// A load that could not read the store or found no plugin: worth another
/// read on the next call, unlike a component that failed to compile.
fn is_fetch_failure(entry: &Entry) -> bool {
    matches!(entry.load.peek(), Some(Err(e)) if e.starts_with(FETCH_FAILED) || e.ends_with("is not registered"))
}

/// Run `load` as its own task, so it completes even if every caller stops
/// waiting, and share its result.
fn spawn_load(
    load: impl std::future::Future<Output = Result<Plugin, String>> + Send + 'static,
) -> Load {
    let task = tokio::spawn(load);
    async move {
        task.await
            .unwrap_or_else(|e| Err(format!("loading stopped: {e}")))
    }
    .boxed()
    .shared()
}
