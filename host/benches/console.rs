//! Console pages' server time with 10,000 deliveries (and their attempts)
//! in a SQLite store: each page is rendered in process, through the same
//! router `wasmhooks serve` runs, and compared with the JSON API call that
//! reads the same data, measured in the same run. The target is under
//! 100 ms per page.
//!
//! Run: `cargo bench -p wasmhooks --bench console`.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::json;
use tower_service::Service;
use wasmhooks::api::{BodyLimits, Tokens};
use wasmhooks::host::{EmitEvent, Host, HostConfig};
use wasmhooks::store::{now_ms, DeliveryQuery};
use wasmhooks_testkit::script::{ok, Script};

const DELIVERIES: usize = 10_000;
const CALLS: usize = 60;
const TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// `GET path` through `app`; panics unless it answers 200.
async fn get(app: &Router, path: &str, cookie: Option<&str>) {
    let mut request = Request::get(path);
    match cookie {
        Some(cookie) => request = request.header(header::COOKIE, cookie),
        None => request = request.header(header::AUTHORIZATION, format!("Bearer {TOKEN}")),
    }
    let response = app
        .clone()
        .call(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
}

async fn sign_in(app: &Router) -> String {
    let request = Request::post("/console/sign-in")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={TOKEN}&next=%2Fconsole")))
        .unwrap();
    let response = app.clone().call(request).await.unwrap();
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runtime = common::two_workers();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = HostConfig::new(dir.path());
        config.private_networks = vec!["127.0.0.0/8".parse().unwrap()];
        let host = Host::start(config).await.unwrap();
        let receiver = Script::new(vec![ok()]);
        let endpoint = receiver.start().await;
        host.put_plugin("enrich", wasmhooks_testkit::plugin_bytes("enrich"))
            .await
            .unwrap();
        host.create_hook(
            Some("bench".into()),
            json!({"events": ["PostRegister"], "webhook": {"url": endpoint.url("/hook")},
                   "steps": [{"plugin": "enrich", "config": {"customData.plan": "free"}}]}),
        )
        .await
        .unwrap();
        println!("filling the store with {DELIVERIES} delivered events...");
        for batch in 0..DELIVERIES / 1000 {
            let events = (0..1000)
                .map(|i| {
                    EmitEvent::new(
                        "PostRegister",
                        json!({"user": {"id": format!("u{batch}-{i}"), "primaryEmail": "ada@example.com"}}),
                    )
                })
                .collect();
            host.emit_batch(events).await.unwrap();
        }
        receiver.wait_for(DELIVERIES, Duration::from_secs(300)).await;
        while host.hook_stats("bench", 0).await.unwrap().requests < DELIVERIES as u64 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let delivery = host
            .deliveries(&DeliveryQuery {
                hook_id: Some("bench".into()),
                limit: 1,
                ..DeliveryQuery::default()
            })
            .await
            .unwrap()
            .remove(0)
            .id;

        let tokens = Tokens::new(&[TOKEN.to_string()], &[]);
        let limits = BodyLimits {
            json: 1 << 20,
            plugin: 32 << 20,
        };
        let app = wasmhooks::api::router(host.clone(), tokens.clone(), limits)
            .merge(wasmhooks::console::router(host.clone(), tokens, limits));
        let cookie = sign_in(&app).await;
        let since = now_ms() - 24 * 3600 * 1000;
        let pages = [
            ("hooks", "/console/hooks".to_string(), "/v1/hooks".to_string()),
            (
                "hook (charts, recent)",
                "/console/hooks/bench".to_string(),
                format!("/v1/hooks/bench/stats?since={since}"),
            ),
            ("hook edit", "/console/hooks/bench/edit".to_string(), "/v1/hooks/bench".to_string()),
            (
                "deliveries, every hook",
                "/console/deliveries".to_string(),
                "/v1/hooks/bench/deliveries?limit=50".to_string(),
            ),
            (
                "deliveries, filtered",
                "/console/deliveries?hook=bench&status=succeeded".to_string(),
                "/v1/hooks/bench/deliveries?limit=50&status=succeeded".to_string(),
            ),
            (
                "delivery",
                format!("/console/deliveries/{delivery}"),
                format!("/v1/deliveries/{delivery}"),
            ),
            ("plugins", "/console/plugins".to_string(), "/v1/plugins".to_string()),
            ("event types", "/console/event-types".to_string(), "/v1/event-types".to_string()),
            ("sync playground", "/console/playground".to_string(), "/v1/hooks".to_string()),
        ];
        println!(
            "\n{DELIVERIES} deliveries with their attempts; {CALLS} renders each, server time in process\n"
        );
        println!(
            "| page | p50 | p99 | API call (baseline) p50 | page ÷ API | p99 ÷ 100 ms target |"
        );
        println!("|---|---|---|---|---|---|");
        for (name, page, api) in pages {
            let (p50, p99) = common::percentiles(CALLS, 5, || get(&app, &page, Some(&cookie))).await;
            let (api50, _) = common::percentiles(CALLS, 5, || get(&app, &api, None)).await;
            println!(
                "| {name} | {} | {} | {} | {:.2} | {:.3} |",
                ms(p50),
                ms(p99),
                ms(api50),
                p50.as_secs_f64() / api50.as_secs_f64(),
                p99.as_secs_f64() / 0.1
            );
        }
        host.shutdown().await;
    });
}
