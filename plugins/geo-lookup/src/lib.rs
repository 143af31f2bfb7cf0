//! `geo-lookup`: asks an HTTP API where the user's IP address is and adds the
//! answer to the payload.
//!
//! Config:
//! - `url`: the API, with `{ip}` standing for the address, for example
//!   `https://geo.example.com/v1/lookup?ip={ip}`; the host must be granted;
//! - `field`: where to put the answer, default `geo`;
//! - `ip-path`: where the address is, default `userIp` (Logto's interaction events).
//!
//! A secret `api-key`, when granted, is sent as `authorization: Bearer <key>`.
//! Events without an address pass unchanged.

use wasmhooks_sdk::http::Request;
use wasmhooks_sdk::{config, export_hook, log, paths, secrets, Error, Event, Hook, Outcome, Value};

struct GeoLookup;

impl Hook for GeoLookup {
    fn handle(mut event: Event) -> Result<Outcome, Error> {
        let url = config::require("url")?;
        let ip_path = config::get("ip-path").unwrap_or_else(|| "userIp".into());
        let field = config::get("field").unwrap_or_else(|| "geo".into());
        let Some(ip) = paths::get(&event.payload, &ip_path).and_then(Value::as_str) else {
            log::info(&format!("no address at `{ip_path}`; payload unchanged"));
            return Ok(Outcome::unchanged());
        };
        let mut request = Request::new("GET", &url.replace("{ip}", ip));
        if let Some(key) = secrets::get("api-key") {
            request = request.header("authorization", &format!("Bearer {key}"));
        }
        let response = request.send()?;
        if !response.is_success() {
            return Err(Error::new(format!("geo API answered {}", response.status)));
        }
        let answer: Value = response.json()?;
        log::info(&format!("looked up {ip}"));
        paths::set(&mut event.payload, &field, answer);
        Ok(Outcome::payload(event.payload))
    }
}

export_hook!(GeoLookup);
