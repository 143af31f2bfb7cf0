//! Native Rust forms of the contract's event and outcome.

use std::fmt;

use serde_json::Value;

use crate::bindings::wasmhooks::hook::types as wit;

/// One event handed to a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Stable id of the event.
    pub id: String,
    /// Event name, for example `PostSignIn`.
    pub name: String,
    /// When the event happened, RFC 3339 in UTC.
    pub created_at: String,
    /// The payload.
    pub payload: Value,
    /// Id of the hook running this plugin.
    pub hook_id: String,
    /// The synchronous trigger being answered, if any.
    pub trigger: Option<String>,
}

impl Event {
    /// True when the platform is waiting for this answer (a synchronous
    /// trigger): answer with [`Outcome::deny`] or [`Outcome::allow`].
    pub fn is_sync(&self) -> bool {
        self.trigger.is_some()
    }

    pub(crate) fn from_wit(event: wit::Event) -> Result<Self, Error> {
        let payload = serde_json::from_str(&event.payload)
            .map_err(|e| Error::new(format!("event payload is not JSON: {e}")))?;
        Ok(Event {
            id: event.id,
            name: event.name,
            created_at: event.created_at,
            payload,
            hook_id: event.hook_id,
            trigger: event.trigger,
        })
    }
}

/// A change to a synchronous trigger's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    /// An RFC 7396 merge patch: objects merge, `null` removes a key.
    Merge(Value),
    /// An RFC 6902 JSON Patch: an array of `{op, path, value}` operations.
    Json(Value),
}

/// What a plugin decided about an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Go on with the delivery.
    Continue {
        /// The new payload; `None` keeps it unchanged (and costs nothing).
        payload: Option<Value>,
        /// Extra webhook request headers.
        headers: Vec<(String, String)>,
    },
    /// Drop the delivery, recording why.
    Cancel(String),
    /// Refuse a synchronous flow.
    Deny {
        /// Machine-readable code.
        code: String,
        /// Message for the user.
        message: String,
    },
    /// Let a synchronous flow go on, optionally changing its payload.
    Allow(Option<Patch>),
}

impl Outcome {
    /// Go on with the payload unchanged.
    pub fn unchanged() -> Self {
        Outcome::Continue {
            payload: None,
            headers: Vec::new(),
        }
    }

    /// Go on with this payload.
    pub fn payload(payload: Value) -> Self {
        Outcome::Continue {
            payload: Some(payload),
            headers: Vec::new(),
        }
    }

    /// Add a webhook request header to a `Continue` outcome (other outcomes
    /// are returned as they are).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Outcome::Continue { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// Drop the delivery.
    pub fn cancel(reason: impl Into<String>) -> Self {
        Outcome::Cancel(reason.into())
    }

    /// Refuse a synchronous flow with a code and a user-facing message.
    pub fn deny(code: impl Into<String>, message: impl Into<String>) -> Self {
        Outcome::Deny {
            code: code.into(),
            message: message.into(),
        }
    }

    /// Let a synchronous flow go on unchanged.
    pub fn allow() -> Self {
        Outcome::Allow(None)
    }

    /// Let a synchronous flow go on, merging `patch` into its payload.
    pub fn allow_merge(patch: Value) -> Self {
        Outcome::Allow(Some(Patch::Merge(patch)))
    }

    pub(crate) fn into_wit(self) -> wit::Outcome {
        match self {
            Outcome::Continue { payload, headers } => wit::Outcome::Continue(wit::Proceed {
                payload: payload.map(|p| p.to_string()),
                headers: headers
                    .into_iter()
                    .map(|(name, value)| wit::Header { name, value })
                    .collect(),
            }),
            Outcome::Cancel(reason) => wit::Outcome::Cancel(reason),
            Outcome::Deny { code, message } => wit::Outcome::Deny(wit::Denial { code, message }),
            Outcome::Allow(patch) => wit::Outcome::Allow(patch.map(|p| match p {
                Patch::Merge(v) => wit::Patch::Merge(v.to_string()),
                Patch::Json(v) => wit::Patch::Json(v.to_string()),
            })),
        }
    }
}

/// A plugin's failure: a message the host records with the call.
///
/// Anything that implements `Display` converts into it, so `?` works on most
/// errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Error(e.to_string())
    }
}
