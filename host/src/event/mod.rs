//! Events: the built-in catalogue of Logto's event names, custom names an
//! embedding platform registers, and the payload as a receiver gets it.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde_json::value::RawValue;
use serde_json::Value;

/// Logto's event names, built in.
pub const LOGTO_EVENTS: [&str; 31] = [
    // Interaction events.
    "PostRegister",
    "PostSignIn",
    "PostSignInAdaptiveMfaTriggered",
    "PostResetPassword",
    // Data events.
    "User.Created",
    "User.Deleted",
    "User.Data.Updated",
    "User.SuspensionStatus.Updated",
    "TrustedDevice.Created",
    "TrustedDevice.Deleted",
    "Role.Created",
    "Role.Deleted",
    "Role.Data.Updated",
    "Role.Scopes.Updated",
    "Scope.Created",
    "Scope.Deleted",
    "Scope.Data.Updated",
    "Organization.Created",
    "Organization.Deleted",
    "Organization.Data.Updated",
    "Organization.Membership.Updated",
    "OrganizationRole.Created",
    "OrganizationRole.Deleted",
    "OrganizationRole.Data.Updated",
    "OrganizationRole.Scopes.Updated",
    "OrganizationScope.Created",
    "OrganizationScope.Deleted",
    "OrganizationScope.Data.Updated",
    // Exception events.
    "Identifier.Lockout",
    "Message.RateLimited",
    "Grant.LimitExceeded",
];

/// Why an event name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Neither built in nor registered.
    #[error("unknown event `{name}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Unknown {
        /// The name given.
        name: String,
        /// The closest known name, when one is close.
        suggestion: Option<String>,
    },
    /// A custom name that cannot be registered.
    #[error("invalid custom event name `{0}`: use 1 to 128 letters, digits, `.`, `_` or `-`, starting with a letter")]
    InvalidName(String),
}

/// The event names a host accepts: Logto's catalogue plus registered custom
/// names. A typo is an error, never a silent no-op.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    custom: BTreeSet<String>,
}

impl Catalogue {
    /// The built-in catalogue with these custom names registered.
    pub fn with_custom<I: IntoIterator<Item = S>, S: Into<String>>(
        names: I,
    ) -> Result<Self, EventError> {
        let mut catalogue = Catalogue::default();
        for name in names {
            catalogue.register(name.into())?;
        }
        Ok(catalogue)
    }

    /// Register a custom event name.
    pub fn register(&mut self, name: String) -> Result<(), EventError> {
        let valid = !name.is_empty()
            && name.len() <= 128
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid {
            return Err(EventError::InvalidName(name));
        }
        self.custom.insert(name);
        Ok(())
    }

    /// The registered custom names.
    pub fn custom(&self) -> impl Iterator<Item = &str> {
        self.custom.iter().map(String::as_str)
    }

    /// Whether `name` is built in or registered.
    pub fn contains(&self, name: &str) -> bool {
        LOGTO_EVENTS.contains(&name) || self.custom.contains(name)
    }

    /// Accept a known name; refuse an unknown one, suggesting the closest.
    pub fn check(&self, name: &str) -> Result<(), EventError> {
        if self.contains(name) {
            return Ok(());
        }
        let suggestion = LOGTO_EVENTS
            .iter()
            .copied()
            .chain(self.custom())
            .map(|known| {
                (
                    edit_distance(&known.to_ascii_lowercase(), &name.to_ascii_lowercase()),
                    known,
                )
            })
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, known)| known.to_string());
        Err(EventError::Unknown {
            name: name.to_string(),
            suggestion,
        })
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// The body a webhook receiver gets, as Logto shapes it: the payload's own
/// keys in their order, `event` and `createdAt` filled in when the producer
/// left them out, and `hookId` appended last. A payload that is not a JSON
/// object is sent under `data`. Only the top level is parsed: nested values
/// pass through as they came, so shaping costs little however deep they go.
pub fn delivery_body(event_name: &str, created_at: &str, payload: &str, hook_id: &str) -> String {
    type Raw = Box<RawValue>;
    let text = |s: &str| serde_json::value::to_raw_value(s).expect("a string is JSON");
    let mut body: IndexMap<String, Raw> = match serde_json::from_str(payload) {
        Ok(map) => map,
        Err(_) => {
            let data = serde_json::from_str::<Raw>(payload)
                .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"));
            IndexMap::from([("data".to_string(), data)])
        }
    };
    // The event's real name, whatever the payload says: a payload field
    // `event` keeps its place but never renames the event.
    match body.get_mut("event") {
        Some(event) => *event = text(event_name),
        None => {
            body.shift_insert(0, "event".into(), text(event_name));
        }
    }
    if !body.contains_key("createdAt") {
        let at = body
            .keys()
            .position(|k| k == "interactionEvent")
            .map_or(1, |i| i + 1)
            .min(body.len());
        body.shift_insert(at, "createdAt".into(), text(created_at));
    }
    body.shift_remove("hookId");
    body.insert("hookId".into(), text(hook_id));
    serde_json::to_string(&body).expect("JSON values serialise")
}

/// A made-up payload shaped like the event's real ones, for hook tests
/// (as Logto's "send test payload" does): interaction events carry a user,
/// a session and an application; data events a request and its data.
pub fn sample_payload(event_name: &str) -> Value {
    let user = serde_json::json!({
        "id": "sample_user_id", "username": "sample", "primaryEmail": "sample@example.com",
        "name": "Sample User", "customData": {}
    });
    if event_name.contains('.') {
        serde_json::json!({
            "event": event_name, "userAgent": "Mozilla/5.0", "ip": "203.0.113.1",
            "path": "/api/sample", "method": "POST", "status": 200,
            "data": user
        })
    } else {
        serde_json::json!({
            "event": event_name, "interactionEvent": "SignIn", "sessionId": "sample_session_id",
            "userAgent": "Mozilla/5.0", "userId": "sample_user_id", "userIp": "203.0.113.1",
            "user": user,
            "application": {"id": "sample_app_id", "type": "SPA", "name": "Sample app", "description": null}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn catalogue_knows_logto_and_registered_names() {
        let catalogue = Catalogue::with_custom(["Billing.Invoice.Paid"]).unwrap();
        assert!(catalogue.check("PostSignIn").is_ok());
        assert!(catalogue.check("Billing.Invoice.Paid").is_ok());
        let typo = catalogue.check("PostSignin").unwrap_err();
        assert_eq!(
            typo.to_string(),
            "unknown event `PostSignin` (did you mean `PostSignIn`?)"
        );
        assert!(matches!(
            catalogue.check("Nothing.Like.It"),
            Err(EventError::Unknown {
                suggestion: None,
                ..
            })
        ));
        assert!(Catalogue::with_custom(["bad name"]).is_err());
        assert_eq!(LOGTO_EVENTS.iter().collect::<BTreeSet<_>>().len(), 31);
    }

    #[test]
    fn body_keeps_key_order_and_appends_hook_id_last() {
        let payload = json!({"event": "PostSignIn", "interactionEvent": "SignIn", "sessionId": "s", "userId": "u"});
        let body = delivery_body(
            "PostSignIn",
            "2026-08-21T12:00:00.000Z",
            &payload.to_string(),
            "hook1",
        );
        assert_eq!(
            body,
            r#"{"event":"PostSignIn","interactionEvent":"SignIn","createdAt":"2026-08-21T12:00:00.000Z","sessionId":"s","userId":"u","hookId":"hook1"}"#
        );
        let data = json!({"createdAt": "2026-01-01T00:00:00.000Z", "hookId": "stale", "data": {"id": "o1"}});
        let body = delivery_body("Organization.Created", "x", &data.to_string(), "hook2");
        assert_eq!(
            body,
            r#"{"event":"Organization.Created","createdAt":"2026-01-01T00:00:00.000Z","data":{"id":"o1"},"hookId":"hook2"}"#
        );
    }

    #[test]
    fn a_payload_field_never_renames_the_event() {
        let payload = json!({"event": "PostSignIn", "userId": "u"});
        let body = delivery_body("PostRegister", "x", &payload.to_string(), "hook1");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["event"], "PostRegister");
        assert_eq!(body.as_object().unwrap().keys().next().unwrap(), "event");
    }

    #[test]
    fn nested_values_pass_through_and_other_payloads_go_under_data() {
        let body = delivery_body(
            "User.Created",
            "t",
            r#"{"data":{"n":1.50, "s":"\u00e9"}}"#,
            "h",
        );
        assert_eq!(
            body,
            r#"{"event":"User.Created","createdAt":"t","data":{"n":1.50, "s":"\u00e9"},"hookId":"h"}"#
        );
        let body = delivery_body("User.Created", "t", "[1,2]", "h");
        assert_eq!(
            body,
            r#"{"event":"User.Created","createdAt":"t","data":[1,2],"hookId":"h"}"#
        );
        let body = delivery_body("User.Created", "t", "not json", "h");
        assert_eq!(
            body,
            r#"{"event":"User.Created","createdAt":"t","data":null,"hookId":"h"}"#
        );
    }
}
