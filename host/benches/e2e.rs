//! End to end over HTTP: a load generator posts events to the real
//! `wasmhooks serve` (SQLite, durable before each 202) whose hook runs one
//! wasm step (`enrich`) and delivers signed webhooks to a fast receiver on
//! 127.0.0.1. Reports events accepted per second, deliveries per second and
//! ingest latency p50/p99.
//!
//! The baseline, in the same run: the same load generator against a bare
//! axum route that answers each event's JSON at once, with no store.
//!
//! Run: `cargo bench -p wasmhooks --bench e2e` (unset RUST_BACKTRACE).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::server::{Server, INGEST};
use serde_json::{json, Value};
use wasmhooks_testkit::Receiver;

const EVENTS: usize = 20_000;
const CLIENTS: usize = 32;
/// Events posted (and, to the server, delivered) before the clock starts,
/// so the timed ones find connections open and caches warm.
const WARMUP: usize = 64 * CLIENTS;

fn event() -> Value {
    json!({"event": "PostSignIn", "payload": {
        "interactionEvent": "SignIn", "sessionId": "sess_6f1c2a9b4d3e",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36",
        "userId": "u_8a7d6c5b4a39", "userIp": "203.0.113.7",
        "user": {"id": "u_8a7d6c5b4a39", "username": "ada", "primaryEmail": "ada@example.com",
                 "customData": {"plan": "pro"}, "padding": "x".repeat(560)},
        "application": {"id": "app_3f2e1d0c9b8a", "type": "SPA", "name": "Console"}}})
}

/// What one load run measured.
struct Load {
    accepted_per_s: f64,
    p50: Duration,
    p99: Duration,
}

/// Post `events` events to `url` from `CLIENTS` concurrent clients, each
/// expecting `expect`; time each request.
async fn load(url: &str, expect: u16, events: usize) -> Load {
    let http = reqwest::Client::new();
    let body = Bytes::from(event().to_string());
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (http, url, body) = (http.clone(), url.to_string(), body.clone());
        clients.spawn(async move {
            let mut times = Vec::with_capacity(events / CLIENTS);
            for _ in 0..events / CLIENTS {
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .bearer_auth(INGEST)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), expect);
                response.bytes().await.unwrap();
                times.push(sent.elapsed());
            }
            times
        });
    }
    let mut times = Vec::with_capacity(events);
    while let Some(done) = clients.join_next().await {
        times.extend(done.unwrap());
    }
    let elapsed = started.elapsed();
    times.sort();
    Load {
        accepted_per_s: times.len() as f64 / elapsed.as_secs_f64(),
        p50: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    common::two_workers().block_on(async {
        // Baseline: a bare JSON route.
        let echo = Receiver::start(axum::Router::new().route(
            "/v1/events",
            axum::routing::post(|body: Bytes| async move {
                let _: Value = serde_json::from_slice(&body).unwrap();
                (axum::http::StatusCode::ACCEPTED, "{}")
            }),
        ))
        .await;
        load(&echo.url("/v1/events"), 202, WARMUP).await;
        let baseline = load(&echo.url("/v1/events"), 202, EVENTS).await;

        // The server, with a counting receiver.
        let delivered = Arc::new(AtomicUsize::new(0));
        let receiver = {
            let delivered = delivered.clone();
            Receiver::start(axum::Router::new().route(
                "/hook",
                axum::routing::post(move |_body: Bytes| {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    async { "ok" }
                }),
            ))
            .await
        };
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), "private_networks = [\"127.0.0.0/8\"]\n");
        server.upload("enrich").await;
        server
            .admin(
                "/v1/hooks",
                json!({"events": ["PostSignIn"],
                       "steps": [{"plugin": "enrich", "config": {"tenant": "acme"}}],
                       "webhook": {"url": receiver.url("/hook"), "concurrency": 64}}),
            )
            .await;
        let events = format!("{}/v1/events", server.url());
        load(&events, 202, WARMUP).await;
        while delivered.load(Ordering::Relaxed) < WARMUP {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let started = Instant::now();
        let engine = load(&events, 202, EVENTS).await;
        while delivered.load(Ordering::Relaxed) < WARMUP + EVENTS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let delivered_per_s = EVENTS as f64 / started.elapsed().as_secs_f64();

        println!("{EVENTS} events from {CLIENTS} clients over HTTP, one wasm step, signed, to a local receiver");
        println!(
            "{:<44} {:>12} {:>10} {:>10} {:>8}",
            "", "accepted/s", "p50", "p99", "×"
        );
        println!(
            "{:<44} {:>12.0} {:>10} {:>10} {:>8.2}",
            "baseline: bare JSON route",
            baseline.accepted_per_s,
            ms(baseline.p50),
            ms(baseline.p99),
            1.0
        );
        println!(
            "{:<44} {:>12.0} {:>10} {:>10} {:>8.2}",
            "wasmhooks: ingest, durable",
            engine.accepted_per_s,
            ms(engine.p50),
            ms(engine.p99),
            engine.accepted_per_s / baseline.accepted_per_s
        );
        println!(
            "{:<44} {:>12.0} {:>10} {:>10} {:>8.2}",
            "wasmhooks: delivered/s, from first post to last delivery",
            delivered_per_s,
            "",
            "",
            delivered_per_s / baseline.accepted_per_s
        );
        assert_eq!(
            delivered.load(Ordering::Relaxed),
            WARMUP + EVENTS,
            "each delivered once"
        );
    });
}
