//! `redact`: removes or masks personal data before a payload leaves.
//!
//! Config:
//! - `paths`: comma-separated dotted paths, for example `userIp,user.primaryEmail`;
//! - `mode`: `mask` (default) replaces each value with `mask`, `remove` deletes it;
//! - `mask`: the replacement text, default `[redacted]`.
//!
//! Paths that are absent from a payload are skipped.

use wasmhooks_sdk::{config, export_hook, paths, Error, Event, Hook, Outcome, Value};

struct Redact;

impl Hook for Redact {
    fn handle(mut event: Event) -> Result<Outcome, Error> {
        let targets = config::list("paths");
        if targets.is_empty() {
            return Err(Error::new("config `paths` must list at least one path"));
        }
        let mask = config::get("mask").unwrap_or_else(|| "[redacted]".into());
        let mode = config::get("mode").unwrap_or_else(|| "mask".into());
        for path in &targets {
            match mode.as_str() {
                "remove" => {
                    paths::remove(&mut event.payload, path);
                }
                "mask" => {
                    if let Some(value) = paths::get_mut(&mut event.payload, path) {
                        *value = Value::String(mask.clone());
                    }
                }
                other => {
                    return Err(Error::new(format!(
                        "config `mode` is `{other}`; expected `mask` or `remove`"
                    )))
                }
            }
        }
        Ok(Outcome::payload(event.payload))
    }
}

export_hook!(Redact);
