//! Write-only secrets in hook definitions: Logto signing keys, Standard
//! Webhooks secrets and the `secrets` steps are granted.
//!
//! Every read of a hook shows each secret masked, as its last four
//! characters and a fingerprint (the first 8 hex digits of its SHA-256), so
//! an operator can tell keys apart without seeing them. The full values are
//! shown when a hook is created or its keys rotated, and by an explicit
//! call that reveals them. A definition sent back with a masked value in
//! a secret's place keeps the stored secret, so read-modify-write is safe.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The JSON pointers of every secret in a hook definition.
fn secret_paths(spec: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    let webhook = &spec["webhook"];
    if webhook["signing_key"].is_string() {
        paths.push("/webhook/signing_key".to_string());
    }
    if webhook["next_signing_key"]["key"].is_string() {
        paths.push("/webhook/next_signing_key/key".to_string());
    }
    for (i, entry) in webhook["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if entry["secret"].is_string() {
            paths.push(format!("/webhook/secrets/{i}/secret"));
        }
    }
    for (i, step) in spec["steps"].as_array().into_iter().flatten().enumerate() {
        for key in step["secrets"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            let key = key.replace('~', "~0").replace('/', "~1");
            paths.push(format!("/steps/{i}/secrets/{key}"));
        }
    }
    paths
}

/// How a secret is shown: its last four characters and its fingerprint.
pub fn mask(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let digest = Sha256::digest(secret.as_bytes());
    format!("…{tail} (sha256:{})", &hex::encode(digest)[..8])
}

/// `spec` with every secret masked.
pub fn masked(spec: &Value) -> Value {
    let mut shown = spec.clone();
    for path in secret_paths(spec) {
        if let Some(value) = shown.pointer_mut(&path) {
            if let Some(secret) = value.as_str() {
                *value = Value::String(mask(secret));
            }
        }
    }
    shown
}

/// Put back into `new` each stored secret of `old` that `new` holds only
/// in its masked form, wherever it now stands (a step moved, a key
/// renamed): the fingerprint in a mask names the one secret it came from.
pub fn keep_masked(new: &mut Value, old: &Value) {
    let stored: std::collections::HashMap<String, &str> = secret_paths(old)
        .iter()
        .filter_map(|path| old.pointer(path).and_then(Value::as_str))
        .map(|secret| (mask(secret), secret))
        .collect();
    for path in secret_paths(new) {
        if let Some(value) = new.pointer_mut(&path) {
            if let Some(secret) = value.as_str().and_then(|shown| stored.get(shown)) {
                *value = Value::String(secret.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({"events": ["PostSignIn"],
               "steps": [{"plugin": "geo", "secrets": {"api-key": "k3y-123456", "a/b": "x"}}],
               "webhook": {"url": "https://x", "signing_key": "abcdefgh12345678",
                           "next_signing_key": {"key": "zzzz9999", "active_from": 1},
                           "secrets": [{"secret": "whsec_AAAABBBB"}]}})
    }

    #[test]
    fn every_secret_is_masked_and_a_masked_one_sent_back_is_kept() {
        let stored = spec();
        let shown = masked(&stored);
        let text = shown.to_string();
        for secret in [
            "abcdefgh12345678",
            "zzzz9999",
            "whsec_AAAABBBB",
            "k3y-123456",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(shown["webhook"]["signing_key"]
            .as_str()
            .unwrap()
            .starts_with("…5678 (sha256:"));
        assert_eq!(shown["webhook"]["url"], "https://x");

        let mut sent_back = shown.clone();
        sent_back["webhook"]["url"] = json!("https://y");
        keep_masked(&mut sent_back, &stored);
        let mut expected = stored.clone();
        expected["webhook"]["url"] = json!("https://y");
        assert_eq!(sent_back, expected);

        // Steps reordered: each masked secret finds its own.
        let mut two = stored.clone();
        two["steps"] = json!([{"plugin": "a", "secrets": {"k": "first-secret"}},
                              {"plugin": "b", "secrets": {"k": "second-secret"}}]);
        let mut swapped = masked(&two);
        swapped["steps"].as_array_mut().unwrap().reverse();
        keep_masked(&mut swapped, &two);
        assert_eq!(swapped["steps"][0]["secrets"]["k"], "second-secret");
        assert_eq!(swapped["steps"][1]["secrets"]["k"], "first-secret");

        let mut replaced = shown;
        replaced["webhook"]["signing_key"] = json!("a-new-key-of-mine");
        keep_masked(&mut replaced, &stored);
        assert_eq!(replaced["webhook"]["signing_key"], "a-new-key-of-mine");
    }
}
