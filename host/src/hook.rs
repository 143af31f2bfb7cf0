//! A hook's definition: the events it subscribes to, its pipeline of plugin
//! steps, and its webhook target; or, for a synchronous hook, the trigger
//! it answers. Stored as the `spec` of a
//! [`HookRecord`](crate::store::HookRecord); validated before it is stored.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::delivery::policy::RetryPolicy;
use crate::delivery::signing::WebhookSecret;
use crate::event::Catalogue;
use crate::runtime::{Grants, HttpGrant};
use crate::store::Millis;

/// A hook as an operator writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// Event names it subscribes to (webhook hooks).
    #[serde(default)]
    pub events: Vec<String>,
    /// Plugin steps run in order on each event before delivery.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// What a failing step does: `fail` the attempt (and retry it later) or
    /// `skip` the step.
    #[serde(default)]
    pub on_step_error: OnStepError,
    /// Where the result is delivered (webhook hooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// The synchronous trigger it answers instead (sync hooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncBinding>,
}

/// A synchronous hook's place on a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBinding {
    /// The trigger it answers, e.g. `PreRegistration`.
    pub trigger: String,
    /// Hooks on a trigger run by ascending `order`, then by id.
    #[serde(default)]
    pub order: i32,
    /// What an error (timeout, trap, limit, invalid answer) decides.
    #[serde(default)]
    pub on_error: OnError,
}

/// What a failing synchronous hook decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail closed: the flow is denied.
    #[default]
    Deny,
    /// Fail open: the hook is skipped and the flow goes on.
    Allow,
}

/// One step: a registered plugin or a JavaScript snippet, with what it is
/// granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Name of a registered plugin (or give `snippet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// JavaScript run by the built-in engine (or give `plugin`):
    /// `export default function (event, ctx) { ... }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    /// Config values for the plugin.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secrets for the plugin.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Outbound HTTP the plugin may make.
    #[serde(default)]
    pub http: HttpGrant,
}

/// The name the built-in JavaScript engine runs under.
pub const JS_ENGINE: &str = "wasmhooks:js";

/// Config keys the JavaScript engine reserves.
pub const SNIPPET_KEY: &str = "wasmhooks.snippet";
/// Set to ask the engine only to parse the snippet.
pub const CHECK_KEY: &str = "wasmhooks.check";

/// Largest snippet accepted, in bytes.
pub const MAX_SNIPPET_BYTES: usize = 64 << 10;

impl Step {
    /// The plugin that runs this step: the named one, or the JavaScript engine.
    pub fn engine(&self) -> &str {
        self.plugin.as_deref().unwrap_or(JS_ENGINE)
    }

    /// The step as messages name it: `plugin `x`` or `snippet`.
    pub fn label(&self) -> String {
        match &self.plugin {
            Some(name) => format!("plugin `{name}`"),
            None => "snippet".into(),
        }
    }

    /// The grants this step gives its plugin; a snippet's source travels in
    /// the engine's config.
    pub fn grants(&self) -> Grants {
        let mut config = self.config.clone();
        if let Some(source) = &self.snippet {
            config.insert(SNIPPET_KEY.into(), source.clone());
        }
        Grants {
            config,
            secrets: self.secrets.clone(),
            http: self.http.clone(),
        }
    }

    fn validate(&self, index: usize) -> Result<(), HookError> {
        let at = |m: String| HookError(format!("steps[{index}]: {m}"));
        match (&self.plugin, &self.snippet) {
            (Some(name), None) => {
                crate::store::validate_plugin_name(name).map_err(|e| at(e.to_string()))?
            }
            (None, Some(source)) if source.len() > MAX_SNIPPET_BYTES => {
                return Err(at(format!("the snippet is over {MAX_SNIPPET_BYTES} bytes")))
            }
            (None, Some(_)) => {}
            _ => return Err(at("a step has either a `plugin` or a `snippet`".into())),
        }
        if let Some(key) = self.config.keys().find(|k| k.starts_with("wasmhooks.")) {
            return Err(at(format!("config key `{key}` is reserved")));
        }
        Ok(())
    }
}

/// What a failing step does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnStepError {
    /// Fail this attempt; it is retried on the hook's schedule.
    #[default]
    Fail,
    /// Skip the step and go on with the payload as it was.
    Skip,
}

/// The webhook target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http` or `https` URL the body is POSTed to.
    pub url: String,
    /// Extra request headers; they cannot replace the signature headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time limit of one attempt, e.g. `10s`.
    #[serde(default = "default_timeout", with = "crate::duration::text")]
    #[schema(value_type = String, example = "10s")]
    pub timeout: Duration,
    /// Retry schedule and endpoint disabling.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Most attempts in flight to this endpoint at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Deliver in order: each delivery waits until the previous one to this
    /// endpoint succeeded or was given up.
    #[serde(default)]
    pub ordered: bool,
    /// Most requests per second to this endpoint; none for no limit.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// Logto-style signing key (`logto-signature-sha-256`); none sends no
    /// Logto signature.
    #[serde(default)]
    pub signing_key: Option<String>,
    /// A rotated Logto key waiting for the grace period to end: Logto's
    /// header carries one signature, so `signing_key` keeps signing until
    /// `active_from`, and this key from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_signing_key: Option<NextSigningKey>,
    /// Standard Webhooks secrets, newest first; an old secret keeps signing
    /// until its `expires_at` (the rotation grace period).
    #[serde(default)]
    pub secrets: Vec<SecretEntry>,
}

/// A Logto signing key that takes over at a set time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NextSigningKey {
    /// The new key.
    pub key: String,
    /// When it starts signing, ms since the epoch.
    pub active_from: crate::store::Millis,
}

impl Webhook {
    /// The Logto key that signs at `now`: the rotated one once its grace
    /// period has ended, the current one before.
    pub fn logto_key(&self, now: crate::store::Millis) -> Option<&str> {
        match &self.next_signing_key {
            Some(next) if now >= next.active_from => Some(&next.key),
            _ => self.signing_key.as_deref(),
        }
    }
}

/// A Standard Webhooks secret and when it stops signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretEntry {
    /// `whsec_...`.
    pub secret: String,
    /// Milliseconds since the epoch after which it no longer signs; none for
    /// the current secret.
    #[serde(default)]
    pub expires_at: Option<Millis>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_concurrency() -> u32 {
    4
}

/// Why a hook definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hook: {0}")]
pub struct HookError(pub String);

/// Headers the signature scheme owns; configuration cannot set them.
pub const RESERVED_HEADERS: [&str; 4] = [
    "logto-signature-sha-256",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Hop-by-hop and framing headers: the HTTP client sets them for each
/// connection and request, so neither configuration nor a step may.
pub const FRAMING_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// Why header `name` (lowercase) may not be configured, if it may not.
pub fn refused_header(name: &str) -> Option<&'static str> {
    if RESERVED_HEADERS.contains(&name) {
        Some("is set by the signature scheme")
    } else if FRAMING_HEADERS.contains(&name) {
        Some("is a hop-by-hop or framing header the HTTP client sets")
    } else {
        None
    }
}

/// Whether a stored definition (JSON) has a step running plugin `name`.
pub fn uses_plugin(spec: &serde_json::Value, name: &str) -> bool {
    spec["steps"]
        .as_array()
        .is_some_and(|steps| steps.iter().any(|s| s["plugin"] == name))
}

impl HookSpec {
    /// Parse and validate a definition from JSON.
    pub fn from_json(value: serde_json::Value, catalogue: &Catalogue) -> Result<Self, HookError> {
        let spec: HookSpec = serde_json::from_value(value).map_err(|e| HookError(e.to_string()))?;
        spec.validate(catalogue)?;
        Ok(spec)
    }

    /// Check everything that can be checked before the hook runs.
    pub fn validate(&self, catalogue: &Catalogue) -> Result<(), HookError> {
        match (&self.webhook, &self.sync) {
            (Some(webhook), None) => self.validate_webhook(webhook, catalogue)?,
            (None, Some(sync)) => {
                if !self.events.is_empty() {
                    return Err(HookError(
                        "a sync hook answers its trigger and takes no `events`".into(),
                    ));
                }
                crate::store::validate_id("sync trigger", &sync.trigger)
                    .map_err(|e| HookError(e.to_string()))?;
            }
            (Some(_), Some(_)) => {
                return Err(HookError(
                    "a hook has either a `webhook` or a `sync` trigger, not both".into(),
                ))
            }
            (None, None) => {
                return Err(HookError(
                    "a hook needs a `webhook` target or a `sync` trigger".into(),
                ))
            }
        }
        for (index, step) in self.steps.iter().enumerate() {
            step.validate(index)?;
        }
        Ok(())
    }

    fn validate_webhook(&self, webhook: &Webhook, catalogue: &Catalogue) -> Result<(), HookError> {
        if self.events.is_empty() {
            return Err(HookError("`events` must list at least one event".into()));
        }
        for event in &self.events {
            catalogue
                .check(event)
                .map_err(|e| HookError(e.to_string()))?;
        }
        let url: http::Uri = webhook
            .url
            .parse()
            .map_err(|e| HookError(format!("webhook url `{}`: {e}", webhook.url)))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(HookError(format!(
                "webhook url `{}` must be an absolute http(s) URL",
                webhook.url
            )));
        }
        for (name, value) in &webhook.headers {
            let lower = name.to_ascii_lowercase();
            if let Some(why) = refused_header(&lower) {
                return Err(HookError(format!(
                    "header `{name}` {why} and cannot be configured"
                )));
            }
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HookError(format!("`{name}` is not a header name")))?;
            http::HeaderValue::from_str(value)
                .map_err(|_| HookError(format!("header `{name}` has an invalid value")))?;
        }
        webhook.retry.validate().map_err(HookError)?;
        if webhook.rate_limit == Some(0) {
            return Err(HookError(
                "webhook rate_limit must be at least 1 request per second".into(),
            ));
        }
        if webhook.concurrency == 0 {
            return Err(HookError("webhook concurrency must be at least 1".into()));
        }
        for entry in &webhook.secrets {
            WebhookSecret::parse(&entry.secret).map_err(|e| HookError(e.to_string()))?;
        }
        Ok(())
    }

    /// The store's record of this hook under `id`, created now.
    pub fn to_record(&self, id: &str) -> crate::store::HookRecord {
        let mut record = crate::store::HookRecord::new(
            id,
            self.events.clone(),
            serde_json::to_value(self).expect("a hook spec serialises"),
        );
        record.ordered = self.webhook.as_ref().is_some_and(|w| w.ordered);
        record
    }

    /// The Standard Webhooks secrets that sign at `now`.
    pub fn active_secrets(&self, now: Millis) -> Vec<WebhookSecret> {
        self.webhook
            .iter()
            .flat_map(|w| &w.secrets)
            .filter(|e| e.expires_at.is_none_or(|at| at > now))
            .filter_map(|e| WebhookSecret::parse(&e.secret).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_hook_parses_with_defaults_and_is_validated() {
        let catalogue = Catalogue::default();
        let spec = HookSpec::from_json(
            json!({"events": ["PostSignIn"], "webhook": {"url": "https://example.com/hook"}}),
            &catalogue,
        )
        .unwrap();
        let webhook = spec.webhook.unwrap();
        assert_eq!(webhook.timeout, Duration::from_secs(10));
        assert_eq!(webhook.concurrency, 4);
        let bad = |v| HookSpec::from_json(v, &catalogue).unwrap_err().to_string();
        assert!(
            bad(json!({"events": ["PostSignin"], "webhook": {"url": "https://x"}}))
                .contains("did you mean")
        );
        assert!(
            bad(json!({"events": [], "webhook": {"url": "https://x"}})).contains("at least one")
        );
        assert!(
            bad(json!({"events": ["PostSignIn"], "webhook": {"url": "ftp://x"}}))
                .contains("http(s)")
        );
        assert!(bad(json!({"events": ["PostSignIn"], "webhook": {"url": "https://x", "headers": {"Webhook-Id": "1"}}}))
            .contains("signature scheme"));
        for framing in ["Host", "Content-Length", "Transfer-Encoding", "Connection"] {
            let message = bad(json!({"events": ["PostSignIn"],
                "webhook": {"url": "https://x", "headers": {framing: "x"}}}));
            assert!(
                message.contains("hop-by-hop or framing"),
                "{framing}: {message}"
            );
        }
        assert!(bad(
            json!({"events": ["PostSignIn"], "webhook": {"url": "https://x",
            "retry": {"jitter": 5.0}}})
        )
        .contains("jitter must be from 0 to 1"));
        assert!(bad(
            json!({"events": ["PostSignIn"], "webhook": {"url": "https://x"}, "extra": 1})
        )
        .contains("unknown field"));
        assert!(bad(json!({"events": ["PostSignIn"], "webhook": {"url": "https://x", "secrets": [{"secret": "nope"}]}}))
            .contains("whsec_"));
        assert!(bad(json!({"events": ["PostSignIn"]})).contains("needs a `webhook`"));
        assert!(
            bad(json!({"events": ["PostSignIn"], "sync": {"trigger": "PreRegistration"}}))
                .contains("takes no `events`")
        );
        assert!(bad(json!({"sync": {"trigger": "a b"}})).contains("sync trigger"));
        let sync = HookSpec::from_json(json!({"sync": {"trigger": "PreRegistration"}}), &catalogue)
            .unwrap()
            .sync
            .unwrap();
        assert_eq!((sync.order, sync.on_error), (0, OnError::Deny));
    }

    #[test]
    fn expired_secrets_stop_signing() {
        let (old, new) = (
            WebhookSecret::generate().to_text(),
            WebhookSecret::generate().to_text(),
        );
        let spec = HookSpec::from_json(
            json!({"events": ["PostSignIn"], "webhook": {"url": "https://x", "secrets": [
                {"secret": new}, {"secret": old, "expires_at": 2000}
            ]}}),
            &Catalogue::default(),
        )
        .unwrap();
        assert_eq!(
            spec.active_secrets(1000).len(),
            2,
            "during the grace period both sign"
        );
        assert_eq!(spec.active_secrets(3000).len(), 1);
    }

    #[test]
    fn a_rotated_logto_key_signs_only_once_the_grace_ends() {
        let mut webhook: Webhook =
            serde_json::from_value(json!({"url": "https://x", "signing_key": "old"})).unwrap();
        webhook.next_signing_key = Some(NextSigningKey {
            key: "new".into(),
            active_from: 1_000,
        });
        assert_eq!(webhook.logto_key(999), Some("old"), "the grace period");
        assert_eq!(webhook.logto_key(1_000), Some("new"), "after it");
    }
}
