//! The host's side of the contract: the event a plugin is called with, and
//! its validated answer.

use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::bindings::types as wit;
use super::error::PluginError;
use super::logs::Logs;

/// The event a plugin is called with.
#[derive(Debug, Clone, Serialize)]
pub struct PluginEvent {
    /// Stable id of the event.
    pub id: String,
    /// Event name, for example `PostRegister`.
    pub name: String,
    /// When it happened, RFC 3339 in UTC.
    pub created_at: String,
    /// The payload, as JSON text.
    pub payload: Box<RawValue>,
    /// The hook running the plugin.
    pub hook_id: String,
    /// The synchronous trigger being answered, or `None` for a delivery.
    pub trigger: Option<String>,
}

impl PluginEvent {
    /// Bytes that cross into the plugin.
    pub(crate) fn size(&self) -> usize {
        self.id.len()
            + self.name.len()
            + self.created_at.len()
            + self.payload.get().len()
            + self.hook_id.len()
            + self.trigger.as_ref().map_or(0, String::len)
    }

    pub(crate) fn to_wit(&self) -> wit::Event {
        wit::Event {
            id: self.id.clone(),
            name: self.name.clone(),
            created_at: self.created_at.clone(),
            payload: self.payload.get().to_string(),
            hook_id: self.hook_id.clone(),
            trigger: self.trigger.clone(),
        }
    }
}

/// A change to a synchronous trigger's payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "patch", rename_all = "snake_case")]
pub enum Patch {
    /// RFC 7396 merge patch.
    Merge(Value),
    /// RFC 6902 JSON Patch.
    Json(json_patch::Patch),
}

impl Patch {
    /// Apply the patch to `doc`.
    pub fn apply(&self, doc: &mut Value) -> Result<(), PluginError> {
        match self {
            Patch::Merge(patch) => {
                json_patch::merge(doc, patch);
                Ok(())
            }
            Patch::Json(patch) => json_patch::patch(doc, patch)
                .map_err(|e| PluginError::InvalidOutput(format!("JSON Patch does not apply: {e}"))),
        }
    }
}

/// What a plugin decided, validated.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Go on; `payload` is the new payload when the plugin changed it.
    Continue {
        /// The changed payload, valid JSON; `None` when unchanged.
        payload: Option<Box<RawValue>>,
        /// Extra webhook request headers, validated as HTTP headers.
        headers: Vec<(String, String)>,
    },
    /// Drop the delivery.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Refuse the synchronous flow.
    Deny {
        /// Machine-readable code.
        code: String,
        /// Message for the user.
        message: String,
    },
    /// Let the synchronous flow go on.
    Allow {
        /// The change to its payload, if any.
        patch: Option<Patch>,
    },
}

/// Most headers a plugin may add to one delivery.
const MAX_HEADERS: usize = 32;

impl Outcome {
    /// The outcome's name: `continue`, `cancel`, `deny` or `allow`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Continue { .. } => "continue",
            Outcome::Cancel { .. } => "cancel",
            Outcome::Deny { .. } => "deny",
            Outcome::Allow { .. } => "allow",
        }
    }

    /// Check the plugin's raw answer against the caps and the kind of call.
    pub(crate) fn from_wit(
        outcome: wit::Outcome,
        sync: bool,
        max_output: usize,
    ) -> Result<Self, PluginError> {
        let size = output_size(&outcome);
        if size > max_output {
            return Err(PluginError::OutputTooLarge {
                size,
                limit: max_output,
            });
        }
        let invalid = |m: String| PluginError::InvalidOutput(m);
        match outcome {
            wit::Outcome::Continue(proceed) => {
                let payload = proceed
                    .payload
                    .map(|p| RawValue::from_string(p).map_err(|e| invalid(format!("payload is not JSON: {e}"))))
                    .transpose()?;
                if proceed.headers.len() > MAX_HEADERS {
                    return Err(invalid(format!("more than {MAX_HEADERS} headers")));
                }
                let headers = proceed
                    .headers
                    .into_iter()
                    .map(|h| {
                        http::HeaderName::from_bytes(h.name.as_bytes())
                            .map_err(|_| invalid(format!("`{}` is not a valid header name", h.name)))?;
                        http::HeaderValue::from_str(&h.value)
                            .map_err(|_| invalid(format!("header `{}` has an invalid value", h.name)))?;
                        Ok((h.name.to_ascii_lowercase(), h.value))
                    })
                    .collect::<Result<_, PluginError>>()?;
                Ok(Outcome::Continue { payload, headers })
            }
            wit::Outcome::Cancel(reason) if !sync => Ok(Outcome::Cancel { reason }),
            wit::Outcome::Cancel(_) => Err(invalid(
                "cancel is for asynchronous deliveries; a synchronous trigger answers deny or allow".into(),
            )),
            wit::Outcome::Deny(d) if sync => Ok(Outcome::Deny {
                code: d.code,
                message: d.message,
            }),
            wit::Outcome::Allow(patch) if sync => {
                let patch = patch
                    .map(|p| match p {
                        wit::Patch::Merge(text) => serde_json::from_str(&text)
                            .map(Patch::Merge)
                            .map_err(|e| invalid(format!("merge patch is not JSON: {e}"))),
                        wit::Patch::Json(text) => serde_json::from_str(&text)
                            .map(Patch::Json)
                            .map_err(|e| invalid(format!("not an RFC 6902 JSON Patch: {e}"))),
                    })
                    .transpose()?;
                Ok(Outcome::Allow { patch })
            }
            wit::Outcome::Deny(_) | wit::Outcome::Allow(_) => Err(invalid(
                "deny and allow answer synchronous triggers; this is an asynchronous delivery".into(),
            )),
        }
    }
}

/// Bytes the plugin returned.
fn output_size(outcome: &wit::Outcome) -> usize {
    match outcome {
        wit::Outcome::Continue(p) => {
            p.payload.as_ref().map_or(0, String::len)
                + p.headers
                    .iter()
                    .map(|h| h.name.len() + h.value.len())
                    .sum::<usize>()
        }
        wit::Outcome::Cancel(reason) => reason.len(),
        wit::Outcome::Deny(d) => d.code.len() + d.message.len(),
        wit::Outcome::Allow(Some(wit::Patch::Merge(p) | wit::Patch::Json(p))) => p.len(),
        wit::Outcome::Allow(None) => 0,
    }
}

/// Everything about one call: its result, its logs, how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    /// The validated outcome, or why the call failed.
    #[serde(serialize_with = "serialize_result")]
    pub result: Result<Outcome, PluginError>,
    /// Lines the plugin logged or printed.
    pub logs: Logs,
    /// Wall time of the call, instantiation included.
    pub duration: Duration,
}

fn serialize_result<S: serde::Serializer>(
    result: &Result<Outcome, PluginError>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Failure {
        outcome: &'static str,
        kind: &'static str,
        message: String,
    }
    match result {
        Ok(outcome) => outcome.serialize(s),
        Err(e) => Failure {
            outcome: "error",
            kind: e.kind(),
            message: e.to_string(),
        }
        .serialize(s),
    }
}
