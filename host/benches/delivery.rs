//! Deliveries per second end to end: claimed from the SQLite store, run
//! through one wasm transform step (`enrich`, fresh instance per call),
//! signed (Logto and Standard Webhooks), POSTed to a fast receiver on
//! 127.0.0.1, and the attempt logged. 1 KB events.
//!
//! The baseline, in the same run: the same signed POSTs sent by the same
//! HTTP client with the same concurrency, with no store and no plugin.
//!
//! The plugin is compiled before the clock starts, as `serve` compiles
//! every stored plugin when it starts.
//!
//! Run: `cargo bench -p wasmhooks --bench delivery` (unset RUST_BACKTRACE).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wasmhooks::delivery::dispatcher::{DispatchSettings, Dispatcher};
use wasmhooks::delivery::sender::Sender;
use wasmhooks::delivery::signing::{logto_signature, WebhookSecret};
use wasmhooks::metrics::Metrics;
use wasmhooks::pipeline::PluginRegistry;
use wasmhooks::runtime::{content_hash, Runtime, RuntimeConfig};
use wasmhooks::store::{now_ms, HookRecord, NewEvent, PluginRecord, StoreLimits};
use wasmhooks_testkit::Receiver;

const EVENTS: usize = 10_000;
/// Deliveries made before the clock starts, so the timed ones find the
/// engine warm (connections open, instance slots and caches in use), as in
/// a server that has been running.
const WARMUP: usize = 1_000;
const CONCURRENCY: usize = 64;

fn payload() -> String {
    json!({
        "event": "PostSignIn", "interactionEvent": "SignIn", "sessionId": "sess_6f1c2a9b4d3e",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36",
        "userId": "u_8a7d6c5b4a39", "userIp": "203.0.113.7",
        "user": {"id": "u_8a7d6c5b4a39", "username": "ada", "primaryEmail": "ada@example.com", "name": "Ada Lovelace",
                 "customData": {"plan": "pro"}, "padding": "x".repeat(560)},
        "application": {"id": "app_3f2e1d0c9b8a", "type": "SPA", "name": "Console", "description": null}
    })
    .to_string()
}

/// A receiver that answers 200 at once and counts requests.
async fn receiver(count: Arc<AtomicUsize>) -> Receiver {
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |_body: Bytes| {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    Receiver::start(router).await
}

fn main() {
    let runtime = common::two_workers();
    runtime.block_on(async {
        let count = Arc::new(AtomicUsize::new(0));
        let receiver = receiver(count.clone()).await;
        let url = receiver.url("/hook");
        let secret = WebhookSecret::generate();

        // Baseline: the sender alone.
        let sender = Sender::new(vec!["127.0.0.0/8".parse().unwrap()], 4096);
        let body = Bytes::from(payload());
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            (
                "logto-signature-sha-256".to_string(),
                logto_signature("k", &body),
            ),
            (
                "webhook-signature".to_string(),
                secret.sign("msg", 1, &body),
            ),
        ];
        let post_all = |posts: usize| {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..CONCURRENCY {
                let (sender, url, headers, body) =
                    (sender.clone(), url.clone(), headers.clone(), body.clone());
                tasks.spawn(async move {
                    for _ in 0..posts / CONCURRENCY {
                        let sent = sender
                            .post(&url, &headers, body.clone(), Duration::from_secs(10))
                            .await;
                        assert_eq!(sent.status, Some(200));
                    }
                });
            }
            async move { while tasks.join_next().await.is_some() {} }
        };
        post_all(WARMUP).await;
        let started = Instant::now();
        post_all(EVENTS).await;
        let baseline =
            (EVENTS / CONCURRENCY * CONCURRENCY) as f64 / started.elapsed().as_secs_f64();

        // The whole engine, alone, then beside an endpoint that never answers.
        let secret_text = secret.to_text();
        let engine = engine_rate(&url, &secret_text, &count, None).await;
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_url = format!("http://{}/never", silent.local_addr().unwrap());
        let holding = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let beside = engine_rate(&url, &secret_text, &count, Some(&silent_url)).await;
        holding.abort();
        let payload = payload();
        println!(
            "{EVENTS} deliveries of {} byte events, {CONCURRENCY} in flight",
            payload.len()
        );
        println!(
            "{:<58} {baseline:>8.0} /s {:>6.2}x",
            "baseline: signed POSTs alone (no store, no plugin)", 1.0
        );
        println!(
            "{:<58} {engine:>8.0} /s {:>6.2}x",
            "engine: claim, wasm step, sign, POST, log attempt",
            engine / baseline
        );
        println!(
            "{:<58} {beside:>8.0} /s {:>6.2}x of the engine alone",
            "engine, beside 2,000 to an endpoint that never answers",
            beside / engine
        );
    });
}

/// Deliveries per second to the fast receiver at `url`: `EVENTS` events
/// through a fresh store and dispatcher, timed after `WARMUP` more. With
/// `silent`, 2,000 events for a second hook whose endpoint never answers
/// are stored first (so they are due first), and the rate counts the fast
/// hook's deliveries alone.
async fn engine_rate(
    url: &str,
    secret: &str,
    count: &Arc<AtomicUsize>,
    silent: Option<&str>,
) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wasmhooks.db");
    let store = wasmhooks::store::open(path.to_str().unwrap(), StoreLimits::default())
        .await
        .unwrap();
    let bytes = std::fs::read(wasmhooks_testkit::plugin("enrich")).unwrap();
    store
        .put_plugin(&PluginRecord {
            name: "enrich".into(),
            hash: content_hash(&bytes),
            size: bytes.len() as u64,
            bytes,
            created_at: now_ms(),
        })
        .await
        .unwrap();
    let spec = json!({"events": ["PostSignIn"], "steps": [{"plugin": "enrich", "config": {"tenant": "acme"}}],
        "webhook": {"url": url, "signing_key": "k", "concurrency": CONCURRENCY,
                    "secrets": [{"secret": secret}]}});
    store
        .create_hook(&HookRecord::new("bench", vec!["PostSignIn".into()], spec))
        .await
        .unwrap();
    let payload = payload();
    let ingest = |name: &'static str, n: usize| {
        let store = store.clone();
        let payload = payload.clone();
        async move {
            for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
                let events = chunk
                    .iter()
                    .map(|_| NewEvent {
                        id: None,
                        name: name.into(),
                        payload: payload.clone(),
                        created_at: now_ms(),
                    })
                    .collect();
                store.ingest(events).await.unwrap();
            }
        }
    };
    if let Some(silent) = silent {
        let spec = json!({"events": ["User.Created"], "webhook": {"url": silent, "timeout": "2s"}});
        store
            .create_hook(&HookRecord::new(
                "silent",
                vec!["User.Created".into()],
                spec,
            ))
            .await
            .unwrap();
        ingest("User.Created", 2_000).await;
    }
    ingest("PostSignIn", WARMUP + EVENTS).await;
    count.store(0, Ordering::Relaxed);
    let metrics = Arc::new(Metrics::default());
    let settings = DispatchSettings::default();
    let plugins = Arc::new(PluginRegistry::new(
        store.clone(),
        Runtime::new(RuntimeConfig::default()).unwrap(),
        settings.cache_ttl,
        metrics.clone(),
    ));
    // Compiled before the clock starts, as a server does when it starts.
    plugins.get("enrich").await.unwrap();
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        plugins,
        Sender::new(vec!["127.0.0.0/8".parse().unwrap()], 4096),
        settings,
        metrics,
    ));
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(dispatcher.run(shutdown.clone()));
    while count.load(Ordering::Relaxed) < WARMUP {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let counted = count.load(Ordering::Relaxed);
    while count.load(Ordering::Relaxed) < WARMUP + EVENTS {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = (WARMUP + EVENTS - counted) as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(
        count.load(Ordering::Relaxed),
        WARMUP + EVENTS,
        "every delivery arrived once"
    );
    rate
}
