//! Synchronous triggers: the platform calls while a user waits, and the
//! hooks bound to the trigger answer allow (with a patch) or deny within one
//! deadline (spec: sync-hooks.md).
//!
//! Hooks on a trigger run in `order` (then id). Each hook's steps see the
//! payload as the hooks before changed it; a deny stops the chain; patches
//! compose in order into one RFC 6902 JSON Patch. A failing hook (timeout,
//! trap, limit, invalid answer, missing plugin) decides by its `on_error`:
//! `deny` fails closed, `allow` skips it and discards its changes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::time::Instant;

use crate::hook::{HookSpec, OnError, SyncBinding};
use crate::metrics::Metrics;
use crate::pipeline::PluginRegistry;
use crate::runtime::{Grants, Outcome, Patch, PluginEvent};
use crate::store::{new_id, SharedStore, StoreError};

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
    spec: HookSpec,
    binding: SyncBinding,
    grants: Vec<Arc<Grants>>,
}

type Table = BTreeMap<String, Vec<Arc<Bound>>>;

/// Runs synchronous triggers.
pub struct SyncEngine {
    store: SharedStore,
    plugins: Arc<PluginRegistry>,
    settings: SyncSettings,
    metrics: Arc<Metrics>,
    ttl: Duration,
    table: Mutex<Option<(StdInstant, Arc<Table>)>>,
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
            plugins,
            settings,
            metrics,
            ttl,
            table: Mutex::new(None),
        }
    }

    /// Forget the loaded hooks; the next call reads them again.
    pub fn invalidate(&self) {
        *self.table.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The trigger's deadline when the caller gives none.
    pub fn deadline(&self, trigger: &str) -> Duration {
        self.settings.deadline(trigger)
    }

    /// Run the hooks bound to `trigger` on `payload` within `deadline` (the
    /// trigger's own when `None`).
    pub async fn call(
        &self,
        trigger: &str,
        payload: Value,
        deadline: Option<Duration>,
    ) -> Result<Decision, SyncError> {
        let started = StdInstant::now();
        if !payload.is_object() {
            return Err(SyncError::NotAnObject);
        }
        let deadline = Instant::now() + deadline.unwrap_or_else(|| self.deadline(trigger));
        let table = self.table().await?;
        let hooks = table.get(trigger).map(Vec::as_slice).unwrap_or_default();
        let mut doc = payload;
        let mut patch = Vec::new();
        let mut runs = Vec::with_capacity(hooks.len());
        let mut denial = None;
        for hook in hooks {
            let hook_started = StdInstant::now();
            let mut hook_doc = doc.clone();
            let mut hook_patch = Vec::new();
            let result = self
                .run_hook(trigger, hook, &mut hook_doc, &mut hook_patch, deadline)
                .await;
            let duration_us = hook_started.elapsed().as_micros() as u64;
            // A failed hook's changes are discarded, whatever it decides.
            let (outcome, error, step, changes) = match result {
                Ok(Step::Allow) => ("allow", None, Step::Allow, Some((hook_doc, hook_patch))),
                Ok(deny @ Step::Deny { .. }) => ("deny", None, deny, None),
                Err(error) => {
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
        self.metrics.sync_call(trigger, verdict, started.elapsed());
        Ok(decision)
    }

    /// Run one hook's steps; `doc` and `patch` collect its changes.
    async fn run_hook(
        &self,
        trigger: &str,
        hook: &Bound,
        doc: &mut Value,
        patch: &mut Vec<json_patch::PatchOperation>,
        deadline: Instant,
    ) -> Result<Step, String> {
        let limit = self.plugins.runtime().limits().timeout;
        for (step, grants) in hook.spec.steps.iter().zip(&hook.grants) {
            if Instant::now() >= deadline {
                return Err("the trigger's deadline passed before the hook ran".into());
            }
            let plugin = self.plugins.get(step.engine()).await?;
            let event = PluginEvent {
                id: new_id("sync"),
                name: trigger.to_string(),
                created_at: humantime::format_rfc3339_millis(std::time::SystemTime::now())
                    .to_string(),
                payload: RawValue::from_string(doc.to_string())
                    .map_err(|e| format!("payload: {e}"))?,
                hook_id: hook.id.clone(),
                trigger: Some(trigger.to_string()),
            };
            let until = deadline.min(Instant::now() + limit);
            let report = self
                .plugins
                .call(step.engine(), &plugin, &event, grants, until)
                .await;
            let fail = |e: String| format!("{}: {e}", step.label());
            match report.result.map_err(|e| fail(e.to_string()))? {
                Outcome::Deny { code, message } => return Ok(Step::Deny { code, message }),
                Outcome::Allow { patch: None } | Outcome::Continue { payload: None, .. } => {}
                Outcome::Allow {
                    patch: Some(Patch::Json(ops)),
                } => {
                    json_patch::patch(doc, &ops)
                        .map_err(|e| fail(format!("JSON Patch does not apply: {e}")))?;
                    patch.extend(ops.0);
                }
                Outcome::Allow {
                    patch: Some(Patch::Merge(merge)),
                } => {
                    let before = doc.clone();
                    json_patch::merge(doc, &merge);
                    patch.extend(json_patch::diff(&before, doc).0);
                }
                Outcome::Continue {
                    payload: Some(changed),
                    ..
                } => {
                    let changed: Value = serde_json::from_str(changed.get())
                        .map_err(|e| fail(format!("payload: {e}")))?;
                    patch.extend(json_patch::diff(doc, &changed).0);
                    *doc = changed;
                }
                Outcome::Cancel { .. } => {
                    return Err(fail(
                        "cancel is not an answer to a synchronous trigger".into(),
                    ))
                }
            }
        }
        Ok(Step::Allow)
    }

    /// The sync hooks by trigger, read again once `ttl` has passed.
    async fn table(&self) -> Result<Arc<Table>, StoreError> {
        if let Some((at, table)) = &*self.table.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < self.ttl {
                return Ok(table.clone());
            }
        }
        let mut table = Table::new();
        for record in self.store.list_hooks().await? {
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
            let grants = spec.steps.iter().map(|s| Arc::new(s.grants())).collect();
            table
                .entry(binding.trigger.clone())
                .or_default()
                .push(Arc::new(Bound {
                    id: record.id,
                    spec,
                    binding,
                    grants,
                }));
        }
        for hooks in table.values_mut() {
            hooks.sort_by(|a, b| (a.binding.order, &a.id).cmp(&(b.binding.order, &b.id)));
        }
        let table = Arc::new(table);
        *self.table.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((StdInstant::now(), table.clone()));
        Ok(table)
    }
}
