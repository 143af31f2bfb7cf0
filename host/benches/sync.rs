//! Synchronous trigger latency, p50 and p99 over 10,000 sequential calls,
//! with one wasm plugin (`enrich`, answering a merge patch) on the trigger:
//!
//! - in process: `Host::call_sync`, beside its baseline, the same plugin
//!   called directly on the runtime (no trigger lookup, patch composition
//!   or metrics);
//! - over HTTP: `POST /v1/sync/{trigger}` on the real API router on
//!   127.0.0.1 with a keep-alive client, beside its baseline, a bare axum
//!   JSON echo route on the same kind of listener and client.
//!
//! Run: `cargo bench -p wasmhooks --bench sync` (unset RUST_BACKTRACE).

use std::sync::Arc;
mod common;

use common::percentiles;
use serde_json::{json, Value};
use wasmhooks::api::{self, BodyLimits, Tokens};
use wasmhooks::host::{Host, HostConfig};
use wasmhooks::runtime::{Grants, PluginEvent};
use wasmhooks_testkit::Receiver;

const CALLS: usize = 10_000;
const WARMUP: usize = 500;

fn payload() -> Value {
    json!({"email": "ada@example.com", "username": "ada", "interactionEvent": "Register",
           "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36",
           "userIp": "203.0.113.7", "application": {"id": "app_3f2e1d0c9b8a", "name": "Console"}})
}

/// Send `request`, expect a 2xx, and read the whole answer.
async fn post(request: reqwest::RequestBuilder) {
    let response = request.send().await.unwrap();
    assert!(response.status().is_success());
    response.bytes().await.unwrap();
}

fn main() {
    let runtime = common::two_workers();
    let rows = runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::start(HostConfig::new(dir.path())).await.unwrap();
        let bytes = std::fs::read(wasmhooks_testkit::plugin("enrich")).unwrap();
        host.put_plugin("enrich", bytes.clone()).await.unwrap();
        host.create_hook(
            Some("plan".into()),
            json!({"sync": {"trigger": "PreRegistration"},
                   "steps": [{"plugin": "enrich", "config": {"customData.plan": "free"}}]}),
        )
        .await
        .unwrap();

        // In process: the plugin alone, then the trigger.
        let plugin = wasmhooks::runtime::Runtime::new(Default::default())
            .unwrap()
            .load(&bytes)
            .unwrap();
        let grants = Arc::new(Grants {
            config: [("customData.plan".to_string(), "free".to_string())].into(),
            ..Grants::default()
        });
        let event = PluginEvent {
            id: "sync_1".into(),
            name: "PreRegistration".into(),
            created_at: "2026-11-28T00:00:00.000Z".into(),
            payload: serde_json::value::RawValue::from_string(payload().to_string()).unwrap(),
            hook_id: "plan".into(),
            trigger: Some("PreRegistration".into()),
        };
        let bare = percentiles(CALLS, WARMUP, || async {
            plugin.call(&event, &grants).await.result.unwrap();
        })
        .await;
        let in_process = percentiles(CALLS, WARMUP, || async {
            let decision = host
                .call_sync("PreRegistration", payload(), None)
                .await
                .unwrap();
            assert!(decision.patch.is_some_and(|p| !p.0.is_empty()));
        })
        .await;

        // Over HTTP: a bare echo route, then the API.
        let client = reqwest::Client::new();
        let echo = Receiver::start(axum::Router::new().route(
            "/echo",
            axum::routing::post(|body: axum::Json<Value>| async move { body }),
        ))
        .await;
        let body = json!({"payload": payload()});
        let echo_url = echo.url("/echo");
        let echo_http =
            percentiles(CALLS, WARMUP, || post(client.post(&echo_url).json(&body))).await;
        let limits = BodyLimits {
            json: 1 << 20,
            plugin: 32 << 20,
        };
        let api = Receiver::start(api::router(
            host.clone(),
            Tokens::new(&["bench-token".into()], &[]),
            limits,
        ))
        .await;
        let sync_url = api.url("/v1/sync/PreRegistration");
        let http = percentiles(CALLS, WARMUP, || {
            post(
                client
                    .post(&sync_url)
                    .bearer_auth("bench-token")
                    .json(&body),
            )
        })
        .await;
        host.shutdown().await;
        [
            ("plugin call alone (baseline)", bare),
            ("call_sync in process", in_process),
            ("HTTP JSON echo (baseline)", echo_http),
            ("POST /v1/sync over HTTP", http),
        ]
    });
    println!("sync trigger with one wasm plugin, {CALLS} sequential calls");
    println!(
        "{:<32} {:>10} {:>10} {:>10}",
        "", "p50 µs", "p99 µs", "p99 ratio"
    );
    for (i, (name, (p50, p99))) in rows.iter().enumerate() {
        let baseline = rows[i - i % 2].1 .1;
        println!(
            "{name:<32} {:>10.1} {:>10.1} {:>10.2}",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            p99.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}
