//! Test fixture, not an example: a plugin that misbehaves in the way its
//! config `mode` names, so the host's limits can be proven.
//!
//! Modes: `loop`, `memory`, `recursion`, `huge-output`, `panic`, `http`
//! (fetches config `url`), `log-flood`, `deny-async` (answers a synchronous
//! outcome to an asynchronous call), `ok`.

use std::hint::black_box;

use wasmhooks_sdk::{config, export_hook, http, log, Error, Event, Hook, Outcome, Value};

#[inline(never)]
fn recurse(n: u64) -> u64 {
    if black_box(n) == u64::MAX {
        return 0;
    }
    black_box(recurse(n + 1)) + 1
}

struct Hostile;

impl Hook for Hostile {
    fn handle(event: Event) -> Result<Outcome, Error> {
        match config::require("mode")?.as_str() {
            "loop" => {
                let mut i: u64 = 0;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recursion" => Ok(Outcome::payload(Value::from(recurse(0)))),
            "huge-output" => Ok(Outcome::payload(Value::String("x".repeat(8 << 20)))),
            "panic" => panic!("hostile plugin panicked on purpose"),
            "http" => {
                let response = http::get(&config::require("url")?)?;
                Ok(Outcome::payload(Value::from(response.status)))
            }
            "log-flood" => {
                for i in 0..100_000 {
                    log::info(&format!("line {i} of a flood of log lines"));
                }
                Ok(Outcome::unchanged())
            }
            "deny-async" => Ok(Outcome::deny("nope", "denied")),
            "ok" => Ok(Outcome::payload(event.payload)),
            other => Err(Error::new(format!("unknown mode `{other}`"))),
        }
    }
}

export_hook!(Hostile);
