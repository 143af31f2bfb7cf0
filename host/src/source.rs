//! Inbound sources: senders whose own signed webhooks wasmhooks accepts as
//! events. A Logto deployment points its webhook at
//! `POST /v1/inbound/{source}`; any Standard Webhooks sender does the same.
//! The request's signature is its authentication, so it needs no bearer
//! token; what passes is ingested exactly like `POST /v1/events`.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::delivery::signing::{verify_standard, WebhookSecret};
use crate::store::Millis;

/// How far a Standard Webhooks timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The header Logto signs its webhooks in.
pub const LOGTO_SIGNATURE: &str = "logto-signature-sha-256";

/// Which signing scheme a source speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// Logto's webhooks: `logto-signature-sha-256`, the hex HMAC-SHA256 of
    /// the body with the webhook's signing key; the event name is `event`.
    Logto,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature`; the event name is at `event_field`.
    StandardWebhooks,
}

/// A source's definition.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The sender's scheme.
    pub kind: SourceKind,
    /// Logto: the webhook's signing key, as Logto's console shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    /// Standard Webhooks: the sender's `whsec_` secrets (several while it
    /// rotates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Standard Webhooks: the top-level body field holding the event name
    /// (default `type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_field: Option<String>,
}

impl SourceSpec {
    /// Check the definition: each kind has its own keys and no others.
    pub fn validate(&self) -> Result<(), String> {
        match self.kind {
            SourceKind::Logto => {
                if self.signing_key.as_deref().is_none_or(str::is_empty) {
                    return Err("a `logto` source needs the webhook's `signing_key`".into());
                }
                if !self.secrets.is_empty() || self.event_field.is_some() {
                    return Err(
                        "a `logto` source takes only `signing_key`: `secrets` and `event_field` are for `standard-webhooks`".into(),
                    );
                }
            }
            SourceKind::StandardWebhooks => {
                if self.secrets.is_empty() {
                    return Err(
                        "a `standard-webhooks` source needs the sender's `secrets` (`whsec_...`)"
                            .into(),
                    );
                }
                for (i, secret) in self.secrets.iter().enumerate() {
                    WebhookSecret::parse(secret).map_err(|e| format!("secrets[{i}]: {e}"))?;
                }
                if self.signing_key.is_some() {
                    return Err("`signing_key` is for `logto` sources; use `secrets`".into());
                }
                if self.event_field.as_deref() == Some("") {
                    return Err("`event_field` must name a field".into());
                }
            }
        }
        Ok(())
    }

    /// The definition as reads show it: keys masked.
    pub fn masked(&self) -> SourceSpec {
        SourceSpec {
            signing_key: self.signing_key.as_deref().map(crate::secrets::mask),
            secrets: self
                .secrets
                .iter()
                .map(|s| crate::secrets::mask(s))
                .collect(),
            ..self.clone()
        }
    }

    /// Check a request's signature and read its event, at `now`.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: Millis,
    ) -> Result<Inbound, InboundError> {
        match self.kind {
            SourceKind::Logto => self.verify_logto(headers, body),
            SourceKind::StandardWebhooks => self.verify_standard(headers, body, now),
        }
    }

    fn verify_logto(&self, headers: &HeaderMap, body: &[u8]) -> Result<Inbound, InboundError> {
        let signature = header(headers, LOGTO_SIGNATURE)?;
        let signature = hex::decode(signature).map_err(|_| InboundError::BadSignature)?;
        let key = self.signing_key.as_deref().unwrap_or_default();
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
        mac.update(body);
        mac.verify_slice(&signature)
            .map_err(|_| InboundError::BadSignature)?;
        let payload = object(body)?;
        let event = event_name(&payload, "event")?;
        let created_at = match payload.get("createdAt") {
            None | Some(Value::Null) => None,
            Some(Value::String(at)) => Some(
                humantime::parse_rfc3339_weak(at)
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as Millis)
                    .ok_or_else(|| {
                        InboundError::Body(format!("`createdAt` `{at}` is not an RFC 3339 time"))
                    })?,
            ),
            Some(_) => return Err(InboundError::Body("`createdAt` must be a string".into())),
        };
        Ok(Inbound {
            event,
            payload,
            id: None,
            created_at,
        })
    }

    fn verify_standard(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: Millis,
    ) -> Result<Inbound, InboundError> {
        let id = header(headers, "webhook-id")?;
        let timestamp: i64 = header(headers, "webhook-timestamp")?
            .parse()
            .map_err(|_| InboundError::Body("`webhook-timestamp` is not a number".into()))?;
        let signature = header(headers, "webhook-signature")?;
        let skew = now / 1000 - timestamp;
        if skew.abs() > TOLERANCE_SECS {
            return Err(InboundError::Stale(skew));
        }
        let signed = self.secrets.iter().any(|secret| {
            WebhookSecret::parse(secret)
                .is_ok_and(|secret| verify_standard(&secret, id, timestamp, body, signature))
        });
        if !signed {
            return Err(InboundError::BadSignature);
        }
        let payload = object(body)?;
        let field = self.event_field.as_deref().unwrap_or("type");
        let event = event_name(&payload, field)?;
        Ok(Inbound {
            event,
            payload,
            id: Some(id.to_string()),
            created_at: Some(timestamp.saturating_mul(1000)),
        })
    }
}

/// An event a source sent, verified.
#[derive(Debug)]
pub struct Inbound {
    /// Its name.
    pub event: String,
    /// The body, as sent.
    pub payload: Value,
    /// The sender's message id (Standard Webhooks): sent again, it is a
    /// duplicate.
    pub id: Option<String>,
    /// When the sender says it happened.
    pub created_at: Option<Millis>,
}

/// Why an inbound request was refused.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// A signing header is missing.
    #[error("the `{0}` header is missing")]
    MissingHeader(&'static str),
    /// No key of the source signed the body as sent.
    #[error("the signature does not match the body and the source's keys")]
    BadSignature,
    /// The timestamp is too far from now (replayed, or a wrong clock).
    #[error("`webhook-timestamp` is {0} s from now; at most 300 s is accepted")]
    Stale(i64),
    /// The body or a header is not what the scheme sends.
    #[error("{0}")]
    Body(String),
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, InboundError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(InboundError::MissingHeader(name))
}

fn object(body: &[u8]) -> Result<Value, InboundError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(Value::Object(map)),
        Ok(_) => Err(InboundError::Body("the body must be a JSON object".into())),
        Err(e) => Err(InboundError::Body(format!("the body is not JSON: {e}"))),
    }
}

fn event_name(payload: &Value, field: &str) -> Result<String, InboundError> {
    payload
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| InboundError::Body(format!("the body has no event name in `{field}`")))
}

/// A source's definition from stored JSON text.
pub fn parse_stored(text: &str) -> Result<SourceSpec, String> {
    serde_json::from_str(text).map_err(|e| format!("stored source is unreadable: {e}"))
}

/// Keep the masked keys of `new` (as a read showed them) as stored in `old`.
pub fn keep_masked(new: &mut SourceSpec, old: &SourceSpec) {
    use crate::secrets::mask;
    if let (Some(key), Some(stored)) = (&new.signing_key, &old.signing_key) {
        if *key == mask(stored) {
            new.signing_key = Some(stored.clone());
        }
    }
    for secret in &mut new.secrets {
        if let Some(stored) = old.secrets.iter().find(|s| mask(s) == *secret) {
            *secret = stored.clone();
        }
    }
}

/// A source as the API shows it: its id, its definition, and the path its
/// sender posts to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    /// The source's id.
    pub id: String,
    /// The definition; keys in full only in the answer that sets them.
    #[serde(flatten)]
    pub spec: SourceSpec,
    /// Where the sender posts: `/v1/inbound/{id}`.
    pub inbound_path: String,
}

impl SourceView {
    /// Source `id` with `spec` as given.
    pub fn new(id: &str, spec: SourceSpec) -> Self {
        SourceView {
            id: id.to_string(),
            spec,
            inbound_path: format!("/v1/inbound/{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::signing::logto_signature;

    fn logto() -> SourceSpec {
        SourceSpec {
            kind: SourceKind::Logto,
            signing_key: Some("k3yk3yk3y".into()),
            secrets: vec![],
            event_field: None,
        }
    }

    #[test]
    fn a_logto_body_signed_with_the_key_passes_and_a_changed_one_does_not() {
        let body = br#"{"event":"PostSignIn","hookId":"h1","createdAt":"2026-12-03T10:00:00.000Z","userId":"u1"}"#;
        let mut headers = HeaderMap::new();
        headers.insert(
            LOGTO_SIGNATURE,
            logto_signature("k3yk3yk3y", body).parse().unwrap(),
        );
        let inbound = logto().verify(&headers, body, 0).unwrap();
        assert_eq!(inbound.event, "PostSignIn");
        assert_eq!(inbound.payload["hookId"], "h1");
        assert_eq!(inbound.created_at, Some(1_796_292_000_000));
        let tampered = br#"{"event":"PostSignIn","hookId":"h1","createdAt":"2026-12-03T10:00:00.000Z","userId":"u2"}"#;
        assert!(matches!(
            logto().verify(&headers, tampered, 0),
            Err(InboundError::BadSignature)
        ));
        assert!(matches!(
            logto().verify(&HeaderMap::new(), body, 0),
            Err(InboundError::MissingHeader(LOGTO_SIGNATURE))
        ));
    }

    #[test]
    fn each_kind_takes_its_own_keys() {
        let mut spec = logto();
        spec.secrets = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()];
        assert!(spec.validate().is_err());
        spec.kind = SourceKind::StandardWebhooks;
        spec.signing_key = None;
        assert!(spec.validate().is_ok());
        spec.secrets = vec!["nope".into()];
        assert!(spec.validate().unwrap_err().contains("secrets[0]"));
    }
}
