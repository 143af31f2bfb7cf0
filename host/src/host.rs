//! The embedding API: everything a platform does with wasmhooks, in
//! process. The HTTP server and the CLI are thin layers over [`Host`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wasmhooks::host::{EmitEvent, Host, HostConfig};
//! use serde_json::json;
//!
//! let host = Host::start(HostConfig::new("wasmhooks-data")).await?;
//! host.create_hook(Some("audit".into()), json!({
//!     "events": ["PostSignIn"],
//!     "webhook": {"url": "https://hooks.example.com/logto"}
//! })).await?;
//! host.emit(EmitEvent::new("PostSignIn", json!({"userId": "u1"}))).await?;
//! let decision = host.call_sync("PreRegistration", json!({"email": "a@b.c"}), None).await?;
//! println!("{:?}", decision.decision);
//! host.shutdown().await;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::delivery::dispatcher::{DispatchSettings, Dispatcher, TestSend};
use crate::delivery::policy::RetryPolicy;
use crate::delivery::replay::{Replay, Replays};
use crate::delivery::sender::Sender;
use crate::delivery::signing::{generate_signing_key, WebhookSecret};
use crate::event::{sample_payload, Catalogue, EventError, LOGTO_EVENTS};
use crate::hook::{HookSpec, NextSigningKey, SecretEntry, CHECK_KEY, SNIPPET_KEY};
use crate::metrics::Metrics;
use crate::pipeline::{PluginRegistry, PluginState};
use crate::runtime::{content_hash, Runtime, RuntimeConfig};
use crate::source::{self, InboundError, SourceSpec, SourceView};
use crate::store::{
    self, now_ms, Attempt, Delivery, DeliveryQuery, HookRecord, HookStats, Ingested, Millis,
    NewEvent, PluginRecord, SharedStore, StoreError, StoreLimits,
};
use crate::sync::{Decision, SyncEngine, SyncError, SyncSettings};

/// How to build a [`Host`]. [`HostConfig::new`] gives the embedded defaults.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where the host keeps its files: the SQLite database (unless
    /// `database_url` names another) and compiled plugins.
    pub data_dir: PathBuf,
    /// `postgres://...` to share a PostgreSQL database between processes;
    /// `None` for SQLite at `data_dir/wasmhooks.db`.
    pub database_url: Option<String>,
    /// Plugin limits and instance pool; its `cache_dir` defaults to
    /// `data_dir/cache`.
    pub runtime: RuntimeConfig,
    /// How the delivery queue is worked.
    pub dispatch: DispatchSettings,
    /// Whether this host works the delivery queue (a process may only
    /// ingest and answer sync calls).
    pub deliver: bool,
    /// Caps on stored payloads and logged bodies.
    pub store_limits: StoreLimits,
    /// Private networks webhook targets may be on (loopback, RFC 1918...);
    /// refused by default.
    pub private_networks: Vec<ipnet::IpNet>,
    /// Custom event names accepted besides Logto's.
    pub custom_events: Vec<String>,
    /// Deadlines of synchronous triggers.
    pub sync: SyncSettings,
    /// Largest webhook response body kept, in bytes.
    pub max_response_body: usize,
    /// The retry policy of webhooks that do not set their own.
    pub default_retry: RetryPolicy,
    /// Events (with their deliveries and attempt logs) older than this are
    /// deleted once every delivery of theirs has finished; `None` keeps
    /// everything.
    pub retention: Option<Duration>,
    /// How long an upload waits for its component to compile before it
    /// answers that the plugin is still compiling.
    pub upload_wait: Duration,
}

impl HostConfig {
    /// The embedded defaults, with files under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            data_dir: data_dir.into(),
            database_url: None,
            runtime: RuntimeConfig::default(),
            dispatch: DispatchSettings::default(),
            deliver: true,
            store_limits: StoreLimits::default(),
            private_networks: Vec::new(),
            custom_events: Vec::new(),
            sync: SyncSettings::default(),
            max_response_body: 16 << 10,
            default_retry: RetryPolicy::default(),
            retention: Some(Duration::from_secs(30 * 86_400)),
            upload_wait: Duration::from_millis(1500),
        }
    }
}

/// Why a host operation was refused or failed. Each kind has a stable
/// [`HostError::code`] the HTTP API reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The request is malformed or breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// The event name is neither built in nor registered.
    #[error(transparent)]
    UnknownEvent(#[from] EventError),
    /// The hook definition is invalid.
    #[error("invalid hook: {0}")]
    InvalidHook(String),
    /// The plugin upload is not a valid component.
    #[error("invalid plugin: {0}")]
    InvalidPlugin(String),
    /// The plugin upload is a component, but not of the `wasmhooks:hook`
    /// world: the message names the mismatch.
    #[error("plugin does not implement the wasmhooks:hook@0.1 world: {0}")]
    WrongWorld(String),
    /// No such object.
    #[error("{kind} `{id}` does not exist")]
    NotFound {
        /// `hook`, `plugin`, `delivery`...
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The object exists, or is in use.
    #[error("{0}")]
    Conflict(String),
    /// The host could not start.
    #[error("starting the host: {0}")]
    Start(String),
    /// The store cannot keep up now; nothing was written.
    #[error("{0}; try again shortly")]
    Busy(String),
    /// An inbound request's signature (or its timestamp) did not pass.
    #[error("{0}")]
    Unsigned(crate::source::InboundError),
    /// The store failed.
    #[error("store: {0}")]
    Store(StoreError),
}

impl HostError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            HostError::Invalid(_) => "invalid_request",
            HostError::UnknownEvent(_) => "unknown_event",
            HostError::InvalidHook(_) => "invalid_hook",
            HostError::InvalidPlugin(_) => "invalid_plugin",
            HostError::WrongWorld(_) => "wrong_world",
            HostError::NotFound { .. } => "not_found",
            HostError::Conflict(_) => "conflict",
            HostError::Start(_) => "start",
            HostError::Busy(_) => "busy",
            HostError::Unsigned(crate::source::InboundError::Stale(_)) => "stale_timestamp",
            HostError::Unsigned(_) => "invalid_signature",
            HostError::Store(_) => "store",
        }
    }
}

impl From<StoreError> for HostError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, id } => HostError::NotFound { kind, id },
            StoreError::Conflict { kind, id } => {
                HostError::Conflict(format!("{kind} `{id}` already exists"))
            }
            StoreError::Invalid(message) => HostError::Invalid(message),
            StoreError::Busy(message) => HostError::Busy(message),
            other => HostError::Store(other),
        }
    }
}

impl From<SyncError> for HostError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::NotAnObject => HostError::Invalid(e.to_string()),
            SyncError::Store(e) => e.into(),
        }
    }
}

/// Result of a host operation.
pub type HostResult<T> = Result<T, HostError>;

/// An event to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct EmitEvent {
    /// Event name: Logto's or a registered custom one.
    pub name: String,
    /// The payload, a JSON object.
    pub payload: Value,
    /// Idempotency id: emitting the same id again does nothing more.
    pub id: Option<String>,
    /// When it happened; now when absent.
    pub created_at: Option<Millis>,
}

impl EmitEvent {
    /// An event named `name` with `payload`, happening now.
    pub fn new(name: impl Into<String>, payload: Value) -> Self {
        EmitEvent {
            name: name.into(),
            payload,
            id: None,
            created_at: None,
        }
    }
}

/// A hook as the API shows it: its definition and its state.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HookView {
    /// Id.
    pub id: String,
    /// Whether it gets deliveries (or answers its trigger).
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Since when every request to its endpoint has failed (ms since epoch).
    pub failing_since: Option<Millis>,
    /// Created (ms since epoch).
    pub created_at: Millis,
    /// Last changed (ms since epoch).
    pub updated_at: Millis,
    /// The definition. Its secrets are masked (last four characters and a
    /// fingerprint), except in the answers that create a hook, rotate its
    /// keys or reveal them.
    #[schema(value_type = Object)]
    pub spec: Value,
}

impl From<HookRecord> for HookView {
    /// The view every read gives: secrets masked.
    fn from(record: HookRecord) -> Self {
        let revealed = HookView::revealed(record);
        HookView {
            spec: crate::secrets::masked(&revealed.spec),
            ..revealed
        }
    }
}

impl HookView {
    /// The view with its secrets in full: shown once, when they are made.
    /// Standard Webhooks secrets past their grace period no longer sign,
    /// so they are left out.
    fn revealed(record: HookRecord) -> Self {
        let mut spec = record.spec;
        if let Some(secrets) = spec
            .pointer_mut("/webhook/secrets")
            .and_then(Value::as_array_mut)
        {
            let now = now_ms();
            secrets.retain(|s| s["expires_at"].as_i64().is_none_or(|at| at > now));
        }
        HookView {
            id: record.id,
            enabled: record.enabled,
            disabled_reason: record.disabled_reason,
            failing_since: record.failing_since,
            created_at: record.created_at,
            updated_at: record.updated_at,
            spec,
        }
    }
}

/// A running host: store, plugin runtime, delivery workers and sync triggers.
/// Cheap to clone; clones share one host.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    default_retry: RetryPolicy,
    catalogue: RwLock<Catalogue>,
    plugins: Arc<PluginRegistry>,
    dispatcher: Arc<Dispatcher>,
    sync: SyncEngine,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    upload_wait: Duration,
    replays: Replays,
    /// Non-public networks webhook targets may be on.
    private_networks: Vec<ipnet::IpNet>,
}

/// How long a webhook target's name may take to resolve when a hook is
/// checked.
const TARGET_LOOKUP: Duration = Duration::from_secs(2);

/// How long a hook or plugin read from the store is trusted before it is
/// read again, so changes made by other processes are seen.
const CACHE_TTL: Duration = Duration::from_secs(2);

/// Which signature scheme's keys a rotation replaces.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum KeyScheme {
    /// Logto's `logto-signature-sha-256` key: the old key keeps signing
    /// until the grace period ends, then the new one takes over (the header
    /// carries one signature).
    Logto,
    /// The Standard Webhooks secret: both sign during the grace period.
    Standard,
    /// Both.
    #[default]
    Both,
}

/// A plugin as listed: its record and where it stands in this process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PluginView {
    /// The stored plugin.
    #[serde(flatten)]
    pub record: PluginRecord,
    /// `ready`, `compiling` (calls wait for it), `failed` or `stored` (not
    /// loaded here yet).
    #[serde(rename = "status")]
    pub state: PluginState,
    /// Why loading failed, for `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The host's error for a plugin that cannot be loaded.
fn plugin_error(e: crate::runtime::PluginError) -> HostError {
    match e {
        crate::runtime::PluginError::WrongWorld(message) => HostError::WrongWorld(message),
        other => HostError::InvalidPlugin(other.to_string()),
    }
}

impl Host {
    /// Open the store (running its migrations), build the runtime, and start
    /// the delivery workers.
    pub async fn start(mut config: HostConfig) -> HostResult<Host> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            HostError::Start(format!(
                "cannot create data directory {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let url = config.database_url.clone().unwrap_or_else(|| {
            config
                .data_dir
                .join("wasmhooks.db")
                .to_string_lossy()
                .into_owned()
        });
        let store = store::open(&url, config.store_limits)
            .await
            .map_err(|e| HostError::Start(format!("opening the store: {e}")))?;
        if config.runtime.cache_dir.is_none() {
            config.runtime.cache_dir = Some(config.data_dir.join("cache"));
        }
        let runtime = Runtime::new(config.runtime.clone())
            .map_err(|e| HostError::Start(format!("building the plugin runtime: {e}")))?;
        let mut catalogue = Catalogue::default();
        for name in &config.custom_events {
            catalogue.register(name.clone())?;
            store.register_event_type(name).await?;
        }
        for name in store.event_types().await? {
            catalogue.register(name)?;
        }
        let metrics = Arc::new(Metrics::default());
        let plugins = Arc::new(PluginRegistry::new(
            store.clone(),
            runtime,
            CACHE_TTL,
            metrics.clone(),
        ));
        let sender = Sender::new(config.private_networks.clone(), config.max_response_body);
        let dispatcher = Arc::new(Dispatcher::new(
            store.clone(),
            plugins.clone(),
            sender,
            config.dispatch.clone(),
            metrics.clone(),
        ));
        let sync = SyncEngine::new(
            store.clone(),
            plugins.clone(),
            config.sync.clone(),
            metrics.clone(),
            CACHE_TTL,
        );
        let shutdown = CancellationToken::new();
        plugins.watch(shutdown.clone());
        let worker = config
            .deliver
            .then(|| tokio::spawn(dispatcher.clone().run(shutdown.clone())));
        if let Some(retention) = config.retention {
            tokio::spawn(prune_forever(store.clone(), retention, shutdown.clone()));
        }
        Ok(Host {
            inner: Arc::new(Inner {
                store,
                default_retry: config.default_retry.clone(),
                catalogue: RwLock::new(catalogue),
                plugins,
                dispatcher,
                sync,
                metrics,
                shutdown,
                worker: Mutex::new(worker),
                upload_wait: config.upload_wait,
                replays: Replays::default(),
                private_networks: config.private_networks.clone(),
            }),
        })
    }

    /// Stop claiming deliveries, let the ones in flight finish and record
    /// their attempts, then return. Unclaimed work stays in the store.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let worker = self
            .inner
            .worker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(worker) = worker {
            let _ = worker.await;
        }
    }

    /// The store, for queries this API does not cover.
    pub fn store(&self) -> &SharedStore {
        &self.inner.store
    }

    // Events.

    /// Store an event durably and create its deliveries; returns once both
    /// are committed.
    pub async fn emit(&self, event: EmitEvent) -> HostResult<Ingested> {
        let mut results = self.emit_batch(vec![event]).await?;
        results.pop().expect("one result per event")
    }

    /// Store several events. Every event is checked first: if any is
    /// invalid, nothing is stored and the error names it. Results are in
    /// input order.
    pub async fn emit_batch(
        &self,
        events: Vec<EmitEvent>,
    ) -> HostResult<Vec<HostResult<Ingested>>> {
        let batch = events.len() > 1;
        let mut new = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let at = |e: HostError| match batch {
                true => HostError::Invalid(format!("events[{i}]: {e}")),
                false => e,
            };
            new.push(self.new_event(event).await.map_err(at)?);
        }
        // The write and its count finish even if the caller stops waiting
        // (an HTTP client that hangs up), so the counter matches the store.
        let (store, metrics) = (self.inner.store.clone(), self.inner.metrics.clone());
        let results = tokio::spawn(async move {
            let results = store.ingest(new).await?;
            let stored = results
                .iter()
                .filter(|r| r.as_ref().is_ok_and(|i| !i.duplicate))
                .count();
            metrics.events_accepted(stored as u64);
            Ok::<_, StoreError>(results)
        })
        .await
        .map_err(|e| HostError::Store(StoreError::Database(format!("ingest stopped: {e}"))))??;
        Ok(results
            .into_iter()
            .map(|r| r.map_err(HostError::from))
            .collect())
    }

    async fn new_event(&self, event: EmitEvent) -> HostResult<NewEvent> {
        self.check_event(&event.name).await?;
        if !event.payload.is_object() {
            return Err(HostError::Invalid(format!(
                "the payload of `{}` must be a JSON object",
                event.name
            )));
        }
        let new = NewEvent {
            id: event.id,
            name: event.name,
            payload: event.payload.to_string(),
            created_at: event.created_at.unwrap_or_else(now_ms),
        };
        store::validate_event(&new, &self.store_limits())?;
        Ok(new)
    }

    fn store_limits(&self) -> StoreLimits {
        self.inner.store.limits()
    }

    /// Accept a known event name; a name registered by another process
    /// since this one started is picked up from the store.
    async fn check_event(&self, name: &str) -> HostResult<()> {
        let known = self
            .inner
            .catalogue
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name);
        if known {
            return Ok(());
        }
        let registered = self.inner.store.event_types().await?;
        let mut catalogue = self
            .inner
            .catalogue
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for custom in registered {
            catalogue.register(custom)?;
        }
        Ok(catalogue.check(name)?)
    }

    fn catalogue(&self) -> Catalogue {
        self.inner
            .catalogue
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Register a custom event name so hooks may subscribe to it and events
    /// may carry it.
    pub async fn register_event_type(&self, name: &str) -> HostResult<()> {
        let mut catalogue = self.catalogue();
        catalogue.register(name.to_string())?;
        self.inner.store.register_event_type(name).await?;
        *self
            .inner
            .catalogue
            .write()
            .unwrap_or_else(|p| p.into_inner()) = catalogue;
        Ok(())
    }

    /// Every accepted event name: Logto's, then the registered ones.
    pub fn event_types(&self) -> Vec<String> {
        let catalogue = self.catalogue();
        LOGTO_EVENTS
            .iter()
            .copied()
            .chain(catalogue.custom())
            .map(String::from)
            .collect()
    }

    // Synchronous triggers.

    /// Run the sync hooks bound to `trigger` on `payload` within `deadline`
    /// (the trigger's configured deadline when `None`) and decide.
    pub async fn call_sync(
        &self,
        trigger: &str,
        payload: Value,
        deadline: Option<Duration>,
    ) -> HostResult<Decision> {
        self.call_sync_from(tokio::time::Instant::now(), trigger, payload, deadline)
            .await
    }

    /// [`Host::call_sync`] with the deadline counted from `arrived`, when
    /// the request came in, so time spent before the call counts too.
    pub async fn call_sync_from(
        &self,
        arrived: tokio::time::Instant,
        trigger: &str,
        payload: Value,
        deadline: Option<Duration>,
    ) -> HostResult<Decision> {
        Ok(self
            .inner
            .sync
            .call(arrived, trigger, payload, deadline)
            .await?)
    }

    // Hooks.

    /// Create a hook from its definition (JSON, as in the API). A new id is
    /// made when `id` is `None`. A webhook without keys gets a Logto
    /// signing key and a Standard Webhooks secret, so every delivery is
    /// signed both ways.
    pub async fn create_hook(&self, id: Option<String>, spec: Value) -> HookResultView {
        let id = id.unwrap_or_else(|| store::new_id("hook"));
        let spec = self.checked_spec(spec).await?;
        self.inner.store.create_hook(&spec.to_record(&id)).await?;
        self.hook_changed();
        self.reveal_secrets(&id).await
    }

    /// Hook `id` with its secrets in full: the explicit admin call that
    /// reads them after they were first shown.
    pub async fn reveal_secrets(&self, id: &str) -> HookResultView {
        Ok(HookView::revealed(self.record(id).await?))
    }

    /// Create the hook `id`, or replace its definition (keeping its state).
    /// A webhook given without keys keeps the ones it has.
    pub async fn put_hook(&self, id: &str, mut spec: Value) -> HookResultView {
        let Some(old) = self.inner.store.get_hook(id).await? else {
            return self.create_hook(Some(id.to_string()), spec).await;
        };
        crate::secrets::keep_masked(&mut spec, &old.spec);
        if let (Some(new), Some(old)) = (
            spec.get_mut("webhook").and_then(Value::as_object_mut),
            old.spec.get("webhook"),
        ) {
            if !new.contains_key("signing_key") && !new.contains_key("secrets") {
                for key in ["signing_key", "secrets"] {
                    if let Some(value) = old.get(key) {
                        new.insert(key.into(), value.clone());
                    }
                }
            }
        }
        let spec = self.checked_spec(spec).await?;
        self.replace_hook(old, &spec).await
    }

    /// Change a hook: `changes` is a JSON merge patch (RFC 7396) on its
    /// definition; the result must be a valid hook.
    pub async fn update_hook(&self, id: &str, changes: Value) -> HookResultView {
        let old = self.record(id).await?;
        let mut spec = old.spec.clone();
        json_patch::merge(&mut spec, &changes);
        crate::secrets::keep_masked(&mut spec, &old.spec);
        let spec = self.checked_spec(spec).await?;
        self.replace_hook(old, &spec).await
    }

    async fn replace_hook(&self, old: HookRecord, spec: &HookSpec) -> HookResultView {
        let record = HookRecord {
            created_at: old.created_at,
            enabled: old.enabled,
            disabled_reason: old.disabled_reason,
            failing_since: old.failing_since,
            ..spec.to_record(&old.id)
        };
        self.inner.store.update_hook(&record).await?;
        self.hook_changed();
        self.hook(&old.id).await
    }

    /// Parse and validate a definition, check its plugins are registered,
    /// and give an unsigned webhook its keys.
    async fn checked_spec(&self, mut spec: Value) -> HostResult<HookSpec> {
        if let Some(webhook) = spec.get_mut("webhook").and_then(Value::as_object_mut) {
            if !webhook.contains_key("retry") {
                let retry = serde_json::to_value(&self.inner.default_retry)
                    .expect("a retry policy serialises");
                webhook.insert("retry".into(), retry);
            }
        }
        let mut spec = HookSpec::from_json(spec, &self.catalogue())
            .map_err(|e| HostError::InvalidHook(e.0))?;
        for (i, step) in spec.steps.iter().enumerate() {
            if let Some(name) = &step.plugin {
                if self.inner.store.get_plugin(name).await?.is_none() {
                    return Err(HostError::InvalidHook(format!(
                        "steps[{i}]: plugin `{name}` is not registered"
                    )));
                }
            }
            if let Some(source) = &step.snippet {
                self.check_snippet(source)
                    .await
                    .map_err(|e| HostError::InvalidHook(format!("steps[{i}]: {e}")))?;
            }
        }
        if let Some(webhook) = &spec.webhook {
            self.check_target(&webhook.url).await?;
        }
        if let Some(webhook) = &mut spec.webhook {
            if webhook.signing_key.is_none() && webhook.secrets.is_empty() {
                webhook.signing_key = Some(generate_signing_key());
                webhook.secrets.push(SecretEntry {
                    secret: WebhookSecret::generate().to_text(),
                    expires_at: None,
                });
            }
        }
        Ok(spec)
    }

    /// Refuse a webhook target whose address, or every address its name
    /// resolves to now, is in a blocked range: every delivery to it would
    /// fail. A name that does not resolve yet is accepted.
    async fn check_target(&self, url: &str) -> HostResult<()> {
        let Ok(uri) = url.parse::<http::Uri>() else {
            return Ok(());
        };
        let Some(host) = uri.host() else {
            return Ok(());
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let addresses: Vec<std::net::IpAddr> = match bare.parse() {
            Ok(ip) => vec![ip],
            Err(_) => {
                match tokio::time::timeout(TARGET_LOOKUP, tokio::net::lookup_host((bare, port)))
                    .await
                {
                    Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                    _ => return Ok(()),
                }
            }
        };
        let private = &self.inner.private_networks;
        if addresses.is_empty()
            || addresses
                .iter()
                .any(|ip| crate::net::allows_address(private, *ip))
        {
            return Ok(());
        }
        let ip = addresses[0];
        let range = crate::net::blocked_range(ip).unwrap_or("a non-public range");
        let how = if bare.parse::<std::net::IpAddr>().is_ok() {
            format!("{ip} is in the {range} range")
        } else {
            format!("`{bare}` resolves to {ip}, in the {range} range")
        };
        Err(HostError::InvalidHook(format!(
            "webhook url `{url}`: {how}, which deliveries may not reach; allow it with the \
             `private_networks` setting (for example [\"{}\"])",
            ipnet::IpNet::from(ip).trunc()
        )))
    }

    /// Parse a JavaScript snippet without running it; the error gives the
    /// line and column of a syntax error.
    pub async fn check_snippet(&self, source: &str) -> Result<(), String> {
        let engine = self.inner.plugins.js_engine().await?;
        let grants = Arc::new(crate::runtime::Grants {
            config: [
                (SNIPPET_KEY.to_string(), source.to_string()),
                (CHECK_KEY.to_string(), "1".to_string()),
            ]
            .into(),
            ..Default::default()
        });
        let event = crate::runtime::PluginEvent {
            id: store::new_id("check"),
            name: "SnippetCheck".into(),
            created_at: "1970-01-01T00:00:00.000Z".into(),
            payload: serde_json::value::RawValue::from_string("{}".into()).expect("`{}` is JSON"),
            hook_id: String::new(),
            trigger: None,
        };
        match engine.call(&event, &grants).await.result {
            Ok(_) => Ok(()),
            Err(crate::runtime::PluginError::Failed(message)) => Err(message),
            Err(e) => Err(e.to_string()),
        }
    }

    /// One hook.
    pub async fn hook(&self, id: &str) -> HookResultView {
        Ok(self.record(id).await?.into())
    }

    async fn record(&self, id: &str) -> HostResult<HookRecord> {
        self.inner
            .store
            .get_hook(id)
            .await?
            .ok_or_else(|| HostError::NotFound {
                kind: "hook",
                id: id.to_string(),
            })
    }

    /// Every hook, by id.
    pub async fn hooks(&self) -> HostResult<Vec<HookView>> {
        Ok(self
            .inner
            .store
            .list_hooks()
            .await?
            .into_iter()
            .map(HookView::from)
            .collect())
    }

    /// Delete a hook with its deliveries and their attempts.
    pub async fn delete_hook(&self, id: &str) -> HostResult<()> {
        self.inner.store.delete_hook(id).await?;
        self.hook_changed();
        Ok(())
    }

    /// Enable a hook (after a 410, a failing window, or an operator).
    pub async fn enable_hook(&self, id: &str) -> HookResultView {
        self.inner.store.set_hook_enabled(id, true, None).await?;
        self.hook_changed();
        self.hook(id).await
    }

    /// Disable a hook, saying why.
    pub async fn disable_hook(&self, id: &str, reason: &str) -> HookResultView {
        self.inner
            .store
            .set_hook_enabled(id, false, Some(reason))
            .await?;
        self.hook_changed();
        self.hook(id).await
    }

    /// Give a webhook a new Logto signing key and a new Standard Webhooks
    /// secret. The old secrets keep signing for `grace` (24 h when `None`),
    /// so receivers can switch without dropping a delivery.
    pub async fn rotate_signing_key(
        &self,
        id: &str,
        scheme: KeyScheme,
        grace: Option<Duration>,
    ) -> HookResultView {
        let old = self.record(id).await?;
        let mut spec: HookSpec = serde_json::from_value(old.spec.clone())
            .map_err(|e| HostError::InvalidHook(format!("stored hook is unreadable: {e}")))?;
        let Some(webhook) = &mut spec.webhook else {
            return Err(HostError::Invalid(format!(
                "hook `{id}` is a sync hook and has no webhook keys"
            )));
        };
        let now = now_ms();
        let expires = now + grace.unwrap_or(Duration::from_secs(86_400)).as_millis() as Millis;
        if matches!(scheme, KeyScheme::Logto | KeyScheme::Both) {
            // A rotation begun earlier has taken over, or is cut short now.
            if let Some(next) = webhook.next_signing_key.take() {
                webhook.signing_key = Some(next.key);
            }
            let key = generate_signing_key();
            if webhook.signing_key.is_none() || expires <= now {
                webhook.signing_key = Some(key);
            } else {
                webhook.next_signing_key = Some(NextSigningKey {
                    key,
                    active_from: expires,
                });
            }
        }
        if matches!(scheme, KeyScheme::Standard | KeyScheme::Both) {
            for entry in &mut webhook.secrets {
                entry.expires_at = Some(entry.expires_at.map_or(expires, |at| at.min(expires)));
            }
            webhook.secrets.insert(
                0,
                SecretEntry {
                    secret: WebhookSecret::generate().to_text(),
                    expires_at: None,
                },
            );
        }
        webhook
            .secrets
            .retain(|e| e.expires_at.is_none_or(|at| at > now));
        let id = old.id.clone();
        self.replace_hook(old, &spec).await?;
        self.reveal_secrets(&id).await
    }

    /// Send sample payloads (or `payload`) for `events` (every event the hook
    /// subscribes to when empty) to the hook's endpoint now, through its
    /// steps, and return what the receiver answered. Nothing is stored.
    pub async fn test_hook(
        &self,
        id: &str,
        events: Vec<String>,
        payload: Option<Value>,
    ) -> HostResult<Vec<TestSend>> {
        let record = self.record(id).await?;
        let events = if events.is_empty() {
            record.events.clone()
        } else {
            events
        };
        let catalogue = self.catalogue();
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            catalogue.check(&event)?;
            let payload = payload.clone().unwrap_or_else(|| sample_payload(&event));
            results.push(self.inner.dispatcher.test(id, &event, &payload).await?);
        }
        Ok(results)
    }

    fn hook_changed(&self) {
        self.inner.sync.invalidate();
    }

    // Deliveries.

    /// Deliveries of a hook (or of every hook), newest first, filtered and
    /// paginated.
    pub async fn deliveries(&self, query: &DeliveryQuery) -> HostResult<Vec<Delivery>> {
        if let Some(id) = &query.hook_id {
            self.record(id).await?;
        }
        Ok(self.inner.store.deliveries(query).await?)
    }

    /// One delivery with its attempts.
    pub async fn delivery(&self, id: &str) -> HostResult<(Delivery, Vec<Attempt>)> {
        self.inner
            .store
            .delivery(id)
            .await?
            .ok_or_else(|| HostError::NotFound {
                kind: "delivery",
                id: id.to_string(),
            })
    }

    /// Make a delivery due now, whatever its state (unless in flight).
    pub async fn retry_delivery(&self, id: &str) -> HostResult<Delivery> {
        self.inner.store.retry_now(id).await?;
        Ok(self.delivery(id).await?.0)
    }

    /// Start delivering again to hook `id` every stored event in
    /// `[since, until)` it subscribes to, as a background job; its progress
    /// is read with [`Host::replay_job`]. An empty range makes a job that
    /// ends at once.
    pub async fn replay(&self, id: &str, since: Millis, until: Millis) -> HostResult<Replay> {
        if since > until {
            return Err(HostError::Invalid(
                "`since` must not be later than `until`".into(),
            ));
        }
        self.record(id).await?;
        Ok(self
            .inner
            .replays
            .start(self.inner.dispatcher.clone(), id, since, until))
    }

    /// A replay job as it stands.
    pub fn replay_job(&self, id: &str) -> HostResult<Replay> {
        self.inner
            .replays
            .get(id)
            .ok_or_else(|| HostError::NotFound {
                kind: "replay",
                id: id.to_string(),
            })
    }

    /// A hook's attempts since `since`: counts and latency percentiles.
    pub async fn hook_stats(&self, id: &str, since: Millis) -> HostResult<HookStats> {
        self.record(id).await?;
        Ok(self.inner.store.hook_stats(id, since).await?)
    }

    /// A hook's attempt counts since `since`, without latency: cheap enough
    /// for a list of every hook.
    pub async fn hook_counts(&self, id: &str, since: Millis) -> HostResult<HookStats> {
        Ok(self.inner.store.hook_counts(id, since).await?)
    }

    /// A hook's attempts from `since` to now in periods of `width` ms:
    /// counts and latency percentiles per period, for charts.
    pub async fn hook_series(
        &self,
        id: &str,
        since: Millis,
        width: Millis,
    ) -> HostResult<Vec<crate::store::StatsBucket>> {
        self.record(id).await?;
        let samples = self.inner.store.attempt_samples(id, since).await?;
        let buckets = ((now_ms() - since).max(0) / width.max(1) + 1) as usize;
        Ok(crate::store::bucketed(&samples, since, width, buckets))
    }

    // Plugins.

    /// Register a component under `name`, replacing an older one.
    ///
    /// It is validated and type-checked against the hook world first, so a
    /// bad upload changes nothing. Compiling it then runs in the background:
    /// if that ends within the configured `upload_wait` the plugin comes back `ready`
    /// (or the upload is refused if it failed); a large component comes back
    /// `compiling`, is stored, and calls wait for it to finish.
    pub async fn put_plugin(&self, name: &str, bytes: Vec<u8>) -> HostResult<PluginView> {
        store::validate_plugin_name(name)?;
        if name.starts_with("wasmhooks:") {
            return Err(HostError::Invalid(format!(
                "plugin names starting with `wasmhooks:` are reserved (`{name}`)"
            )));
        }
        let (checked, bytes) = tokio::task::spawn_blocking(move || (Runtime::check(&bytes), bytes))
            .await
            .map_err(|e| HostError::Invalid(format!("checking the plugin stopped: {e}")))?;
        checked.map_err(plugin_error)?;
        let plugins = &self.inner.plugins;
        let load = plugins.compile(bytes.clone());
        let state = match tokio::time::timeout(self.inner.upload_wait, load.clone()).await {
            Ok(Ok(_)) => PluginState::Ready,
            Ok(Err(message)) => return Err(HostError::InvalidPlugin(message)),
            Err(_) => PluginState::Compiling,
        };
        let record = PluginRecord {
            name: name.to_string(),
            hash: content_hash(&bytes),
            size: bytes.len() as u64,
            bytes,
            created_at: now_ms(),
        };
        self.inner.store.put_plugin(&record).await?;
        plugins.install(name, &record.hash, load);
        Ok(PluginView {
            record: PluginRecord {
                bytes: Vec::new(),
                ..record
            },
            state,
            error: None,
        })
    }

    /// Every plugin, without bytes, with where it stands in this process.
    pub async fn plugins(&self) -> HostResult<Vec<PluginView>> {
        let records = self.inner.store.list_plugins().await?;
        Ok(records
            .into_iter()
            .map(|record| {
                let (state, error) = self.inner.plugins.status(&record.name);
                PluginView {
                    record,
                    state,
                    error,
                }
            })
            .collect())
    }

    /// Create inbound source `id`, or replace its definition. A key sent
    /// back masked (as a read shows it) keeps the stored one. This answer
    /// shows the keys in full; every read after masks them.
    pub async fn put_source(&self, id: &str, spec: Value) -> HostResult<SourceView> {
        store::validate_id("source id", id)?;
        let invalid = |e: String| HostError::Invalid(format!("invalid source: {e}"));
        let mut spec: SourceSpec =
            serde_json::from_value(spec).map_err(|e| invalid(e.to_string()))?;
        if let Some(old) = self.inner.store.get_source(id).await? {
            if let Ok(old) = source::parse_stored(&old) {
                source::keep_masked(&mut spec, &old);
            }
        }
        spec.validate().map_err(invalid)?;
        let text = serde_json::to_string(&spec).expect("a source definition serialises");
        self.inner.store.put_source(id, &text).await?;
        Ok(SourceView::new(id, spec))
    }

    /// Every inbound source, keys masked.
    pub async fn sources(&self) -> HostResult<Vec<SourceView>> {
        let mut views = Vec::new();
        for (id, text) in self.inner.store.list_sources().await? {
            let spec = source::parse_stored(&text).map_err(HostError::Invalid)?;
            views.push(SourceView::new(&id, spec.masked()));
        }
        Ok(views)
    }

    /// Inbound source `id`, keys masked.
    pub async fn source(&self, id: &str) -> HostResult<SourceView> {
        Ok(SourceView::new(id, self.stored_source(id).await?.masked()))
    }

    /// Delete inbound source `id`: its sender's requests are refused after.
    pub async fn delete_source(&self, id: &str) -> HostResult<()> {
        Ok(self.inner.store.delete_source(id).await?)
    }

    async fn stored_source(&self, id: &str) -> HostResult<SourceSpec> {
        let text = self
            .inner
            .store
            .get_source(id)
            .await?
            .ok_or_else(|| HostError::NotFound {
                kind: "source",
                id: id.to_string(),
            })?;
        source::parse_stored(&text).map_err(HostError::Invalid)
    }

    /// Take a request that source `id`'s sender posted: check its signature
    /// (and timestamp) with the source's keys, then store its event exactly
    /// as [`Host::emit`] does. Nothing is stored unless every check passes.
    pub async fn receive(
        &self,
        id: &str,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> HostResult<Ingested> {
        let inbound = self
            .stored_source(id)
            .await?
            .verify(headers, body, store::now_ms())
            .map_err(|e| match e {
                InboundError::Body(message) => HostError::Invalid(message),
                other => HostError::Unsigned(other),
            })?;
        self.emit(EmitEvent {
            name: inbound.event,
            payload: inbound.payload,
            id: inbound.id,
            created_at: inbound.created_at,
        })
        .await
    }

    /// Delete a plugin; refused while a hook has a step using it.
    pub async fn delete_plugin(&self, name: &str) -> HostResult<()> {
        let users: Vec<String> = self
            .inner
            .store
            .list_hooks()
            .await?
            .into_iter()
            .filter(|h| crate::hook::uses_plugin(&h.spec, name))
            .map(|h| h.id)
            .collect();
        if !users.is_empty() {
            return Err(HostError::Conflict(format!(
                "plugin `{name}` is used by hook(s) {}",
                users.join(", ")
            )));
        }
        self.inner.store.delete_plugin(name).await?;
        self.inner.plugins.forget(name);
        Ok(())
    }

    // Health.

    /// Whether the store answers.
    pub async fn ready(&self) -> HostResult<()> {
        self.inner.store.queue_depth().await?;
        Ok(())
    }

    /// The Prometheus text exposition of the host's metrics.
    pub async fn metrics(&self) -> HostResult<String> {
        let depth = self.inner.store.queue_depth().await?;
        Ok(self.inner.metrics.render(&depth))
    }
}

/// Delete what is older than `retention`, now and then every hour, until
/// `shutdown`.
async fn prune_forever(store: SharedStore, retention: Duration, shutdown: CancellationToken) {
    loop {
        let before = now_ms() - retention.as_millis() as Millis;
        match store.prune(before, 500).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "pruned events past their retention"),
            Err(e) => tracing::warn!(error = %e, "pruning old events failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// A hook, or why it could not be had.
pub type HookResultView = HostResult<HookView>;
