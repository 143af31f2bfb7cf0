//! Configuration values the hook grants this plugin.

use crate::bindings::wasmhooks::hook::config as host;
use crate::Error;

/// The value of `key`, or `None` when the hook does not set it.
pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

/// The value of `key`, or an error naming the missing key.
pub fn require(key: &str) -> Result<String, Error> {
    get(key).ok_or_else(|| Error::new(format!("config value `{key}` is not set")))
}

/// Every key and value the hook grants, sorted by key.
pub fn all() -> Vec<(String, String)> {
    host::get_all()
}

/// The value of `key` split on commas, trimmed, empty items dropped; empty
/// when the key is not set. Handy for list-valued settings.
pub fn list(key: &str) -> Vec<String> {
    get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}
