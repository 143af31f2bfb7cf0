//! Nothing accepted is lost: a child process writing events is killed with
//! SIGKILL at random moments; afterwards every event it reported as accepted
//! is in the store with all its deliveries. Run against SQLite, and against
//! PostgreSQL when `WASMHOOKS_TEST_POSTGRES_URL` is set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use wasmhooks::store::{now_ms, HookRecord, NewEvent, SharedStore, StoreError, StoreLimits};
use wasmhooks_testkit::db::{sqlite_path, PostgresDb};

const DB_VAR: &str = "WASMHOOKS_CRASH_TEST_DB";
const ROUNDS: usize = 5;
const HOOKS: [&str; 2] = ["hook_a", "hook_b"];

async fn open(url: &str) -> SharedStore {
    wasmhooks::store::open(url, StoreLimits::default())
        .await
        .unwrap()
}

fn event(id: String) -> NewEvent {
    NewEvent {
        id: Some(id),
        name: "PostSignIn".into(),
        payload: json!({"event": "PostSignIn", "userId": "u1", "padding": "p".repeat(900)})
            .to_string(),
        created_at: now_ms(),
    }
}

/// The child: ingest events from four tasks until killed, printing
/// `accepted <id> <deliveries>` once each ingest has returned.
#[test]
#[ignore = "helper process for the crash tests; runs only when they start it"]
fn crash_child_writer() {
    let Ok(url) = std::env::var(DB_VAR) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = open(&url).await;
        for id in HOOKS {
            let hook = HookRecord::new(id, vec!["PostSignIn".into()], json!({}));
            match store.create_hook(&hook).await {
                Ok(()) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..4 {
            let store = store.clone();
            tasks.spawn(async move {
                for n in 0.. {
                    let id = format!("evt_{}_{task}_{n}", std::process::id());
                    let ingested = store
                        .ingest(vec![event(id.clone())])
                        .await
                        .unwrap()
                        .pop()
                        .unwrap()
                        .unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "accepted {id} {}", ingested.deliveries.len()).unwrap();
                    out.flush().unwrap();
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
}

/// Start the child, kill it with SIGKILL after a random time, and return
/// the ids it reported as accepted.
fn run_and_kill(url: &str) -> Vec<(String, usize)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_VAR, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut accepted = Vec::new();
    let mut take = |line: String| {
        if let Some(rest) = line.strip_prefix("accepted ") {
            let (id, count) = rest.split_once(' ').unwrap();
            accepted.push((id.to_string(), count.parse().unwrap()));
        }
    };
    // Wait until writing is under way, then kill at a random moment.
    loop {
        let line = received
            .recv_timeout(Duration::from_secs(60))
            .expect("the child accepts events");
        let started = line.starts_with("accepted ");
        take(line);
        if started {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(rand::random_range(20..400)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    // Every line the child wrote before it died is still in the pipe.
    for line in received.try_iter() {
        take(line);
    }
    accepted
}

async fn nothing_accepted_is_lost(url: &str) {
    let mut accepted = Vec::new();
    for _ in 0..ROUNDS {
        let url = url.to_string();
        accepted.extend(
            tokio::task::spawn_blocking(move || run_and_kill(&url))
                .await
                .unwrap(),
        );
    }
    assert!(
        accepted.len() > 20,
        "the children accepted only {} events",
        accepted.len()
    );
    eprintln!(
        "{} events accepted across {ROUNDS} killed writers",
        accepted.len()
    );

    let store = open(url).await;
    for (id, deliveries) in &accepted {
        assert_eq!(*deliveries, HOOKS.len(), "{id} fanned out to both hooks");
        // Ingesting an accepted id again must find it, with its deliveries.
        let again = store
            .ingest(vec![event(id.clone())])
            .await
            .unwrap()
            .pop()
            .unwrap()
            .unwrap();
        assert!(
            again.duplicate,
            "{id} was reported accepted but is missing after the crash"
        );
        assert_eq!(again.deliveries.len(), *deliveries, "{id} lost deliveries");
        for delivery in &again.deliveries {
            assert!(store.delivery(&delivery.id).await.unwrap().is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill() {
    let (_dir, path) = sqlite_path();
    nothing_accepted_is_lost(path.to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill() {
    let Some(db) = PostgresDb::create("crash").await else {
        eprintln!("skipped: set WASMHOOKS_TEST_POSTGRES_URL to run the PostgreSQL crash test");
        return;
    };
    nothing_accepted_is_lost(&db.url).await;
    db.drop_database().await;
}
