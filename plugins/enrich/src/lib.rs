//! `enrich`: adds the fields its hook config lists to every payload. In a
//! synchronous trigger it answers `allow` with a merge patch of those
//! fields, so the caller sees exactly what changed.
//!
//! Each config key is a dotted path and its value the field's value, parsed
//! as JSON when it is valid JSON and kept as a string otherwise:
//! `tenant=acme`, `meta.environment=production`, `meta.region="eu"`,
//! `flags={"beta":true}`.

use wasmhooks_sdk::{config, export_hook, paths, Error, Event, Hook, Outcome, Value};

/// Add each `(path, value)` field to `payload`.
pub fn enrich(payload: &mut Value, fields: &[(String, String)]) {
    for (path, raw) in fields {
        let value =
            wasmhooks_sdk::serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()));
        paths::set(payload, path, value);
    }
}

struct Enrich;

impl Hook for Enrich {
    fn handle(mut event: Event) -> Result<Outcome, Error> {
        if event.is_sync() {
            let mut patch = Value::Object(Default::default());
            enrich(&mut patch, &config::all());
            return Ok(Outcome::allow_merge(patch));
        }
        enrich(&mut event.payload, &config::all());
        Ok(Outcome::payload(event.payload))
    }
}

export_hook!(Enrich);
