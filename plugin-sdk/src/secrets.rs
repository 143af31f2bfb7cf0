//! Secrets the hook grants this plugin.

use crate::bindings::wasmhooks::hook::secrets as host;
use crate::Error;

/// The secret named `key`, or `None` when the hook does not grant it.
pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

/// The secret named `key`, or an error naming it.
pub fn require(key: &str) -> Result<String, Error> {
    get(key).ok_or_else(|| Error::new(format!("secret `{key}` is not granted")))
}
