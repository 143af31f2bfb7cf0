//! The plugin runtime: one wasmtime engine, plugins compiled once (and cached
//! on disk), and every call on a fresh instance inside its limits.
//!
//! - [`Runtime`] owns the engine (pooling allocator with copy-on-write
//!   memory images, epoch interruption driven by one ticker thread), the
//!   linker with the host's imports, and the on-disk compile cache.
//! - [`Plugin`] is a loaded component, linked once (`InstancePre`); each
//!   [`Plugin::call`] builds a new `Store`, so no state leaks between events.
//! - Limits ([`Limits`]): CPU deadline, linear memory, wasm stack, input,
//!   output, log and HTTP response sizes. Outbound HTTP goes only where the
//!   call's [`Grants`] allow.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wasmhooks::runtime::{Grants, PluginEvent, Runtime, RuntimeConfig};
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load(&std::fs::read("enrich.wasm")?)?;
//! let event = PluginEvent {
//!     id: "evt_1".into(),
//!     name: "PostSignIn".into(),
//!     created_at: "2026-01-01T00:00:00Z".into(),
//!     payload: serde_json::value::RawValue::from_string(r#"{"userId":"u1"}"#.into())?,
//!     hook_id: "hook_1".into(),
//!     trigger: None,
//! };
//! let report = plugin.call(&event, &Grants::default().into()).await;
//! println!("{:?} in {:?}", report.result, report.duration);
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
mod contract;
mod error;
mod grants;
mod logs;
mod memory;
mod outbound;
mod outcome;
mod schedule;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

pub use self::cache::{content_hash, Origin};
pub use self::contract::HANDLER;
pub use self::error::{Blame, PluginError};
pub use self::grants::{Grants, HostPattern, HostPatternError, HttpGrant};
pub use self::logs::{LogLevel, LogLine, Logs};
pub use self::outcome::{CallReport, Outcome, Patch, PluginEvent};

use self::bindings::{Hook, HookPre};
use self::logs::LogSink;
use self::memory::{MemoryBudget, MemoryCap, MemoryHit};
use self::outbound::Outbound;
use self::schedule::Ticks;
use self::state::HostState;

/// How often the epoch ticker advances. A running guest yields its thread
/// to the async runtime at every tick, so no plugin holds a worker for
/// longer than this, and its deadline is checked against the clock then.
const TICK: Duration = Duration::from_millis(1);

/// When a call must end: a start and the budget configured from it, so an
/// overrun can report both the configured figure and the time taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    start: Instant,
    limit: Duration,
}

impl Deadline {
    /// `limit` from now.
    pub fn after(limit: Duration) -> Self {
        Deadline::from(Instant::now(), limit)
    }

    /// `limit` from `start` (for example a request's arrival).
    pub fn from(start: Instant, limit: Duration) -> Self {
        Deadline { start, limit }
    }

    /// The instant the time is up.
    pub fn at(&self) -> Instant {
        self.start + self.limit
    }

    /// The configured budget.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Whichever of the two ends first.
    pub fn earliest(self, other: Deadline) -> Deadline {
        if other.at() < self.at() {
            other
        } else {
            self
        }
    }

    /// Whether the time is up.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at()
    }

    /// The error for a call stopped by this deadline, now.
    pub fn exceeded(&self) -> PluginError {
        PluginError::DeadlineExceeded {
            limit: self.limit,
            took: self.start.elapsed(),
        }
    }
}

/// Per-call limits. The defaults suit webhook transforms and sign-in hooks.
/// In the configuration they are the `[limits]` table, `timeout` as text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wall-clock budget of one call, instantiation and outbound HTTP included.
    #[serde(with = "crate::duration::text")]
    pub timeout: Duration,
    /// Linear memory one call may use, in bytes.
    pub memory_bytes: usize,
    /// Native stack for wasm frames, in bytes; deeper recursion traps.
    pub stack_bytes: usize,
    /// Largest event (payload and metadata) handed to a plugin, in bytes.
    pub input_bytes: usize,
    /// Largest answer accepted from a plugin, in bytes.
    pub output_bytes: usize,
    /// Log bytes kept per call; the rest is dropped and marked truncated.
    pub log_bytes: usize,
    /// Largest outbound HTTP response body a plugin may read, in bytes.
    pub http_response_bytes: usize,
    /// Linear memory all concurrent calls together may hold, in bytes. A
    /// call whose growth would pass it fails with `memory_budget`.
    pub total_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            stack_bytes: 512 << 10,
            input_bytes: 1 << 20,
            output_bytes: 1 << 20,
            log_bytes: 64 << 10,
            http_response_bytes: 1 << 20,
            total_memory_bytes: 1 << 30,
        }
    }
}

/// How to build a [`Runtime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Limits applied to every call.
    pub limits: Limits,
    /// Directory for compiled components; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Instances that may run at once; more calls wait for a slot. This sizes
    /// the pooling allocator.
    pub max_instances: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            cache_dir: None,
            max_instances: 64,
        }
    }
}

/// The plugin runtime. Cheap to clone; clones share one engine.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    /// One permit per pooled instance slot, so callers queue (first come,
    /// first served) instead of failing when all slots are busy.
    slots: Arc<Semaphore>,
    /// Guest memory shared by all calls.
    memory: Arc<MemoryBudget>,
    /// The turns long-running guests take on the CPU.
    long_runners: Arc<Semaphore>,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Runtime {
    /// Build the engine, the linker and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, PluginError> {
        let host = |e: wasmtime::Error| PluginError::Host(format!("{e:#}"));
        let limits = &config.limits;
        let memory_slot = limits.memory_bytes.next_multiple_of(64 << 10);

        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 4)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            .total_stacks(config.max_instances)
            .max_memory_size(memory_slot)
            // Keep the first pages of each slot resident between calls: a
            // fresh instance then costs no page faults (measured: 64 µs to 37 µs).
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);

        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(limits.stack_bytes)
            .async_stack_size(limits.stack_bytes + (1 << 20))
            .memory_init_cow(true)
            // A 4 GiB reservation plus guard pages lets compiled code skip
            // explicit bounds checks on every load and store (measured on
            // the 1 KB transform: 63 to 51 µs per fresh call, 36 to 33 µs
            // reused). It is address space only; the limiter caps use.
            .memory_reservation(4 << 30)
            .memory_guard_size(32 << 20)
            .memory_reservation_for_growth(0)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(host)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(host)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(host)?;
        bindings::config::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(host)?;
        bindings::secrets::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(host)?;
        bindings::log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(host)?;
        bindings::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(host)?;

        start_ticker(&engine);
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                slots: Arc::new(Semaphore::new(config.max_instances as usize)),
                memory: MemoryBudget::new(config.limits.total_memory_bytes),
                long_runners: schedule::long_runner_permits(),
                engine,
                linker,
                config,
                tls: crate::net::tls_config(),
            }),
        })
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    /// Where compiled components are cached, if anywhere.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.inner.config.cache_dir.as_deref()
    }

    /// Guest memory reserved by the calls running now, and the budget.
    pub fn memory_in_use(&self) -> (usize, usize) {
        let budget = &self.inner.memory;
        (budget.used(), budget.total())
    }

    /// A store for one call: the call's grants, log sink, memory cap and
    /// deadline. At every epoch tick the guest yields to the async runtime
    /// (a long runner waits for its turn on the CPU) and is interrupted at
    /// the first tick past its deadline.
    fn new_store(
        &self,
        grants: &Arc<Grants>,
        logs: &LogSink,
        deadline: Instant,
    ) -> Store<HostState> {
        let runtime = &self.inner;
        let limits = &runtime.config.limits;
        let outbound = Outbound {
            grants: grants.clone(),
            violation: Default::default(),
            tls: runtime.tls.clone(),
            max_response_bytes: limits.http_response_bytes,
            deadline,
        };
        let memory = MemoryCap::new(limits.memory_bytes, runtime.memory.clone());
        let ticks = Ticks::new(deadline.into_std(), runtime.long_runners.clone());
        let state = HostState::new(grants.clone(), logs.clone(), outbound, memory, ticks);
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|s| &mut s.memory);
        store.epoch_deadline_callback(|mut store| Ok(store.data_mut().ticks.on_tick()));
        store.set_epoch_deadline(1);
        store
    }

    /// Pre-initialise a component (Wizer-style): instantiate it, call its
    /// `wizer-initialize` export once, and return a component whose memory
    /// starts as that call left it. Every call of the result is still a
    /// fresh instance, of the initialised state. The initialiser may not
    /// call imports; it runs within `budget`.
    pub async fn preinitialize(
        &self,
        bytes: &[u8],
        budget: Duration,
    ) -> Result<Vec<u8>, PluginError> {
        let logs = LogSink::new(self.limits().log_bytes);
        let mut store =
            self.new_store(&Arc::new(Grants::default()), &logs, Instant::now() + budget);
        let linker = &self.inner.linker;
        let (wasm, _) = wasmtime_wizer::Wizer::new()
            // The component still lifts the export, so the core function stays.
            .keep_init_func(true)
            .run_component(&mut store, bytes, async |store, component| {
                linker.instantiate_async(store, component).await
            })
            .await
            .map_err(|e| PluginError::Host(format!("pre-initialising: {e:#}")))?;
        Ok(wasm)
    }

    /// Check a component against the hook world from its types alone, in
    /// far less time than compiling it takes: see [`Runtime::load`] for the
    /// errors.
    pub fn check(bytes: &[u8]) -> Result<(), PluginError> {
        contract::check(bytes, JS_ENGINE_WASM)
    }

    /// Validate, check against the hook world, compile (or read from the
    /// cache) and link a component.
    ///
    /// Fails with [`PluginError::InvalidComponent`] for bytes that are not a
    /// component and [`PluginError::WrongWorld`] for a component that does not
    /// implement `wasmhooks:hook@0.1`: a missing or mistyped handler export,
    /// or an import the world does not provide.
    pub fn load(&self, bytes: &[u8]) -> Result<Plugin, PluginError> {
        Runtime::check(bytes)?;
        let hash = content_hash(bytes);
        let (component, origin) = cache::load(
            &self.inner.engine,
            self.inner.config.cache_dir.as_deref(),
            bytes,
            &hash,
        )?;
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::WrongWorld(format!("{e:#}")))?;
        let pre =
            HookPre::new(instance_pre).map_err(|e| PluginError::WrongWorld(format!("{e:#}")))?;
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                runtime: self.clone(),
                pre,
                hash,
                origin,
            }),
        })
    }

    /// [`Runtime::load`] on a blocking thread: compiling takes from
    /// milliseconds to seconds, which must not stall the async workers.
    pub async fn load_async(&self, bytes: Vec<u8>) -> Result<Plugin, PluginError> {
        let runtime = self.clone();
        tokio::task::spawn_blocking(move || runtime.load(&bytes))
            .await
            .map_err(|e| PluginError::Host(format!("loading stopped: {e}")))?
    }
}

/// The built-in JavaScript engine component, built from `plugins/js` by the
/// build script: the host's snippet runner, and the reference a plugin's
/// types are checked against (it is built from the same WIT package).
static JS_ENGINE_WASM: &[u8] = include_bytes!(env!("WASMHOOKS_JS_ENGINE"));

/// The built-in JavaScript engine component's bytes, as built.
pub fn js_engine_wasm() -> &'static [u8] {
    JS_ENGINE_WASM
}

/// Advance the engine's epoch every [`TICK`] until the engine is dropped.
fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasmhooks-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
}

/// A loaded plugin, ready to be called any number of times, concurrently.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    runtime: Runtime,
    pre: HookPre<HostState>,
    hash: String,
    origin: Origin,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("hash", &self.inner.hash)
            .field("origin", &self.inner.origin)
            .finish()
    }
}

impl Plugin {
    /// SHA-256 of the component's bytes, in hex.
    pub fn hash(&self) -> &str {
        &self.inner.hash
    }

    /// Whether loading compiled the component or read it from the cache.
    pub fn origin(&self) -> Origin {
        self.inner.origin
    }

    /// Call the plugin on `event` with the runtime's default timeout.
    pub async fn call(&self, event: &PluginEvent, grants: &Arc<Grants>) -> CallReport {
        let deadline = Deadline::after(self.inner.runtime.limits().timeout);
        self.call_until(event, grants, deadline).await
    }

    /// Call the plugin on `event`, failing with
    /// [`PluginError::DeadlineExceeded`] if it is not done by `deadline`,
    /// and with [`PluginError::Busy`] if no instance slot frees up by then.
    pub async fn call_until(
        &self,
        event: &PluginEvent,
        grants: &Arc<Grants>,
        deadline: Deadline,
    ) -> CallReport {
        let started = Instant::now();
        let limits = self.inner.runtime.limits();
        let logs = LogSink::new(limits.log_bytes);
        let result =
            match tokio::time::timeout_at(deadline.at(), self.run(event, grants, &logs, deadline))
                .await
            {
                Ok(result) => result,
                Err(_) => Err(deadline.exceeded()),
            };
        CallReport {
            result,
            logs: logs.finish(),
            duration: started.elapsed(),
        }
    }

    async fn run(
        &self,
        event: &PluginEvent,
        grants: &Arc<Grants>,
        logs: &LogSink,
        deadline: Deadline,
    ) -> Result<Outcome, PluginError> {
        let runtime = &self.inner.runtime.inner;
        let limits = &runtime.config.limits;
        check_input(event, limits)?;
        let queued = Instant::now();
        let _slot = match tokio::time::timeout_at(deadline.at(), runtime.slots.acquire()).await {
            Ok(slot) => slot.map_err(|_| PluginError::Host("runtime is shutting down".into()))?,
            Err(_) => {
                return Err(PluginError::Busy {
                    slots: runtime.config.max_instances,
                    waited: queued.elapsed(),
                })
            }
        };
        let mut store = self.inner.runtime.new_store(grants, logs, deadline.at());
        let hook = self.instantiate(&mut store, deadline).await?;
        invoke(&mut store, &hook, event, deadline, limits).await
    }

    async fn instantiate(
        &self,
        store: &mut Store<HostState>,
        deadline: Deadline,
    ) -> Result<Hook, PluginError> {
        match self.inner.pre.instantiate_async(&mut *store).await {
            Ok(hook) => Ok(hook),
            // Start-up code is the plugin's: its traps are the plugin's too.
            Err(e) if store.data().memory.hit.is_some() || e.downcast_ref::<Trap>().is_some() => {
                Err(classify_trap(e, store.data(), deadline))
            }
            Err(e) => Err(PluginError::Host(format!("instantiation failed: {e:#}"))),
        }
    }

    /// One instance kept for many calls: cheaper per call than
    /// [`Plugin::call`], but memory and globals persist from one call to the
    /// next. Use it only for a batch of one hook's events (and to measure
    /// what a fresh instance per call costs); the host itself always calls
    /// on fresh instances. The instance holds a pool slot until dropped.
    pub async fn reusable_instance(
        &self,
        grants: &Arc<Grants>,
    ) -> Result<ReusedInstance, PluginError> {
        let runtime = &self.inner.runtime.inner;
        let slot = runtime
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PluginError::Host("runtime is shutting down".into()))?;
        let logs = LogSink::new(runtime.config.limits.log_bytes);
        let far = Deadline::after(Duration::from_secs(365 * 24 * 3600));
        let mut store = self.inner.runtime.new_store(grants, &logs, far.at());
        let hook = self.instantiate(&mut store, far).await?;
        Ok(ReusedInstance {
            store,
            hook,
            _slot: slot,
            plugin: self.clone(),
        })
    }
}

/// A plugin instance kept across calls; see [`Plugin::reusable_instance`].
pub struct ReusedInstance {
    store: Store<HostState>,
    hook: Hook,
    _slot: tokio::sync::OwnedSemaphorePermit,
    plugin: Plugin,
}

impl ReusedInstance {
    /// Call the instance on `event` within the runtime's timeout.
    pub async fn call(&mut self, event: &PluginEvent) -> Result<Outcome, PluginError> {
        let limits = self.plugin.inner.runtime.limits().clone();
        check_input(event, &limits)?;
        let deadline = Deadline::after(limits.timeout);
        self.store.data_mut().outbound.deadline = deadline.at();
        self.store
            .data_mut()
            .ticks
            .restart(deadline.at().into_std());
        match tokio::time::timeout_at(
            deadline.at(),
            invoke(&mut self.store, &self.hook, event, deadline, &limits),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(deadline.exceeded()),
        }
    }
}

fn check_input(event: &PluginEvent, limits: &Limits) -> Result<(), PluginError> {
    let size = event.size();
    if size > limits.input_bytes {
        return Err(PluginError::InputTooLarge {
            size,
            limit: limits.input_bytes,
        });
    }
    Ok(())
}

/// Call `handle` on an instance and turn what comes back into an outcome or
/// a typed error.
async fn invoke(
    store: &mut Store<HostState>,
    hook: &Hook,
    event: &PluginEvent,
    deadline: Deadline,
    limits: &Limits,
) -> Result<Outcome, PluginError> {
    store.set_epoch_deadline(1);
    let answer = hook
        .wasmhooks_hook_handler()
        .call_handle(&mut *store, &event.to_wit())
        .await;
    let state = store.data();
    if let Some(violation) = state
        .outbound
        .violation
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        if !matches!(answer, Ok(Ok(_))) {
            return Err(violation);
        }
    }
    match answer {
        Ok(Ok(outcome)) => Outcome::from_wit(outcome, event.trigger.is_some(), limits.output_bytes),
        // A plugin whose outbound request ran into the call's deadline
        // fails after it: the deadline, not the plugin, ended the call.
        Ok(Err(_)) if deadline.passed() => Err(deadline.exceeded()),
        Ok(Err(mut message)) => {
            truncate(&mut message, 4096);
            Err(PluginError::Failed(message))
        }
        Err(e) => Err(classify_trap(e, state, deadline)),
    }
}

/// Turn a wasmtime error from a call into the typed error it stands for.
fn classify_trap(error: wasmtime::Error, state: &HostState, deadline: Deadline) -> PluginError {
    match state.memory.hit {
        Some(MemoryHit::Cap) => {
            return PluginError::MemoryLimit {
                limit: state.memory.limit,
            }
        }
        Some(MemoryHit::Budget) => {
            return PluginError::MemoryBudget {
                budget: state.memory.budget().total(),
            }
        }
        None => {}
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => deadline.exceeded(),
        Some(Trap::StackOverflow) => PluginError::StackOverflow,
        Some(trap) => {
            let message = match state.logs.panic_message() {
                Some(panic) => format!("{trap}; the plugin panicked: {panic}"),
                None => trap.to_string(),
            };
            PluginError::Trap { message }
        }
        None => PluginError::Trap {
            message: format!("{error:#}"),
        },
    }
}

/// Cut `text` to at most `max` bytes on a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}
