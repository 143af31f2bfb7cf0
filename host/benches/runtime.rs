//! What a fresh sandbox per call costs: the same 1 KB JSON transform (the
//! `enrich` plugin's code) run natively, by the plugin on one reused
//! instance, and by the plugin on a fresh instance per call, as the host
//! runs it. Prints ns per call, the ratios to native, and calls per second
//! with both cores busy.
//!
//! Then the same `enrich` written in Rust, JavaScript and Python (built with
//! componentize-js and componentize-py when npm and python3 are present):
//! each one's size, first load (compile) time and the memory that load and
//! a first call add to the process, and its cost per call on a fresh
//! instance, as a ratio to the Rust plugin measured in the same run.
//!
//! Run: `cargo bench -p wasmhooks --bench runtime` (unset RUST_BACKTRACE
//! first: with it set, every error captures a backtrace).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmhooks::runtime::{Grants, Outcome, Plugin, PluginEvent, Runtime, RuntimeConfig};

const ROUNDS: usize = 7;
const CALLS_PER_ROUND: usize = 4000;
const THREADS: usize = 2;
/// Calls per round for the language comparison: the interpreters are slower.
const LANGUAGE_CALLS: usize = 200;

fn payload() -> String {
    let payload = serde_json::json!({
        "event": "PostSignIn",
        "createdAt": "2026-11-28T10:00:00.000Z",
        "sessionId": "sess_6f1c2a9b4d3e",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        "userIp": "203.0.113.7",
        "interactionEvent": "SignIn",
        "userId": "u_8a7d6c5b4a39",
        "user": {
            "id": "u_8a7d6c5b4a39",
            "username": "ada",
            "primaryEmail": "ada.lovelace@example.com",
            "primaryPhone": "+6421555123",
            "name": "Ada Lovelace",
            "avatar": "https://cdn.example.com/avatars/u_8a7d6c5b4a39.png",
            "customData": {"plan": "pro", "seats": 12, "flags": ["beta", "sso"]},
            "identities": {"github": {"userId": "1234567", "details": {"login": "ada"}}},
            "lastSignInAt": 1764324000000_u64,
            "createdAt": 1700000000000_u64,
            "applicationId": "app_3f2e1d0c9b8a"
        },
        "application": {
            "id": "app_3f2e1d0c9b8a",
            "name": "Analytical Engine Console",
            "type": "SPA",
            "description": "Operator console for the difference and analytical engines",
            "customClientMetadata": {"corsAllowedOrigins": ["https://console.example.com"], "idTokenTtl": 3600},
            "redirectUris": ["https://console.example.com/callback", "https://console.example.com/silent"]
        },
        "hookId": "hook_1"
    });
    let text = payload.to_string();
    assert!(
        (1000..1300).contains(&text.len()),
        "payload is {} bytes",
        text.len()
    );
    text
}

fn fields() -> Vec<(String, String)> {
    [
        ("tenant", "acme"),
        ("meta.environment", "production"),
        ("meta.region", "eu-west"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The transform as the plugin does it: parse, change, serialise.
fn native(payload: &str, fields: &[(String, String)]) -> String {
    let mut value: Value = serde_json::from_str(payload).unwrap();
    enrich::enrich(&mut value, fields);
    value.to_string()
}

fn expect_enriched(outcome: Result<Outcome, wasmhooks::runtime::PluginError>) {
    match outcome {
        Ok(Outcome::Continue {
            payload: Some(p), ..
        }) => assert!(p.get().contains("\"tenant\":\"acme\"")),
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Median of per-round ns per call.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

fn per_call(elapsed: Duration, calls: usize) -> f64 {
    elapsed.as_nanos() as f64 / calls as f64
}

async fn fresh_round(
    plugin: &Plugin,
    event: &PluginEvent,
    grants: &Arc<Grants>,
    calls: usize,
) -> Duration {
    let started = Instant::now();
    for _ in 0..calls {
        expect_enriched(plugin.call(event, grants).await.result);
    }
    started.elapsed()
}

async fn reused_round(
    plugin: &Plugin,
    event: &PluginEvent,
    grants: &Arc<Grants>,
    calls: usize,
) -> Duration {
    let mut instance = plugin.reusable_instance(grants).await.unwrap();
    expect_enriched(instance.call(event).await);
    let started = Instant::now();
    for _ in 0..calls {
        expect_enriched(instance.call(event).await);
    }
    started.elapsed()
}

fn main() {
    if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
        eprintln!("note: RUST_BACKTRACE is set; error paths will be slower");
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()
        .unwrap();
    let payload = payload();
    let fields = fields();
    let grants = Arc::new(Grants {
        config: fields.iter().cloned().collect(),
        ..Grants::default()
    });
    let event = PluginEvent {
        id: "evt_bench".into(),
        name: "PostSignIn".into(),
        created_at: "2026-11-28T10:00:00.000Z".into(),
        payload: serde_json::value::RawValue::from_string(payload.clone()).unwrap(),
        hook_id: "hook_1".into(),
        trigger: None,
    };
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugin = runtime
        .load(&std::fs::read(wasmhooks_testkit::plugin("enrich")).unwrap())
        .unwrap();

    // One core.
    let mut native_ns = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..CALLS_PER_ROUND {
            std::hint::black_box(native(std::hint::black_box(&payload), &fields));
        }
        native_ns.push(per_call(started.elapsed(), CALLS_PER_ROUND));
    }
    let (reused_ns, fresh_ns) = tokio.block_on(async {
        fresh_round(&plugin, &event, &grants, 200).await; // warm up
        let mut reused = Vec::new();
        let mut fresh = Vec::new();
        for _ in 0..ROUNDS {
            reused.push(per_call(
                reused_round(&plugin, &event, &grants, CALLS_PER_ROUND).await,
                CALLS_PER_ROUND,
            ));
            fresh.push(per_call(
                fresh_round(&plugin, &event, &grants, CALLS_PER_ROUND).await,
                CALLS_PER_ROUND,
            ));
        }
        (reused, fresh)
    });
    let (native_ns, reused_ns, fresh_ns) = (median(native_ns), median(reused_ns), median(fresh_ns));

    // Both cores.
    let total = CALLS_PER_ROUND * THREADS * 2;
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..total / THREADS {
                    std::hint::black_box(native(&payload, &fields));
                }
            });
        }
    });
    let native_rate = total as f64 / started.elapsed().as_secs_f64();
    let (reused_rate, fresh_rate) = tokio.block_on(async {
        let mut rates = Vec::new();
        for reuse in [true, false] {
            let started = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..THREADS {
                let (plugin, event, grants) = (plugin.clone(), event.clone(), grants.clone());
                tasks.spawn(async move {
                    if reuse {
                        reused_round(&plugin, &event, &grants, total / THREADS).await
                    } else {
                        fresh_round(&plugin, &event, &grants, total / THREADS).await
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
            rates.push(total as f64 / started.elapsed().as_secs_f64());
        }
        (rates[0], rates[1])
    });

    println!(
        "1 KB JSON transform ({} bytes), median of {ROUNDS} rounds x {CALLS_PER_ROUND} calls",
        payload.len()
    );
    println!(
        "{:<34} {:>10} {:>10} {:>16}",
        "", "ns/call", "x native", "calls/s (2 cores)"
    );
    for (name, ns, rate) in [
        ("native Rust", native_ns, native_rate),
        ("plugin, reused instance", reused_ns, reused_rate),
        ("plugin, fresh instance per call", fresh_ns, fresh_rate),
    ] {
        println!(
            "{name:<34} {ns:>10.0} {:>10.2} {rate:>16.0}",
            ns / native_ns
        );
    }
    tokio.block_on(languages(&event, &grants));
}

/// The process's resident memory, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// `enrich` in each language that can be built here, side by side.
async fn languages(event: &PluginEvent, grants: &Arc<Grants>) {
    use wasmhooks_testkit::{polyglot, workspace_root};
    let root = workspace_root();
    let builds = [
        ("Rust", Some(wasmhooks_testkit::plugin("enrich"))),
        (
            "JavaScript",
            polyglot::build_js(&root.join("plugins-js/enrich")),
        ),
        (
            "Python",
            polyglot::build_python(&root.join("plugins-py/enrich")),
        ),
    ];
    println!();
    println!("enrich in each language, fresh instance per call, median of {ROUNDS} rounds x {LANGUAGE_CALLS} calls");
    println!(
        "{:<12} {:>10} {:>14} {:>16} {:>10} {:>10}",
        "", "size KB", "first load ms", "memory added MB", "us/call", "x Rust"
    );
    let mut rust_ns = None;
    for (language, wasm) in builds {
        let Some(wasm) = wasm else {
            println!("{language:<12} (its toolchain is missing here)");
            continue;
        };
        let bytes = std::fs::read(&wasm).unwrap();
        // A runtime of its own, without a compile cache: the load compiles.
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let before = resident();
        let started = Instant::now();
        let plugin = runtime.load(&bytes).unwrap();
        let load = started.elapsed();
        expect_enriched(plugin.call(event, grants).await.result);
        let added = resident().saturating_sub(before);
        let mut rounds = Vec::new();
        for _ in 0..ROUNDS {
            rounds.push(per_call(
                fresh_round(&plugin, event, grants, LANGUAGE_CALLS).await,
                LANGUAGE_CALLS,
            ));
        }
        let ns = median(rounds);
        let base = *rust_ns.get_or_insert(ns);
        println!(
            "{language:<12} {:>10} {:>14.0} {:>16.1} {:>10.1} {:>10.1}",
            bytes.len() / 1024,
            load.as_secs_f64() * 1000.0,
            added as f64 / (1024.0 * 1024.0),
            ns / 1000.0,
            ns / base
        );
    }
}
