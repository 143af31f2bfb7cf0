//! Store throughput: events accepted per second (1 KB payload, 2 matching
//! hooks, durable: each caller hears back after its commit) and deliveries
//! claimed and completed per second, on SQLite and on PostgreSQL (one
//! process, then two processes sharing the database).
//!
//! The baseline, measured in the same run, is the plain approach: one
//! SQLite transaction, and so one fsync, per event.
//!
//! Run: `cargo bench -p wasmhooks --bench store`; PostgreSQL figures need
//! `WASMHOOKS_TEST_POSTGRES_URL` (for example from `scripts/test-postgres`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wasmhooks::store::{now_ms, HookRecord, NewAttempt, NewEvent, Next, SharedStore, StoreLimits};

const EVENTS: usize = 20_000;
const PRODUCERS: usize = 64;
const CHILD_ARG: &str = "--ingest-child";

fn payload() -> String {
    let text = json!({
        "event": "PostSignIn",
        "sessionId": "sess_6f1c2a9b4d3e",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36",
        "userIp": "203.0.113.7",
        "userId": "u_8a7d6c5b4a39",
        "user": {"id": "u_8a7d6c5b4a39", "primaryEmail": "ada@example.com", "name": "Ada Lovelace"},
        "padding": "x".repeat(760),
    })
    .to_string();
    assert!((1000..1100).contains(&text.len()));
    text
}

fn event(payload: &str) -> NewEvent {
    NewEvent {
        id: None,
        name: "PostSignIn".into(),
        payload: payload.to_string(),
        created_at: now_ms(),
    }
}

async fn add_hooks(store: &SharedStore) {
    for id in ["hook_a", "hook_b"] {
        let hook = HookRecord::new(id, vec!["PostSignIn".into()], json!({}));
        let _ = store.create_hook(&hook).await;
    }
}

/// Events per second from `PRODUCERS` concurrent callers, one event a call.
async fn ingest_rate(store: &SharedStore, events: usize) -> f64 {
    let payload = Arc::new(payload());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..PRODUCERS {
        let (store, payload) = (store.clone(), payload.clone());
        tasks.spawn(async move {
            for _ in 0..events / PRODUCERS {
                let done = store
                    .ingest(vec![event(&payload)])
                    .await
                    .unwrap()
                    .pop()
                    .unwrap()
                    .unwrap();
                assert_eq!(done.deliveries.len(), 2);
            }
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    (events / PRODUCERS * PRODUCERS) as f64 / started.elapsed().as_secs_f64()
}

/// Deliveries claimed and completed per second by two workers.
async fn drain_rate(store: &SharedStore) -> (f64, usize) {
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..2 {
        let store = store.clone();
        workers.spawn(async move {
            let owner = format!("bench_{w}");
            let mut done = 0;
            loop {
                let batch = store
                    .claim(&owner, 100, Duration::from_secs(60))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return done;
                }
                let mut finishing = tokio::task::JoinSet::new();
                for claimed in batch {
                    let (store, owner) = (store.clone(), owner.clone());
                    finishing.spawn(async move {
                        let attempt = NewAttempt {
                            started_at: now_ms(),
                            duration_ms: 1,
                            response_status: Some(200),
                            success: true,
                            ..NewAttempt::default()
                        };
                        store
                            .finish_attempt(
                                &owner,
                                &claimed.delivery.id,
                                Some(attempt),
                                Next::Succeeded,
                            )
                            .await
                            .unwrap();
                    });
                }
                while let Some(f) = finishing.join_next().await {
                    f.unwrap();
                    done += 1;
                }
            }
        });
    }
    let mut total = 0;
    while let Some(n) = workers.join_next().await {
        total += n.unwrap();
    }
    (total as f64 / started.elapsed().as_secs_f64(), total)
}

/// The baseline: one transaction (one fsync) per event, on one connection.
fn naive_sqlite_rate(dir: &std::path::Path, events: usize) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("naive.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE events (id TEXT PRIMARY KEY, name TEXT, payload TEXT, created_at INTEGER);
         CREATE TABLE deliveries (id TEXT PRIMARY KEY, event_id TEXT, hook_id TEXT, status TEXT, due_at INTEGER);",
    )
    .unwrap();
    let payload = payload();
    let started = Instant::now();
    for n in 0..events {
        let tx = conn.unchecked_transaction().unwrap();
        let id = format!("evt_{n}");
        tx.execute(
            "INSERT INTO events VALUES (?1, 'PostSignIn', ?2, ?3)",
            rusqlite::params![id, payload, now_ms()],
        )
        .unwrap();
        for hook in ["hook_a", "hook_b"] {
            tx.execute(
                "INSERT INTO deliveries VALUES (?1, ?2, ?3, 'pending', ?4)",
                rusqlite::params![format!("{id}_{hook}"), id, hook, now_ms()],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    events as f64 / started.elapsed().as_secs_f64()
}

fn print(name: &str, rate: f64, baseline: f64) {
    println!("{name:<48} {rate:>10.0} /s {:>8.1}x", rate / baseline);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if let Some(i) = args.iter().position(|a| a == CHILD_ARG) {
        // A second process for the shared-PostgreSQL figure.
        let (url, events) = (&args[i + 1], args[i + 2].parse().unwrap());
        runtime.block_on(async {
            let store = wasmhooks::store::open(url, StoreLimits::default())
                .await
                .unwrap();
            println!("{}", ingest_rate(&store, events).await);
        });
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let baseline = naive_sqlite_rate(dir.path(), 2_000);
    println!("1 KB events, 2 matching hooks, durable; {PRODUCERS} concurrent producers");
    print(
        "baseline: SQLite, one transaction per event",
        baseline,
        baseline,
    );

    runtime.block_on(async {
        let path = dir.path().join("wasmhooks.db");
        let sqlite = wasmhooks::store::open(path.to_str().unwrap(), StoreLimits::default())
            .await
            .unwrap();
        add_hooks(&sqlite).await;
        print(
            "SQLite store: events accepted",
            ingest_rate(&sqlite, EVENTS).await,
            baseline,
        );
        let (rate, n) = drain_rate(&sqlite).await;
        assert_eq!(
            n,
            EVENTS / PRODUCERS * PRODUCERS * 2,
            "every delivery drained"
        );
        print(
            "SQLite store: deliveries claimed + completed",
            rate,
            baseline,
        );

        let Ok(server) = std::env::var("WASMHOOKS_TEST_POSTGRES_URL") else {
            println!("(set WASMHOOKS_TEST_POSTGRES_URL for the PostgreSQL figures)");
            return;
        };
        let (admin, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        admin
            .batch_execute("DROP DATABASE IF EXISTS wasmhooks_bench WITH (FORCE)")
            .await
            .unwrap();
        admin
            .batch_execute("CREATE DATABASE wasmhooks_bench")
            .await
            .unwrap();
        let url = format!("{}/wasmhooks_bench", server.rsplit_once('/').unwrap().0);
        let pg = wasmhooks::store::open(&url, StoreLimits::default())
            .await
            .unwrap();
        add_hooks(&pg).await;
        print(
            "PostgreSQL store: events accepted",
            ingest_rate(&pg, EVENTS).await,
            baseline,
        );
        let (rate, _) = drain_rate(&pg).await;
        print(
            "PostgreSQL store: deliveries claimed + completed",
            rate,
            baseline,
        );

        let started = Instant::now();
        let children: Vec<_> = (0..2)
            .map(|_| {
                std::process::Command::new(std::env::current_exe().unwrap())
                    .args([CHILD_ARG, &url, &(EVENTS / 2).to_string()])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            assert!(child.wait_with_output().unwrap().status.success());
        }
        let rate =
            (EVENTS / 2 / PRODUCERS * PRODUCERS * 2) as f64 / started.elapsed().as_secs_f64();
        print(
            "PostgreSQL store, two processes: events accepted",
            rate,
            baseline,
        );
        drop(pg);
        admin
            .batch_execute("DROP DATABASE IF EXISTS wasmhooks_bench WITH (FORCE)")
            .await
            .unwrap();
    });
}
