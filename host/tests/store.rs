//! The store conformance suite: the same tests against SQLite and
//! PostgreSQL (when `WASMHOOKS_TEST_POSTGRES_URL` names a server; CI always
//! sets it).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use wasmhooks::store::{
    now_ms, DeliveryQuery, DeliveryStatus, FreeSlots, HookRecord, NewAttempt, NewEvent, Next,
    PluginRecord, SharedStore, StoreError, StoreLimits,
};
use wasmhooks_testkit::db::{sqlite_path, PostgresDb};

fn limits() -> StoreLimits {
    StoreLimits {
        max_payload_bytes: 4096,
        max_logged_body_bytes: 64,
    }
}

fn hook(id: &str, events: &[&str]) -> HookRecord {
    HookRecord::new(
        id,
        events.iter().map(|e| e.to_string()).collect(),
        json!({"url": format!("https://example.com/{id}")}),
    )
}

fn event(id: Option<&str>, name: &str) -> NewEvent {
    NewEvent {
        id: id.map(String::from),
        name: name.into(),
        payload: json!({"event": name, "userId": "u1"}).to_string(),
        created_at: now_ms(),
    }
}

fn attempt(success: bool) -> NewAttempt {
    NewAttempt {
        started_at: now_ms(),
        duration_ms: 12,
        request_headers: vec![("content-type".into(), "application/json".into())],
        request_body: format!("{{\"padding\": \"{}\"}}", "p".repeat(300)),
        response_status: Some(if success { 200 } else { 500 }),
        response_headers: vec![],
        response_body: Some("x".repeat(500)),
        error_kind: (!success).then(|| "http_status".into()),
        error_message: (!success).then(|| "receiver answered 500".into()),
        success,
    }
}

/// Store `hooks`, then ingest one event per name and return all results.
async fn setup(store: &SharedStore, hooks: &[HookRecord]) {
    for h in hooks {
        store.create_hook(h).await.unwrap();
    }
}

async fn ingest_one(store: &SharedStore, e: NewEvent) -> wasmhooks::store::Ingested {
    store.ingest(vec![e]).await.unwrap().pop().unwrap().unwrap()
}

async fn hooks_and_plugins_round_trip(store: SharedStore) {
    store.register_event_type("Order.Paid").await.unwrap();
    store.register_event_type("Order.Paid").await.unwrap();
    store.register_event_type("Cart.Left").await.unwrap();
    assert_eq!(
        store.event_types().await.unwrap(),
        ["Cart.Left", "Order.Paid"]
    );
    let mut h = hook("hook_a", &["PostSignIn", "PostRegister"]);
    store.create_hook(&h).await.unwrap();
    let dup = store.create_hook(&h).await.unwrap_err();
    assert!(
        matches!(dup, StoreError::Conflict { kind: "hook", .. }),
        "{dup}"
    );
    assert_eq!(
        store.get_hook("hook_a").await.unwrap().unwrap().events,
        ["PostRegister", "PostSignIn"]
    );

    h.events = vec!["User.Created".into()];
    h.spec = json!({"url": "https://example.com/changed"});
    store.update_hook(&h).await.unwrap();
    let got = store.get_hook("hook_a").await.unwrap().unwrap();
    assert_eq!(got.events, ["User.Created"]);
    assert_eq!(got.spec, h.spec);
    let unknown = store.update_hook(&hook("nope", &[])).await.unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound { kind: "hook", .. }));
    let bad = store.create_hook(&hook("bad id!", &[])).await.unwrap_err();
    assert!(matches!(bad, StoreError::Invalid(_)), "{bad}");

    store
        .set_hook_enabled("hook_a", false, Some("endpoint answered 410 Gone"))
        .await
        .unwrap();
    let disabled = store.get_hook("hook_a").await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        disabled.disabled_reason.as_deref(),
        Some("endpoint answered 410 Gone")
    );
    store.set_hook_enabled("hook_a", true, None).await.unwrap();
    assert!(store
        .get_hook("hook_a")
        .await
        .unwrap()
        .unwrap()
        .disabled_reason
        .is_none());
    assert!(store.set_hook_enabled("nope", true, None).await.is_err());

    store
        .create_hook(&hook("hook_b", &["PostSignIn"]))
        .await
        .unwrap();
    let ids: Vec<_> = store
        .list_hooks()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(ids, ["hook_a", "hook_b"]);
    store.delete_hook("hook_b").await.unwrap();
    assert!(store.get_hook("hook_b").await.unwrap().is_none());
    assert!(matches!(
        store.delete_hook("hook_b").await,
        Err(StoreError::NotFound { .. })
    ));

    let plugin = PluginRecord {
        name: "enrich".into(),
        hash: "ab".repeat(32),
        size: 3,
        bytes: vec![1, 2, 3],
        created_at: now_ms(),
    };
    store.put_plugin(&plugin).await.unwrap();
    assert_eq!(store.get_plugin("enrich").await.unwrap().unwrap(), plugin);
    let listed = store.list_plugins().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].bytes.is_empty(), "listings carry no bytes");
    store.delete_plugin("enrich").await.unwrap();
    assert!(store.get_plugin("enrich").await.unwrap().is_none());
    assert!(store.delete_plugin("enrich").await.is_err());
}

async fn ingest_fans_out_to_subscribed_enabled_hooks(store: SharedStore) {
    let mut off = hook("hook_off", &["PostSignIn"]);
    off.enabled = false;
    setup(
        &store,
        &[
            hook("hook_1", &["PostSignIn"]),
            hook("hook_2", &["PostSignIn", "User.Created"]),
            hook("hook_3", &["User.Deleted"]),
            off,
        ],
    )
    .await;
    let ingested = ingest_one(&store, event(Some("evt_fan"), "PostSignIn")).await;
    assert!(!ingested.duplicate);
    let hooks: Vec<_> = ingested
        .deliveries
        .iter()
        .map(|d| d.hook_id.as_str())
        .collect();
    assert_eq!(hooks, ["hook_1", "hook_2"]);

    let (delivery, attempts) = store
        .delivery(&ingested.deliveries[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!(delivery.event_id, "evt_fan");
    assert!(attempts.is_empty());

    let nobody = ingest_one(&store, event(None, "Role.Created")).await;
    assert!(nobody.deliveries.is_empty(), "stored, but no hook wants it");
    assert!(nobody.event_id.starts_with("evt_"));
    let stored = store
        .events_between(0, now_ms() + 1, 10, None)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    // Both may share a millisecond, and then they are in id order.
    let fan = stored.iter().find(|e| e.id == "evt_fan").unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&fan.payload).unwrap()["userId"],
        "u1"
    );
}

async fn ingest_is_idempotent_on_event_id(store: SharedStore) {
    setup(
        &store,
        &[
            hook("hook_1", &["PostSignIn"]),
            hook("hook_2", &["PostSignIn"]),
        ],
    )
    .await;
    let first = ingest_one(&store, event(Some("evt_same"), "PostSignIn")).await;
    let again = ingest_one(&store, event(Some("evt_same"), "PostSignIn")).await;
    assert!(again.duplicate);
    assert_eq!(again.deliveries, first.deliveries);

    let batch = store
        .ingest(vec![
            event(Some("evt_twice"), "PostSignIn"),
            event(Some("evt_twice"), "PostSignIn"),
        ])
        .await
        .unwrap();
    let (a, b) = (batch[0].as_ref().unwrap(), batch[1].as_ref().unwrap());
    assert!(!a.duplicate && b.duplicate);
    assert_eq!(a.deliveries, b.deliveries);
    assert_eq!(
        store.queue_depth().await.unwrap().pending,
        4,
        "two events x two hooks, nothing more"
    );

    // The same id for another event is refused, alone, and changes nothing.
    let mut other = event(Some("evt_same"), "PostSignIn");
    other.payload = json!({"userId": "someone else"}).to_string();
    let mixed = store
        .ingest(vec![other, event(Some("evt_fresh"), "PostSignIn")])
        .await
        .unwrap();
    assert!(
        matches!(&mixed[0], Err(StoreError::Conflict { kind: "event", id }) if id == "evt_same"),
        "{:?}",
        mixed[0]
    );
    assert!(
        mixed[1].as_ref().is_ok_and(|i| !i.duplicate),
        "the rest is stored"
    );
    let mut reordered = event(Some("evt_same"), "PostSignIn");
    let original: serde_json::Value = serde_json::from_str(&reordered.payload).unwrap();
    let mut keys: Vec<_> = original.as_object().unwrap().iter().collect();
    keys.reverse();
    reordered.payload = serde_json::Value::Object(
        keys.into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
    .to_string();
    assert!(
        ingest_one(&store, reordered).await.duplicate,
        "the same JSON, reordered"
    );
}

async fn bad_input_is_refused_and_changes_nothing(store: SharedStore) {
    setup(&store, &[hook("hook_1", &["PostSignIn"])]).await;
    let mut big = event(Some("evt_big"), "PostSignIn");
    big.payload = json!({"blob": "z".repeat(5000)}).to_string();
    let results = store
        .ingest(vec![
            big,
            event(Some("bad id with spaces"), "PostSignIn"),
            event(None, ""),
            event(Some("evt_ok"), "PostSignIn"),
        ])
        .await
        .unwrap();
    assert!(
        matches!(&results[0], Err(StoreError::Invalid(m)) if m.contains("cap")),
        "{:?}",
        results[0]
    );
    assert!(
        matches!(&results[1], Err(StoreError::Invalid(m)) if m.contains("event id")),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], Err(StoreError::Invalid(m)) if m.contains("name")),
        "{:?}",
        results[2]
    );
    assert!(results[3].is_ok(), "a bad event spoils no other");

    let unknown_hook = store.enqueue("evt_ok", "hook_missing").await.unwrap_err();
    assert!(
        matches!(unknown_hook, StoreError::NotFound { kind: "hook", .. }),
        "{unknown_hook}"
    );
    let unknown_event = store.enqueue("evt_missing", "hook_1").await.unwrap_err();
    assert!(matches!(
        unknown_event,
        StoreError::NotFound { kind: "event", .. }
    ));

    let events = store
        .events_between(0, now_ms() + 1, 10, None)
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["evt_ok"]
    );
    assert_eq!(store.queue_depth().await.unwrap().pending, 1);
}

async fn expired_leases_are_taken_over(store: SharedStore) {
    setup(&store, &[hook("hook_1", &["PostSignIn"])]).await;
    let id = ingest_one(&store, event(None, "PostSignIn"))
        .await
        .deliveries[0]
        .id
        .clone();
    let lease = Duration::from_millis(300);

    let mine = store.claim("worker_a", 10, lease).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].delivery.status, DeliveryStatus::InFlight);
    assert_eq!(mine[0].event_name, "PostSignIn");
    assert!(
        store.claim("worker_b", 10, lease).await.unwrap().is_empty(),
        "leased work is not due"
    );
    assert_eq!(
        store
            .renew("worker_a", std::slice::from_ref(&id), lease)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .renew("worker_b", std::slice::from_ref(&id), lease)
            .await
            .unwrap(),
        0
    );

    // worker_a dies; its lease runs out and worker_b takes the delivery over.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let taken = store.claim("worker_b", 10, lease).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].delivery.id, id);

    let late = store
        .finish_attempt("worker_a", &id, Some(attempt(true)), Next::Succeeded)
        .await
        .unwrap_err();
    assert!(matches!(late, StoreError::LeaseLost(_)), "{late}");
    let missing = store
        .finish_attempt(
            "worker_b",
            "dlv_missing",
            Some(attempt(false)),
            Next::Succeeded,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            StoreError::NotFound {
                kind: "delivery",
                ..
            }
        ),
        "{missing}"
    );
    store
        .finish_attempt("worker_b", &id, Some(attempt(true)), Next::Succeeded)
        .await
        .unwrap();
    let (delivery, attempts) = store.delivery(&id).await.unwrap().unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(attempts.len(), 1, "the lost lease recorded nothing");
}

async fn concurrent_claimers_never_share_a_delivery(store: SharedStore) {
    setup(
        &store,
        &[
            hook("hook_1", &["PostSignIn"]),
            hook("hook_2", &["PostSignIn"]),
        ],
    )
    .await;
    let events: Vec<_> = (0..150).map(|_| event(None, "PostSignIn")).collect();
    let created: usize = store
        .ingest(events)
        .await
        .unwrap()
        .iter()
        .map(|r| r.as_ref().unwrap().deliveries.len())
        .sum();
    assert_eq!(created, 300);

    let mut workers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let store = store.clone();
        workers.spawn(async move {
            let owner = format!("worker_{w}");
            let mut seen = Vec::new();
            loop {
                let batch = store
                    .claim(&owner, 7, Duration::from_secs(60))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return seen;
                }
                for claimed in batch {
                    store
                        .finish_attempt(
                            &owner,
                            &claimed.delivery.id,
                            Some(attempt(true)),
                            Next::Succeeded,
                        )
                        .await
                        .unwrap();
                    seen.push(claimed.delivery.id);
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(seen) = workers.join_next().await {
        all.extend(seen.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 300, "every delivery claimed once");
    assert_eq!(unique.len(), 300, "no delivery claimed twice");
    let depth = store.queue_depth().await.unwrap();
    assert_eq!((depth.pending, depth.in_flight), (0, 0));
}

async fn retries_are_scheduled_logged_and_given_up(store: SharedStore) {
    setup(&store, &[hook("hook_1", &["PostSignIn"])]).await;
    let id = ingest_one(&store, event(None, "PostSignIn"))
        .await
        .deliveries[0]
        .id
        .clone();
    let lease = Duration::from_secs(30);

    store.claim("w", 1, lease).await.unwrap();
    let retry_at = now_ms() + 400;
    store
        .finish_attempt("w", &id, Some(attempt(false)), Next::Retry { at: retry_at })
        .await
        .unwrap();
    let (waiting, _) = store.delivery(&id).await.unwrap().unwrap();
    assert_eq!(
        (waiting.status, waiting.attempts, waiting.due_at),
        (DeliveryStatus::Pending, 1, Some(retry_at))
    );
    assert_eq!(waiting.last_error.as_deref(), Some("receiver answered 500"));
    assert!(
        store.claim("w", 1, lease).await.unwrap().is_empty(),
        "not due yet"
    );
    assert!(store.queue_depth().await.unwrap().oldest_due_ms.is_none());

    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = store.claim("w", 1, lease).await.unwrap();
    assert_eq!(again[0].delivery.attempts, 1);
    store
        .finish_attempt("w", &id, Some(attempt(false)), Next::GiveUp)
        .await
        .unwrap();

    let (dead, attempts) = store.delivery(&id).await.unwrap().unwrap();
    assert_eq!((dead.status, dead.attempts), (DeliveryStatus::Failed, 2));
    assert!(dead.finished_at.is_some());
    assert_eq!(
        attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(attempts[0].detail.response_status, Some(500));
    assert_eq!(
        attempts[0].detail.request_headers,
        [("content-type".to_string(), "application/json".to_string())]
    );
    assert_eq!(
        attempts[0].detail.response_body.as_deref().map(str::len),
        Some(64),
        "logged body capped"
    );
    assert_eq!(
        attempts[0].detail.request_body.len(),
        64,
        "logged request body capped"
    );
    let stats = store.hook_stats("hook_1", now_ms() - 60_000).await.unwrap();
    assert_eq!((stats.requests, stats.successes, stats.failures), (2, 0, 2));
    assert_eq!(
        (stats.latency_ms.p50, stats.latency_ms.p99),
        (Some(12), Some(12))
    );

    // A manual retry makes it due again; this time it succeeds.
    store.retry_now(&id).await.unwrap();
    let manual = store.claim("w", 1, lease).await.unwrap();
    assert_eq!(manual.len(), 1);
    assert!(
        matches!(store.retry_now(&id).await, Err(StoreError::Invalid(_))),
        "in flight"
    );
    store
        .finish_attempt("w", &id, Some(attempt(true)), Next::Succeeded)
        .await
        .unwrap();
    let since = now_ms() - 60_000;
    let stats = store.hook_stats("hook_1", since).await.unwrap();
    assert_eq!((stats.requests, stats.successes, stats.failures), (3, 1, 2));
    let counts = store.hook_counts("hook_1", since).await.unwrap();
    assert_eq!(
        counts,
        wasmhooks::store::HookStats {
            latency_ms: Default::default(),
            ..stats
        }
    );
    let samples = store.attempt_samples("hook_1", since).await.unwrap();
    assert_eq!(samples.len(), 3);
    assert_eq!(samples.iter().filter(|s| s.success).count(), 1);
    assert!(samples.iter().all(|s| s.sent && s.duration_ms == 12));
    // The attempts, made in the last few seconds, fall in the last periods.
    let periods = wasmhooks::store::bucketed(&samples, since, 15_000, 5);
    assert_eq!(periods.iter().map(|b| b.stats.requests).sum::<u64>(), 3);
    assert!(periods[..3].iter().all(|b| b.stats.requests == 0));
    assert_eq!(periods[1].start, since + 15_000);

    // Cancellation records its reason, and no attempt: nothing was sent.
    let other = ingest_one(&store, event(None, "PostSignIn"))
        .await
        .deliveries[0]
        .id
        .clone();
    store.claim("w", 1, lease).await.unwrap();
    store
        .finish_attempt(
            "w",
            &other,
            None,
            Next::Cancelled {
                reason: "filtered out".into(),
            },
        )
        .await
        .unwrap();
    let (c, attempts) = store.delivery(&other).await.unwrap().unwrap();
    assert!(attempts.is_empty());
    assert_eq!(
        (c.status, c.last_error.as_deref()),
        (DeliveryStatus::Cancelled, Some("filtered out"))
    );
    assert!(matches!(
        store.retry_now("dlv_missing").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn an_endpoints_failing_streak_is_kept(store: SharedStore) {
    setup(&store, &[hook("hook_1", &["PostSignIn"])]).await;
    let lease = Duration::from_secs(30);
    let failing_since = || async {
        store
            .get_hook("hook_1")
            .await
            .unwrap()
            .unwrap()
            .failing_since
    };
    let attempt_once = |a: NewAttempt| {
        let store = store.clone();
        async move {
            ingest_one(&store, event(None, "PostSignIn")).await;
            let claimed = store.claim("w", 1, lease).await.unwrap();
            store
                .finish_attempt("w", &claimed[0].delivery.id, Some(a), Next::GiveUp)
                .await
                .unwrap();
        }
    };
    assert_eq!(failing_since().await, None);
    let before = now_ms();
    attempt_once(attempt(false)).await;
    let started = failing_since().await.expect("a failure starts the streak");
    assert!(started >= before);
    attempt_once(attempt(false)).await;
    assert_eq!(
        failing_since().await,
        Some(started),
        "a later failure keeps its start"
    );
    let unsent = NewAttempt {
        request_headers: vec![],
        ..attempt(false)
    };
    attempt_once(unsent).await;
    attempt_once(attempt(true)).await;
    assert_eq!(failing_since().await, None, "a success ends it");
    attempt_once(attempt(false)).await;
    assert!(failing_since().await.is_some());
    store.set_hook_enabled("hook_1", true, None).await.unwrap();
    assert_eq!(failing_since().await, None, "re-enabling starts afresh");
    let unsent = NewAttempt {
        request_headers: vec![],
        ..attempt(false)
    };
    attempt_once(unsent).await;
    assert_eq!(
        failing_since().await,
        None,
        "an attempt that sent nothing says nothing about the endpoint"
    );
}

async fn deliveries_are_listed_by_filter_and_page(store: SharedStore) {
    setup(&store, &[hook("hook_1", &["PostSignIn"])]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            ingest_one(&store, event(None, "PostSignIn"))
                .await
                .deliveries[0]
                .id
                .clone(),
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    store.claim("w", 1, Duration::from_secs(30)).await.unwrap();
    store
        .finish_attempt("w", &ids[0], Some(attempt(true)), Next::Succeeded)
        .await
        .unwrap();

    let query = |status, after: Option<String>| DeliveryQuery {
        hook_id: Some("hook_1".into()),
        status,
        limit: 2,
        after,
        ..DeliveryQuery::default()
    };
    let page1 = store.deliveries(&query(None, None)).await.unwrap();
    assert_eq!(
        page1.iter().map(|d| &d.id).collect::<Vec<_>>(),
        [&ids[4], &ids[3]],
        "newest first"
    );
    let page2 = store
        .deliveries(&query(None, Some(page1[1].id.clone())))
        .await
        .unwrap();
    assert_eq!(
        page2.iter().map(|d| &d.id).collect::<Vec<_>>(),
        [&ids[2], &ids[1]]
    );
    let succeeded = store
        .deliveries(&query(Some(DeliveryStatus::Succeeded), None))
        .await
        .unwrap();
    assert_eq!(
        succeeded.iter().map(|d| &d.id).collect::<Vec<_>>(),
        [&ids[0]]
    );
    let since = DeliveryQuery {
        since: Some(now_ms() + 60_000),
        ..query(None, None)
    };
    assert!(store.deliveries(&since).await.unwrap().is_empty());

    // Without a hook, every hook's deliveries are listed.
    store
        .create_hook(&hook("hook_2", &["PostSignIn"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3)).await;
    let newest = ingest_one(&store, event(None, "PostSignIn")).await;
    let every = store
        .deliveries(&DeliveryQuery {
            hook_id: None,
            limit: 3,
            ..DeliveryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(every.len(), 3);
    let mut hooks: Vec<&str> = every[..2].iter().map(|d| d.hook_id.as_str()).collect();
    hooks.sort();
    assert_eq!(hooks, ["hook_1", "hook_2"], "{newest:?}");
}

async fn retention_prunes_only_old_finished_events(store: SharedStore) {
    setup(&store, &[hook("hook_1", &["PostSignIn"])]).await;
    let old = now_ms() - 40 * 24 * 3600 * 1000;
    let mut events = Vec::new();
    for i in 0..7 {
        let mut e = event(Some(&format!("evt_old_{i}")), "PostSignIn");
        e.created_at = old;
        events.push(e);
    }
    let mut pending_old = event(Some("evt_old_pending"), "PostSignIn");
    pending_old.created_at = old;
    let fresh = event(Some("evt_fresh"), "PostSignIn");
    store.ingest(events).await.unwrap();
    // Finish the seven old deliveries; the eighth old one stays pending.
    let claimed = store
        .claim("w", 100, Duration::from_secs(30))
        .await
        .unwrap();
    for c in &claimed {
        store
            .finish_attempt("w", &c.delivery.id, Some(attempt(true)), Next::Succeeded)
            .await
            .unwrap();
    }
    store.ingest(vec![pending_old, fresh]).await.unwrap();

    let pruned = store
        .prune(now_ms() - 30 * 24 * 3600 * 1000, 3)
        .await
        .unwrap();
    assert_eq!(pruned, 7, "three batches: 3 + 3 + 1");
    let left: Vec<_> = store
        .events_between(0, now_ms() + 1, 100, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, ["evt_old_pending", "evt_fresh"]);
    assert!(
        store
            .delivery(&claimed[0].delivery.id)
            .await
            .unwrap()
            .is_none(),
        "deliveries go with their event"
    );
}

async fn idle_workers_wake_when_work_arrives(store: SharedStore) {
    setup(&store, &[hook("hook_1", &["PostSignIn"])]).await;
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            store.wait_for_work(Duration::from_secs(30)).await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    ingest_one(&store, event(None, "PostSignIn")).await;
    let waited = waiter.await.unwrap();
    assert!(
        waited < Duration::from_secs(10),
        "woken by the new work, not the 30 s timeout: {waited:?}"
    );
}

async fn claims_take_only_each_hooks_free_slots(store: SharedStore) {
    setup(
        &store,
        &[
            hook("hook_busy", &["PostSignIn"]),
            hook("hook_free", &["PostSignIn"]),
            hook("hook_new", &["PostSignIn"]),
        ],
    )
    .await;
    for _ in 0..5 {
        ingest_one(&store, event(None, "PostSignIn")).await;
    }
    let lease = Duration::from_secs(30);
    let free = FreeSlots {
        slots: [("hook_busy".to_string(), 0), ("hook_free".to_string(), 2)].into(),
        default: 1,
    };
    assert!(
        store.next_due(&free).await.unwrap().unwrap() <= now_ms(),
        "work is due now"
    );
    let claimed = store.claim_free("worker", 100, lease, &free).await.unwrap();
    let mut per_hook: Vec<&str> = claimed
        .iter()
        .map(|c| c.delivery.hook_id.as_str())
        .collect();
    per_hook.sort();
    assert_eq!(
        per_hook,
        ["hook_free", "hook_free", "hook_new"],
        "two for the free hook, one for the unknown one, none for the busy one"
    );
    assert!(claimed
        .iter()
        .all(|c| c.delivery.status == DeliveryStatus::InFlight));

    let none = FreeSlots {
        slots: [
            ("hook_busy".to_string(), 0),
            ("hook_free".to_string(), 0),
            ("hook_new".to_string(), 0),
        ]
        .into(),
        default: 0,
    };
    assert!(store
        .claim_free("worker", 100, lease, &none)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.next_due(&none).await.unwrap(),
        None,
        "nothing it may take"
    );
    // What was claimed is due again only when its lease ends.
    let all = FreeSlots {
        slots: Default::default(),
        default: 100,
    };
    let rest = store.claim_free("worker", 100, lease, &all).await.unwrap();
    assert_eq!(rest.len(), 12, "the other twelve");
    let next = store.next_due(&all).await.unwrap().unwrap();
    assert!(next > now_ms() + 20_000, "the leases' end: {next}");
}

async fn times_outside_rfc3339_are_refused(store: SharedStore) {
    setup(&store, &[hook("hook_1", &["PostSignIn"])]).await;
    for created_at in [-1, 253_402_300_800_000] {
        let mut e = event(None, "PostSignIn");
        e.created_at = created_at;
        let refused = store.ingest(vec![e]).await;
        let refused = match refused {
            Err(e) => e,
            Ok(mut results) => results.pop().unwrap().unwrap_err(),
        };
        assert!(
            matches!(&refused, StoreError::Invalid(m) if m.contains("createdAt")),
            "{refused}"
        );
    }
    let ok = event(None, "PostSignIn");
    ingest_one(&store, ok).await;
}

async fn an_ordered_hooks_order_comes_from_the_store(store: SharedStore) {
    let mut ordered = hook("hook_ordered", &["PostSignIn"]);
    ordered.ordered = true;
    setup(&store, &[ordered]).await;
    // Many committers at once, as several processes would ingest.
    let mut ingests = tokio::task::JoinSet::new();
    for n in 0..20 {
        let store = store.clone();
        ingests.spawn(async move {
            let mut e = event(Some(&format!("evt_{n:02}")), "PostSignIn");
            e.payload = json!({"n": n}).to_string();
            store.ingest(vec![e]).await.unwrap();
        });
    }
    while let Some(done) = ingests.join_next().await {
        done.unwrap();
    }
    let lease = Duration::from_secs(30);
    let mut sent = HashSet::new();
    for _ in 0..20 {
        let claimed = store.claim("worker", 10, lease).await.unwrap();
        assert_eq!(claimed.len(), 1, "one at a time");
        let delivery = &claimed[0].delivery;
        assert!(sent.insert(delivery.event_id.clone()), "each once");
        store
            .finish_attempt("worker", &delivery.id, Some(attempt(true)), Next::Succeeded)
            .await
            .unwrap();
    }
    assert_eq!(sent.len(), 20);
    assert!(store.claim("worker", 10, lease).await.unwrap().is_empty());
}

async fn sources_round_trip(store: SharedStore) {
    let logto = r#"{"kind":"logto","signing_key":"k1"}"#;
    store.put_source("logto", logto).await.unwrap();
    store
        .put_source("billing", r#"{"kind":"standard-webhooks"}"#)
        .await
        .unwrap();
    assert_eq!(
        store.get_source("logto").await.unwrap().as_deref(),
        Some(logto)
    );
    let replaced = r#"{"kind":"logto","signing_key":"k2"}"#;
    store.put_source("logto", replaced).await.unwrap();
    let all = store.list_sources().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["billing", "logto"]);
    assert_eq!(all[1].1, replaced);
    store.delete_source("billing").await.unwrap();
    assert_eq!(store.get_source("billing").await.unwrap(), None);
    let missing = store.delete_source("billing").await.unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { kind: "source", .. }),
        "{missing}"
    );
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (_dir, path) = super::sqlite_path();
                    let store = wasmhooks::store::open(path.to_str().unwrap(), super::limits()).await.unwrap();
                    super::$test(store).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(db) = super::PostgresDb::create(stringify!($test)).await else {
                        eprintln!("skipped: set WASMHOOKS_TEST_POSTGRES_URL to run the PostgreSQL suite");
                        return;
                    };
                    let store = wasmhooks::store::open(&db.url, super::limits()).await.unwrap();
                    super::$test(store.clone()).await;
                    drop(store);
                    db.drop_database().await;
                }
            )*
        }
    };
}

conformance!(
    hooks_and_plugins_round_trip,
    ingest_fans_out_to_subscribed_enabled_hooks,
    ingest_is_idempotent_on_event_id,
    bad_input_is_refused_and_changes_nothing,
    expired_leases_are_taken_over,
    concurrent_claimers_never_share_a_delivery,
    retries_are_scheduled_logged_and_given_up,
    an_endpoints_failing_streak_is_kept,
    deliveries_are_listed_by_filter_and_page,
    retention_prunes_only_old_finished_events,
    idle_workers_wake_when_work_arrives,
    claims_take_only_each_hooks_free_slots,
    times_outside_rfc3339_are_refused,
    an_ordered_hooks_order_comes_from_the_store,
    sources_round_trip,
);

#[test]
fn shared_store_is_object_safe() {
    fn takes(_: Option<Arc<dyn wasmhooks::store::Store>>) {}
    takes(None);
}
