//! Plugin isolation under load, against the real `wasmhooks serve` binary
//! over HTTP on 127.0.0.1 (2 cores on the reference machine):
//!
//! - a benign sync hook's latency, p50 and p99 over sequential calls, alone;
//! - the same while N = 1, 2, 4 callers keep running a plugin that loops
//!   until its deadline;
//! - the same while 64 callers keep running a plugin that allocates until it
//!   hits its memory cap, with the server's peak RSS beside the memory
//!   budget.
//!
//! Each loaded row is printed as a ratio to the row alone, with the benign
//! calls that were denied (there should be none).
//!
//! Run: `cargo bench -p wasmhooks --bench isolation` (unset RUST_BACKTRACE).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::server::{Server, INGEST};

const CALLS: usize = 400;
const WARMUP: usize = 50;
/// The memory budget the server runs with (its default).
const BUDGET: u64 = 1 << 30;

/// One sync call's answer.
async fn sync(server: &Server, trigger: &str, deadline_ms: u64) -> Value {
    let response = server
        .http
        .post(format!("{}/v1/sync/{trigger}", server.url()))
        .bearer_auth(INGEST)
        .json(&json!({"payload": {"email": "ada@example.com"}, "deadline_ms": deadline_ms}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    response.json().await.unwrap()
}

/// One benign call; true when it was allowed.
async fn benign_call(server: &Server) -> bool {
    sync(server, "Benign", 500).await["decision"] == "allow"
}

/// Benign latency while the load runs: p50, p99, and calls denied.
struct Row {
    p50: Duration,
    p99: Duration,
    denied: usize,
}

async fn benign(server: &Server) -> Row {
    for _ in 0..WARMUP {
        benign_call(server).await;
    }
    let mut times = Vec::with_capacity(CALLS);
    let mut denied = 0;
    for _ in 0..CALLS {
        let started = Instant::now();
        if !benign_call(server).await {
            denied += 1;
        }
        times.push(started.elapsed());
    }
    times.sort();
    Row {
        p50: times[CALLS / 2],
        p99: times[CALLS * 99 / 100],
        denied,
    }
}

/// The loaded calls' deadline.
const LOAD_DEADLINE_MS: u64 = 1000;

/// Run `callers` loops of sync calls to `trigger` while the benign calls
/// are measured; also returns how many loaded calls ran and the longest
/// one's time as a ratio to its deadline.
async fn under_load(
    server: &Arc<Server>,
    trigger: &'static str,
    callers: usize,
) -> (Row, u64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let longest_us = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (server, stop, calls, longest_us) = (
            server.clone(),
            stop.clone(),
            calls.clone(),
            longest_us.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = sync(&server, trigger, LOAD_DEADLINE_MS).await;
                let took = answer["duration_us"].as_u64().unwrap_or(0);
                longest_us.fetch_max(took, Ordering::Relaxed);
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let every caller get its first call in before measuring.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let row = benign(server).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let longest = longest_us.load(Ordering::Relaxed) as f64 / (LOAD_DEADLINE_MS as f64 * 1000.0);
    (row, calls.load(Ordering::Relaxed), longest)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    common::two_workers().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let server = Arc::new(Server::start(
            dir.path(),
            "[sync]\ndeadline = \"500ms\"\n",
        ));
        server.upload("hostile").await;
        for (id, trigger, mode) in [
            ("benign", "Benign", "ok"),
            ("spin", "Spin", "loop"),
            ("hog", "Hog", "memory"),
        ] {
            server
                .admin(
                    "/v1/hooks",
                    json!({"id": id, "sync": {"trigger": trigger, "on_error": "deny"},
                           "steps": [{"plugin": "hostile", "config": {"mode": mode}}]}),
                )
                .await;
        }

        let alone = benign(&server).await;
        println!(
            "{:<44} {:>10} {:>10} {:>8} {:>8} {:>7}",
            "benign sync hook over HTTP", "p50", "p99", "p50 ×", "p99 ×", "denied"
        );
        let print = |label: &str, row: &Row| {
            println!(
                "{:<44} {:>10} {:>10} {:>8.2} {:>8.2} {:>7}",
                label,
                ms(row.p50),
                ms(row.p99),
                row.p50.as_secs_f64() / alone.p50.as_secs_f64(),
                row.p99.as_secs_f64() / alone.p99.as_secs_f64(),
                row.denied
            );
        };
        print("alone", &alone);
        let mut longest: f64 = 0.0;
        for n in [1, 2, 4] {
            let (row, spun, spin_longest) = under_load(&server, "Spin", n).await;
            longest = longest.max(spin_longest);
            print(
                &format!("{n} caller(s) looping to their deadline ({spun} calls)"),
                &row,
            );
        }
        let (row, hogged, _) = under_load(&server, "Hog", 64).await;
        print(
            &format!("64 callers allocating to their cap ({hogged} calls)"),
            &row,
        );
        println!(
            "longest looping call / its {LOAD_DEADLINE_MS} ms deadline: {longest:.3} (server-side, arrival to answer)"
        );
        let peak = server.peak_rss();
        println!(
            "server peak RSS {:.0} MB; memory budget {:.0} MB; peak / (budget + 200 MB) = {:.2}",
            peak as f64 / 1e6,
            BUDGET as f64 / 1e6,
            peak as f64 / (BUDGET as f64 + 200e6)
        );
    });
}
