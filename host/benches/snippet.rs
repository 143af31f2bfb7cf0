//! Per-call cost of a 1 KB JSON transform written three ways, in one run:
//! native Rust, the `enrich` wasm plugin, and a JavaScript snippet on the
//! built-in engine. Both sandboxed forms run as the host runs them: a fresh
//! instance per call, under the default limits. Prints p50 and p99.
//!
//! Run: `cargo bench -p wasmhooks --bench snippet` (unset RUST_BACKTRACE).

use std::sync::Arc;
mod common;

use common::percentiles;
use serde_json::{json, Value};
use wasmhooks::hook::SNIPPET_KEY;
use wasmhooks::runtime::{Grants, Outcome, Plugin, PluginEvent, Runtime, RuntimeConfig};

const CALLS: usize = 2_000;
const WARMUP: usize = 50;

const SNIPPET: &str = r#"export default function (event, ctx) {
  const { user, ...rest } = event.payload;
  event.payload = { ...rest, user: { ...user, tenant: ctx.config.tenant }, meta: { source: "snippet", region: user?.customData?.region ?? "eu" } };
  return event;
}"#;

fn payload() -> Value {
    json!({
        "event": "PostSignIn", "createdAt": "2026-11-28T10:00:00.000Z", "sessionId": "sess_6f1c2a9b4d3e",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        "userIp": "203.0.113.7", "interactionEvent": "SignIn", "userId": "u_8a7d6c5b4a39",
        "user": {"id": "u_8a7d6c5b4a39", "username": "ada", "primaryEmail": "ada.lovelace@example.com",
                 "name": "Ada Lovelace", "avatar": "https://cdn.example.com/avatars/u_8a7d6c5b4a39.png",
                 "customData": {"plan": "pro", "seats": 12, "flags": ["beta", "sso"]},
                 "identities": {"github": {"userId": "1234567", "details": {"login": "ada"}}}},
        "application": {"id": "app_3f2e1d0c9b8a", "name": "Analytical Engine Console", "type": "SPA",
                        "description": "Operator console for the difference and analytical engines",
                        "redirectUris": ["https://console.example.com/callback", "https://console.example.com/silent"]},
        "hookId": "hook_1"
    })
}

fn native(payload: &str) -> String {
    let mut value: Value = serde_json::from_str(payload).unwrap();
    value["user"]["tenant"] = json!("acme");
    value["meta"] = json!({"source": "native", "region": "eu"});
    value.to_string()
}

async fn plugin_call(plugin: &Plugin, event: &PluginEvent, grants: &Arc<Grants>) {
    match plugin.call(event, grants).await.result {
        Ok(Outcome::Continue {
            payload: Some(_), ..
        }) => {}
        other => panic!("unexpected {other:?}"),
    }
}

fn main() {
    let text = payload().to_string();
    println!(
        "1 KB JSON transform ({} bytes), {CALLS} calls each, fresh instance per call",
        text.len()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = runtime.block_on(async {
        let wasm = Runtime::new(RuntimeConfig::default()).unwrap();
        let event = PluginEvent {
            id: "evt_1".into(),
            name: "PostSignIn".into(),
            created_at: "2026-11-28T10:00:00.000Z".into(),
            payload: serde_json::value::RawValue::from_string(text.clone()).unwrap(),
            hook_id: "hook_1".into(),
            trigger: None,
        };
        let native = percentiles(CALLS, WARMUP, || async {
            std::hint::black_box(native(std::hint::black_box(&text)));
        })
        .await;
        let enrich = wasm
            .load(&std::fs::read(wasmhooks_testkit::plugin("enrich")).unwrap())
            .unwrap();
        let grants = Arc::new(Grants {
            config: [
                ("user.tenant".to_string(), "acme".to_string()),
                ("meta.source".to_string(), "plugin".to_string()),
            ]
            .into(),
            ..Grants::default()
        });
        let plugin = percentiles(CALLS, WARMUP, || plugin_call(&enrich, &event, &grants)).await;
        let engine = wasmhooks::pipeline::load_js_engine(&wasm).await.unwrap();
        let snippet_grants = Arc::new(Grants {
            config: [
                ("tenant".to_string(), "acme".to_string()),
                (SNIPPET_KEY.to_string(), SNIPPET.to_string()),
            ]
            .into(),
            ..Grants::default()
        });
        let snippet = percentiles(CALLS, WARMUP, || {
            plugin_call(&engine, &event, &snippet_grants)
        })
        .await;
        [
            ("native Rust", native),
            ("wasm plugin (enrich)", plugin),
            ("JavaScript snippet", snippet),
        ]
    });
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "", "p50 µs", "p99 µs", "p50 x native"
    );
    let base = rows[0].1 .0.as_secs_f64();
    for (name, (p50, p99)) in rows {
        println!(
            "{name:<24} {:>10.1} {:>10.1} {:>10.1}",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            p50.as_secs_f64() / base
        );
    }
}
