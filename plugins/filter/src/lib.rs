//! `filter`: cancels the delivery unless the payload matches a condition.
//!
//! Config:
//! - `path`: the dotted path to test, for example `user.primaryEmail` or `event`;
//! - one condition: `equals` (a JSON value, or a string), `one-of`
//!   (comma-separated strings), `ends-with` (a string suffix), or `exists`
//!   (`true` or `false`);
//! - `negate=true` inverts the condition (keep events that do NOT match).

use wasmhooks_sdk::{config, export_hook, paths, Error, Event, Hook, Outcome, Value};

/// Whether `value` (absent when `None`) meets the condition in the config.
fn matches(value: Option<&Value>) -> Result<bool, Error> {
    if let Some(expected) = config::get("equals") {
        let expected = wasmhooks_sdk::serde_json::from_str(&expected)
            .unwrap_or(Value::String(expected.clone()));
        return Ok(value == Some(&expected));
    }
    if config::get("one-of").is_some() {
        let options = config::list("one-of");
        return Ok(value
            .and_then(Value::as_str)
            .is_some_and(|s| options.iter().any(|o| o == s)));
    }
    if let Some(suffix) = config::get("ends-with") {
        return Ok(value
            .and_then(Value::as_str)
            .is_some_and(|s| s.ends_with(&suffix)));
    }
    if let Some(exists) = config::get("exists") {
        let exists: bool = exists
            .parse()
            .map_err(|_| Error::new("config `exists` must be `true` or `false`"))?;
        return Ok(value.is_some_and(|v| !v.is_null()) == exists);
    }
    Err(Error::new(
        "config needs one condition: `equals`, `one-of`, `ends-with` or `exists`",
    ))
}

struct Filter;

impl Hook for Filter {
    fn handle(event: Event) -> Result<Outcome, Error> {
        let path = config::require("path")?;
        let negate = config::get("negate").as_deref() == Some("true");
        if matches(paths::get(&event.payload, &path))? != negate {
            Ok(Outcome::unchanged())
        } else {
            Ok(Outcome::cancel(format!(
                "filtered out: `{path}` did not match"
            )))
        }
    }
}

export_hook!(Filter);
