//! The one step loop: runs a hook's steps (wasm plugins and JavaScript
//! snippets) on an event, for deliveries and synchronous triggers alike.
//!
//! - One deadline covers the whole run: it starts when the claim or the
//!   request does, and each step runs within the earlier of it and the
//!   runtime's per-call timeout.
//! - A failure is a [`StepError`] that says whose fault it was
//!   ([`Blame::Guest`]: the plugin's; [`Blame::Host`]: a plugin that could
//!   not be loaded, no free instance, the memory budget, a store error) and
//!   of which kind. A hook's `on_step_error = "skip"` skips only the
//!   plugin's faults: a host fault never lets a step's work be left out.
//! - Deliveries carry the payload as JSON text, as stored, and collect the
//!   headers steps add; sync calls keep a parsed document and the changes as
//!   one RFC 6902 patch.
//!
//! [`registry`] keeps the plugins compiled and ready.

pub mod registry;

use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value;

pub use self::registry::{load_js_engine, PluginRegistry, PluginState};
use crate::hook::{HookSpec, OnStepError, Step};
use crate::runtime::{Blame, Deadline, Grants, Outcome, Patch, PluginError, PluginEvent};

/// A hook's steps, each with its grants built once.
#[derive(Debug, Clone)]
pub struct Steps {
    hook_id: String,
    steps: Vec<(Step, Arc<Grants>)>,
    on_step_error: OnStepError,
}

impl Steps {
    /// The steps of hook `hook_id` as `spec` defines them.
    pub fn of(hook_id: &str, spec: &HookSpec) -> Self {
        Steps {
            hook_id: hook_id.to_string(),
            steps: spec
                .steps
                .iter()
                .map(|step| (step.clone(), Arc::new(step.grants())))
                .collect(),
            on_step_error: spec.on_step_error,
        }
    }

    /// How many steps there are.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// The event a run is about, as plugins see it.
#[derive(Debug, Clone)]
pub struct EventInfo {
    /// Stable id of the event.
    pub id: String,
    /// Its name (for a sync call, the trigger).
    pub name: String,
    /// When it happened, RFC 3339.
    pub created_at: String,
}

/// How a run ended, when no step failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Ran {
    /// Deliver this payload (JSON text), adding these headers.
    Deliver {
        /// The payload after every step.
        payload: String,
        /// Headers the steps added, in order.
        headers: Vec<(String, String)>,
    },
    /// A step cancelled the delivery.
    Cancel {
        /// The step and its reason.
        reason: String,
    },
    /// The sync call goes on with this payload.
    Allow {
        /// The payload after every step.
        payload: Value,
        /// The changes, as RFC 6902 operations in order.
        patch: Vec<json_patch::PatchOperation>,
    },
    /// A step denied the sync call.
    Deny {
        /// Machine-readable reason.
        code: String,
        /// Message for the user.
        message: String,
    },
}

/// A step that failed, and whose fault it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{step}: {message}")]
pub struct StepError {
    /// The step, as messages name it (`plugin `x`` or `snippet`).
    pub step: String,
    /// The plugin's fault or the host's.
    pub blame: Blame,
    /// A short, stable name for the kind of failure.
    pub kind: &'static str,
    /// What happened.
    pub message: String,
}

impl StepError {
    fn plugin(step: &Step, error: PluginError) -> Self {
        StepError {
            step: step.label(),
            blame: error.blame(),
            kind: error.kind(),
            message: error.to_string(),
        }
    }

    fn host(step: &Step, kind: &'static str, message: String) -> Self {
        StepError {
            step: step.label(),
            blame: Blame::Host,
            kind,
            message,
        }
    }

    fn invalid_output(step: &Step, message: String) -> Self {
        StepError::plugin(step, PluginError::InvalidOutput(message))
    }
}

/// What the steps so far made of the payload.
enum Doc {
    /// A delivery's payload as JSON text, and the headers added.
    Text {
        payload: String,
        headers: Vec<(String, String)>,
    },
    /// A sync call's payload, parsed, and the changes made to it.
    Tree {
        doc: Value,
        patch: Vec<json_patch::PatchOperation>,
    },
}

impl Doc {
    fn payload(&self, step: &Step) -> Result<Box<RawValue>, StepError> {
        let text = match self {
            Doc::Text { payload, .. } => payload.clone(),
            Doc::Tree { doc, .. } => doc.to_string(),
        };
        RawValue::from_string(text).map_err(|e| {
            StepError::host(
                step,
                "invalid_payload",
                format!("stored payload is not JSON: {e}"),
            )
        })
    }

    /// Take in one step's outcome; `Some` when it ends the run.
    fn apply(&mut self, step: &Step, outcome: Outcome) -> Result<Option<Ran>, StepError> {
        match self {
            Doc::Text { payload, headers } => match outcome {
                Outcome::Continue {
                    payload: changed,
                    headers: added,
                } => {
                    if let Some(changed) = changed {
                        *payload = changed.get().to_string();
                    }
                    headers.extend(added);
                    Ok(None)
                }
                Outcome::Cancel { reason } => Ok(Some(Ran::Cancel {
                    reason: format!("{}: {reason}", step.label()),
                })),
                other => Err(StepError::invalid_output(
                    step,
                    format!("`{}` is not an answer to a delivery", other.kind()),
                )),
            },
            Doc::Tree { doc, patch } => match outcome {
                Outcome::Deny { code, message } => Ok(Some(Ran::Deny { code, message })),
                Outcome::Allow { patch: None } | Outcome::Continue { payload: None, .. } => {
                    Ok(None)
                }
                Outcome::Allow {
                    patch: Some(Patch::Json(ops)),
                } => {
                    json_patch::patch(doc, &ops).map_err(|e| {
                        StepError::invalid_output(step, format!("JSON Patch does not apply: {e}"))
                    })?;
                    patch.extend(ops.0);
                    Ok(None)
                }
                Outcome::Allow {
                    patch: Some(Patch::Merge(merge)),
                } => {
                    let before = doc.clone();
                    json_patch::merge(doc, &merge);
                    patch.extend(json_patch::diff(&before, doc).0);
                    Ok(None)
                }
                Outcome::Continue {
                    payload: Some(changed),
                    ..
                } => {
                    let changed: Value = serde_json::from_str(changed.get())
                        .map_err(|e| StepError::invalid_output(step, format!("payload: {e}")))?;
                    patch.extend(json_patch::diff(doc, &changed).0);
                    *doc = changed;
                    Ok(None)
                }
                Outcome::Cancel { .. } => Err(StepError::invalid_output(
                    step,
                    "cancel is not an answer to a synchronous trigger".into(),
                )),
            },
        }
    }

    fn finish(self) -> Ran {
        match self {
            Doc::Text { payload, headers } => Ran::Deliver { payload, headers },
            Doc::Tree { doc, patch } => Ran::Allow {
                payload: doc,
                patch,
            },
        }
    }
}

/// Runs hooks' steps with the plugins of one registry.
pub struct Pipeline {
    plugins: Arc<PluginRegistry>,
}

impl Pipeline {
    /// A pipeline calling plugins from `plugins`.
    pub fn new(plugins: Arc<PluginRegistry>) -> Self {
        Pipeline { plugins }
    }

    /// The plugins it calls.
    pub fn plugins(&self) -> &Arc<PluginRegistry> {
        &self.plugins
    }

    /// Run `steps` on a stored event before its delivery, within `budget`
    /// from when its plugins are loaded (a delivery waits for a plugin that
    /// is still compiling, unlike a sync call): the result is the payload
    /// to send (with added headers) or a cancellation.
    pub async fn deliver(
        &self,
        steps: &Steps,
        event: &EventInfo,
        payload: String,
        budget: std::time::Duration,
    ) -> Result<Ran, StepError> {
        for (step, _) in &steps.steps {
            // A plugin that cannot be loaded fails its step in the run below.
            let _ = self.plugins.get(step.engine()).await;
        }
        let doc = Doc::Text {
            payload,
            headers: Vec::new(),
        };
        self.run(steps, event, None, doc, Deadline::after(budget))
            .await
    }

    /// Run `steps` on a sync call's payload: the result is allow (with the
    /// changed payload and its patch) or deny.
    pub async fn decide(
        &self,
        steps: &Steps,
        event: &EventInfo,
        payload: Value,
        deadline: Deadline,
    ) -> Result<Ran, StepError> {
        let doc = Doc::Tree {
            doc: payload,
            patch: Vec::new(),
        };
        self.run(steps, event, Some(&event.name), doc, deadline)
            .await
    }

    async fn run(
        &self,
        steps: &Steps,
        event: &EventInfo,
        trigger: Option<&str>,
        mut doc: Doc,
        deadline: Deadline,
    ) -> Result<Ran, StepError> {
        for (step, grants) in &steps.steps {
            let call = PluginCall {
                step,
                grants,
                hook_id: &steps.hook_id,
                event,
                trigger,
            };
            let result = match self.call(&call, &doc, deadline).await {
                Ok(outcome) => doc.apply(step, outcome),
                Err(e) => Err(e),
            };
            match result {
                Ok(None) => {}
                Ok(Some(end)) => return Ok(end),
                Err(e) if e.blame == Blame::Guest && steps.on_step_error == OnStepError::Skip => {
                    tracing::warn!(hook = %steps.hook_id, step = %e.step, kind = e.kind, error = %e.message,
                        "step failed; skipped by the hook's policy");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(doc.finish())
    }

    /// One step's plugin call, within the run's deadline and the runtime's
    /// per-call timeout, whichever ends first.
    async fn call(
        &self,
        call: &PluginCall<'_>,
        doc: &Doc,
        deadline: Deadline,
    ) -> Result<Outcome, StepError> {
        let step = call.step;
        if deadline.passed() {
            return Err(StepError::plugin(step, deadline.exceeded()));
        }
        let plugin = match tokio::time::timeout_at(deadline.at(), self.plugins.get(step.engine()))
            .await
        {
            Ok(Ok(plugin)) => plugin,
            Ok(Err(message)) => return Err(StepError::host(step, "plugin_unavailable", message)),
            Err(_) => {
                return Err(StepError::host(
                    step,
                    "plugin_unavailable",
                    format!(
                        "the plugin was still loading when the deadline of {:?} passed",
                        deadline.limit()
                    ),
                ))
            }
        };
        let event = PluginEvent {
            id: call.event.id.clone(),
            name: call.event.name.clone(),
            created_at: call.event.created_at.clone(),
            payload: doc.payload(step)?,
            hook_id: call.hook_id.to_string(),
            trigger: call.trigger.map(str::to_string),
        };
        let timeout = self.plugins.runtime().limits().timeout;
        let until = deadline.earliest(Deadline::after(timeout));
        let report = self
            .plugins
            .call(step.engine(), &plugin, &event, call.grants, until)
            .await;
        report.result.map_err(|e| StepError::plugin(step, e))
    }
}

/// What one step's call needs besides the payload.
struct PluginCall<'a> {
    step: &'a Step,
    grants: &'a Arc<Grants>,
    hook_id: &'a str,
    event: &'a EventInfo,
    trigger: Option<&'a str>,
}
