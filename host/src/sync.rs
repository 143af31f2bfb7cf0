//! Synchronous triggers: the platform calls while a user waits, and the
//! hooks bound to the trigger answer allow (with a patch) or deny within one
//! deadline (spec: sync-hooks.md).
//!
//! Hooks on a trigger run in `order` (then id), each through the
//! [`pipeline`](crate::pipeline). Each hook's steps see the payload as the
//! hooks before changed it; a deny stops the chain; patches compose in order
//! into one RFC 6902 JSON Patch. A failing hook (timeout, trap, limit,
//! invalid answer, missing plugin) decides by its `on_error`: `deny` fails
//! closed, `allow` skips it and discards its changes.
//!
//! The deadline covers the whole call from the request's arrival: reading
//! the hooks, waiting for an instance, every step. The hooks are read from
//! the store in the background once loaded: a call never waits on the
//! store after the first, unless a local change just invalidated them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::hook::{HookSpec, OnError, SyncBinding};
use crate::metrics::Metrics;
use crate::pipeline::{EventInfo, Pipeline, PluginRegistry, Ran, Steps};
use crate::runtime::Deadline;
use crate::store::{new_id, SharedStore, StoreError};

/// The longest deadline a synchronous call may ask for, in milliseconds.
pub const MAX_SYNC_DEADLINE_MS: u64 = 60_000;

/// The metric label of a call to a trigger no hook answers.
const UNBOUND: &str = "_unbound";

/// Deadlines of synchronous triggers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// A trigger's deadline when it has none of its own.
    pub default_deadline: Duration,
    /// Deadlines by trigger name.
    pub deadlines: BTreeMap<String, Duration>,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            default_deadline: Duration::from_millis(500),
            deadlines: BTreeMap::new(),
        }
    }
}

impl SyncSettings {
    /// The deadline of `trigger`.
    pub fn deadline(&self, trigger: &str) -> Duration {
        self.deadlines
            .get(trigger)
            .copied()
            .unwrap_or(self.default_deadline)
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The flow goes on, with the patched payload.
    Allow,
    /// The flow stops; `code` and `message` say why.
    Deny,
}

/// What one hook did in a synchronous call.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HookRun {
    /// The hook.
    pub hook: String,
    /// `allow`, `deny`, or `error` (then `error` says what and `on_error` decided).
    pub outcome: String,
    /// What went wrong, for `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Time the hook took, in microseconds.
    pub duration_us: u64,
}

/// The answer to a synchronous call.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// Allow or deny.
    pub decision: Verdict,
    /// The payload after every hook's changes (allow).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    /// The changes as one RFC 6902 JSON Patch, in order (allow; empty when
    /// nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub patch: Option<json_patch::Patch>,
    /// Machine-readable reason (deny).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Message for the user (deny).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The hook that denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    /// Each hook that ran, in order, with its time.
    pub hooks: Vec<HookRun>,
    /// Time the whole call took, in microseconds.
    pub duration_us: u64,
}

/// Why a synchronous call could not be answered at all.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The payload is not a JSON object.
    #[error("the payload of a sync call must be a JSON object")]
    NotAnObject,
    /// The store failed while reading the trigger's hooks.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A sync hook ready to run.
struct Bound {
    id: String,
    binding: SyncBinding,
    steps: Steps,
}

type Table = BTreeMap<String, Vec<Arc<Bound>>>;

/// The hooks by trigger, with when they were read.
struct Loaded {
    at: Instant,
    table: Arc<Table>,
}

/// Runs synchronous triggers.
pub struct SyncEngine {
    store: SharedStore,
    pipeline: Arc<Pipeline>,
    settings: SyncSettings,
    metrics: Arc<Metrics>,
    ttl: Duration,
    table: Arc<Mutex<Option<Loaded>>>,
    /// Set while a background read of the hooks is under way.
    refreshing: Arc<AtomicBool>,
    /// Bumped by every invalidation, so a background read that began before
    /// a local change does not bring back what it replaced.
    generation: Arc<AtomicU64>,
}

/// A hook's result inside a call.
enum Step {
    Allow,
    Deny { code: String, message: String },
}

impl SyncEngine {
    /// An engine reading sync hooks from `store` (again after `ttl`, or at
    /// once after [`SyncEngine::invalidate`]) and running them with `plugins`.
    pub fn new(
        store: SharedStore,
        plugins: Arc<PluginRegistry>,
        settings: SyncSettings,
        metrics: Arc<Metrics>,
        ttl: Duration,
    ) -> Self {
        SyncEngine {
            store,
            pipeline: Arc::new(Pipeline::new(plugins)),
            settings,
            metrics,
            ttl,
            table: Arc::default(),
            refreshing: Arc::default(),
            generation: Arc::default(),
        }
    }

    /// The trigger's deadline when the caller gives none.
    pub fn deadline(&self, trigger: &str) -> Duration {
        self.settings.deadline(trigger)
    }

    /// Run the hooks bound to `trigger` on `payload` within `deadline` (the
    /// trigger's own when `None`), counted from `arrived`: when the request
    /// came in.
    pub async fn call(
        &self,
        arrived: Instant,
        trigger: &str,
        payload: Value,
        deadline: Option<Duration>,
    ) -> Result<Decision, SyncError> {
        let started = arrived;
        if !payload.is_object() {
            return Err(SyncError::NotAnObject);
        }
        let deadline = Deadline::from(arrived, deadline.unwrap_or_else(|| self.deadline(trigger)));
        let table = self.table().await?;
        let hooks = table.get(trigger).map(Vec::as_slice).unwrap_or_default();
        let mut doc = payload;
        let mut patch = Vec::new();
        let mut runs = Vec::with_capacity(hooks.len());
        let mut denial = None;
        for hook in hooks {
            let hook_started = Instant::now();
            let event = EventInfo {
                id: new_id("sync"),
                name: trigger.to_string(),
                created_at: humantime::format_rfc3339_millis(std::time::SystemTime::now())
                    .to_string(),
            };
            let result = self
                .pipeline
                .decide(&hook.steps, &event, doc.clone(), deadline)
                .await;
            let duration_us = hook_started.elapsed().as_micros() as u64;
            // A failed hook's changes are discarded, whatever it decides.
            let (outcome, error, step, changes) = match result {
                Ok(Ran::Allow { payload, patch }) => {
                    ("allow", None, Step::Allow, Some((payload, patch)))
                }
                Ok(Ran::Deny { code, message }) => {
                    ("deny", None, Step::Deny { code, message }, None)
                }
                Ok(other) => unreachable!("a sync hook's steps ended in {other:?}"),
                Err(error) => {
                    let error = error.to_string();
                    let step = match hook.binding.on_error {
                        OnError::Allow => Step::Allow,
                        OnError::Deny => Step::Deny {
                            code: "hook_failed".into(),
                            message: format!("hook `{}` failed: {error}", hook.id),
                        },
                    };
                    ("error", Some(error), step, None)
                }
            };
            runs.push(HookRun {
                hook: hook.id.clone(),
                outcome: outcome.into(),
                error,
                duration_us,
            });
            match step {
                Step::Allow => {
                    if let Some((changed, ops)) = changes {
                        doc = changed;
                        patch.extend(ops);
                    }
                }
                Step::Deny { code, message } => {
                    denial = Some((hook.id.clone(), code, message));
                    break;
                }
            }
        }
        let duration_us = started.elapsed().as_micros() as u64;
        let decision = match denial {
            None => Decision {
                decision: Verdict::Allow,
                payload: Some(doc),
                patch: Some(json_patch::Patch(patch)),
                code: None,
                message: None,
                hook: None,
                hooks: runs,
                duration_us,
            },
            Some((hook, code, message)) => Decision {
                decision: Verdict::Deny,
                payload: None,
                patch: None,
                code: Some(code),
                message: Some(message),
                hook: Some(hook),
                hooks: runs,
                duration_us,
            },
        };
        let verdict = match decision.decision {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        };
        // Only triggers with hooks become metric labels: the path segment
        // is the caller's to choose, and labels must not grow without bound.
        let label = if hooks.is_empty() { UNBOUND } else { trigger };
        self.metrics.sync_call(label, verdict, started.elapsed());
        Ok(decision)
    }

    /// Forget the loaded hooks; the next call reads them again.
    pub fn invalidate(&self) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        *table = None;
    }

    /// The sync hooks by trigger. Read from the store only when none are
    /// loaded; once `ttl` has passed they are read again in the background
    /// while calls go on with the ones loaded.
    async fn table(&self) -> Result<Arc<Table>, StoreError> {
        let loaded = self
            .table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|l| (l.at, l.table.clone()));
        match loaded {
            Some((at, table)) => {
                if at.elapsed() >= self.ttl && !self.refreshing.swap(true, Ordering::AcqRel) {
                    let (store, slot, flag, generation) = (
                        self.store.clone(),
                        self.table.clone(),
                        self.refreshing.clone(),
                        self.generation.clone(),
                    );
                    let began = generation.load(Ordering::Acquire);
                    tokio::spawn(async move {
                        match read_table(&store).await {
                            Ok(table) => {
                                keep(&slot, &generation, began, table);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "reading sync hooks failed; loaded ones kept")
                            }
                        }
                        flag.store(false, Ordering::Release);
                    });
                }
                Ok(table)
            }
            None => {
                let began = self.generation.load(Ordering::Acquire);
                let table = read_table(&self.store).await?;
                Ok(keep(&self.table, &self.generation, began, table))
            }
        }
    }
}

/// Keep `table`, read when the generation was `began`, as the loaded
/// hooks unless an invalidation came since; hand it back either way.
fn keep(
    slot: &Mutex<Option<Loaded>>,
    generation: &AtomicU64,
    began: u64,
    table: Table,
) -> Arc<Table> {
    let table = Arc::new(table);
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if generation.load(Ordering::Acquire) == began {
        *slot = Some(Loaded {
            at: Instant::now(),
            table: table.clone(),
        });
    }
    table
}

/// Read the enabled sync hooks from the store, by trigger, in call order.
async fn read_table(store: &SharedStore) -> Result<Table, StoreError> {
    let mut table = Table::new();
    for record in store.list_hooks().await? {
        if !record.enabled {
            continue;
        }
        let Ok(spec) = serde_json::from_value::<HookSpec>(record.spec) else {
            tracing::warn!(hook = %record.id, "stored hook is unreadable; skipped");
            continue;
        };
        let Some(binding) = spec.sync.clone() else {
            continue;
        };
        table
            .entry(binding.trigger.clone())
            .or_default()
            .push(Arc::new(Bound {
                steps: Steps::of(&record.id, &spec),
                id: record.id,
                binding,
            }));
    }
    for hooks in table.values_mut() {
        hooks.sort_by(|a, b| (a.binding.order, &a.id).cmp(&(b.binding.order, &b.id)));
    }
    Ok(table)
}
