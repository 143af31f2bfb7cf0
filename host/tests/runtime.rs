//! The plugin runtime end to end: example plugins built from `plugins/` run
//! through the real runtime; hostile fixtures prove every limit, and that the
//! runtime keeps serving after each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Query;
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use wasmhooks::runtime::{
    Blame, CallReport, Deadline, Grants, Limits, Origin, Outcome, Patch, Plugin, PluginError,
    PluginEvent, Runtime, RuntimeConfig,
};
use wasmhooks_testkit::{plugin_bytes, Receiver};

fn runtime_with(limits: Limits) -> Runtime {
    Runtime::new(RuntimeConfig {
        limits,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn runtime() -> Runtime {
    runtime_with(Limits::default())
}

fn event(name: &str, payload: Value, trigger: Option<&str>) -> PluginEvent {
    PluginEvent {
        id: "evt_1".into(),
        name: name.into(),
        created_at: "2026-11-28T10:00:00.000Z".into(),
        payload: serde_json::value::RawValue::from_string(payload.to_string()).unwrap(),
        hook_id: "hook_1".into(),
        trigger: trigger.map(String::from),
    }
}

fn grants(config: &[(&str, &str)]) -> Arc<Grants> {
    Arc::new(Grants {
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Grants::default()
    })
}

fn load(runtime: &Runtime, name: &str) -> Plugin {
    runtime.load(&plugin_bytes(name)).expect("load plugin")
}

/// The payload of a `Continue` outcome.
fn continued(result: Result<Outcome, PluginError>) -> Value {
    match result {
        Ok(Outcome::Continue {
            payload: Some(payload),
            ..
        }) => serde_json::from_str(payload.get()).unwrap(),
        other => panic!("expected continue with a payload, got {other:?}"),
    }
}

fn interaction() -> Value {
    json!({
        "event": "PostSignIn",
        "interactionEvent": "SignIn",
        "userId": "u_1",
        "user": {"id": "u_1", "primaryEmail": "ada@example.com", "name": "Ada"},
        "userIp": "203.0.113.7",
        "userAgent": "Mozilla/5.0"
    })
}

/// Run the hostile fixture with `grant`, check the runtime still serves a
/// normal call afterwards, and return the hostile call's report.
async fn hostile(runtime: &Runtime, grant: &Arc<Grants>) -> CallReport {
    let plugin = load(runtime, "hostile");
    let report = plugin
        .call(&event("PostSignIn", json!({}), None), grant)
        .await;
    // Generous: every limit here trips in milliseconds; only the deadline
    // test waits for its (shortened) timeout.
    assert!(
        report.duration < Duration::from_secs(10),
        "took {:?}",
        report.duration
    );
    assert_still_serves(runtime).await;
    report
}

/// After a hostile call, the same runtime must still serve a normal one.
async fn assert_still_serves(runtime: &Runtime) {
    let hostile = load(runtime, "hostile");
    let report = hostile
        .call(
            &event("PostSignIn", json!({"ok": true}), None),
            &grants(&[("mode", "ok")]),
        )
        .await;
    assert_eq!(continued(report.result), json!({"ok": true}));
}

#[tokio::test]
async fn enrich_adds_configured_fields() {
    let runtime = runtime();
    let plugin = load(&runtime, "enrich");
    let report = plugin
        .call(
            &event("PostSignIn", interaction(), None),
            &grants(&[
                ("tenant", "acme"),
                ("meta.environment", "production"),
                ("meta.shard", "3"),
            ]),
        )
        .await;
    let payload = continued(report.result);
    assert_eq!(payload["tenant"], "acme");
    assert_eq!(
        payload["meta"],
        json!({"environment": "production", "shard": 3})
    );
    assert_eq!(payload["userId"], "u_1", "existing fields stay");
}

#[tokio::test]
async fn redact_masks_or_removes_paths() {
    let runtime = runtime();
    let plugin = load(&runtime, "redact");
    let masked = continued(
        plugin
            .call(
                &event("PostSignIn", interaction(), None),
                &grants(&[("paths", "userIp, user.primaryEmail, not.there")]),
            )
            .await
            .result,
    );
    assert_eq!(masked["userIp"], "[redacted]");
    assert_eq!(masked["user"]["primaryEmail"], "[redacted]");
    assert_eq!(masked["user"]["name"], "Ada");

    let removed = continued(
        plugin
            .call(
                &event("PostSignIn", interaction(), None),
                &grants(&[("paths", "userIp,user.primaryEmail"), ("mode", "remove")]),
            )
            .await
            .result,
    );
    assert!(removed.get("userIp").is_none());
    assert!(removed["user"].get("primaryEmail").is_none());

    let misconfigured = plugin
        .call(&event("PostSignIn", interaction(), None), &grants(&[]))
        .await;
    assert!(
        matches!(&misconfigured.result, Err(PluginError::Failed(m)) if m.contains("paths")),
        "{:?}",
        misconfigured.result
    );
}

#[tokio::test]
async fn filter_cancels_unless_payload_matches() {
    let runtime = runtime();
    let plugin = load(&runtime, "filter");
    let only_example = grants(&[("path", "user.primaryEmail"), ("ends-with", "@example.com")]);
    let kept = plugin
        .call(&event("PostSignIn", interaction(), None), &only_example)
        .await;
    assert!(
        matches!(kept.result, Ok(Outcome::Continue { payload: None, .. })),
        "{:?}",
        kept.result
    );

    let mut other = interaction();
    other["user"]["primaryEmail"] = json!("bob@elsewhere.org");
    let dropped = plugin
        .call(&event("PostSignIn", other, None), &only_example)
        .await;
    assert!(
        matches!(&dropped.result, Ok(Outcome::Cancel { reason }) if reason.contains("user.primaryEmail")),
        "{:?}",
        dropped.result
    );

    let by_event = grants(&[("path", "interactionEvent"), ("one-of", "Register, SignIn")]);
    let report = plugin
        .call(&event("PostSignIn", interaction(), None), &by_event)
        .await;
    assert!(matches!(report.result, Ok(Outcome::Continue { .. })));
}

#[tokio::test]
async fn block_disposable_email_denies_sync_registration() {
    let runtime = runtime();
    let plugin = load(&runtime, "block-disposable-email");
    let none = grants(&[]);
    let trigger = Some("pre-registration");

    let denied = plugin
        .call(
            &event(
                "PostRegister",
                json!({"email": "x@Mailinator.com"}),
                trigger,
            ),
            &none,
        )
        .await;
    match denied.result {
        Ok(Outcome::Deny { code, message }) => {
            assert_eq!(code, "disposable_email");
            assert!(message.contains("permanent"));
        }
        other => panic!("expected deny, got {other:?}"),
    }

    let sub = plugin
        .call(
            &event(
                "PostRegister",
                json!({"user": {"primaryEmail": "x@eu.yopmail.com"}}),
                trigger,
            ),
            &none,
        )
        .await;
    assert!(
        matches!(sub.result, Ok(Outcome::Deny { .. })),
        "{:?}",
        sub.result
    );

    let fine = plugin
        .call(
            &event("PostRegister", json!({"email": "ada@example.com"}), trigger),
            &none,
        )
        .await;
    assert!(
        matches!(fine.result, Ok(Outcome::Allow { patch: None })),
        "{:?}",
        fine.result
    );

    let extra = grants(&[("domains", "throwaway.test")]);
    let custom = plugin
        .call(
            &event(
                "PostRegister",
                json!({"email": "a@throwaway.test"}),
                trigger,
            ),
            &extra,
        )
        .await;
    assert!(matches!(custom.result, Ok(Outcome::Deny { .. })));

    let async_delivery = plugin
        .call(
            &event("PostRegister", json!({"email": "x@mailinator.com"}), None),
            &none,
        )
        .await;
    assert!(matches!(async_delivery.result, Ok(Outcome::Cancel { .. })));
}

fn geo_receiver() -> Router {
    Router::new().route(
        "/geo",
        get(|Query(q): Query<std::collections::HashMap<String, String>>, headers: HeaderMap| async move {
            let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
            Json(json!({"ip": q.get("ip"), "country": "NZ", "auth": auth}))
        }),
    )
}

fn loopback_grant(config: &[(&str, &str)], hosts: &[&str], networks: &[&str]) -> Arc<Grants> {
    let mut g = (*grants(config)).clone();
    g.http.hosts = hosts.iter().map(|h| h.parse().unwrap()).collect();
    g.http.private_networks = networks.iter().map(|n| n.parse().unwrap()).collect();
    g.secrets.insert("api-key".into(), "k3y".into());
    Arc::new(g)
}

#[tokio::test]
async fn geo_lookup_calls_a_granted_http_api() {
    let receiver = Receiver::start(geo_receiver()).await;
    let runtime = runtime();
    let plugin = load(&runtime, "geo-lookup");
    let url = receiver.url("/geo?ip={ip}");
    let grant = loopback_grant(&[("url", &url)], &["127.0.0.1"], &["127.0.0.1/32"]);
    let report = plugin
        .call(&event("PostSignIn", interaction(), None), &grant)
        .await;
    let payload = continued(report.result);
    assert_eq!(
        payload["geo"],
        json!({"ip": "203.0.113.7", "country": "NZ", "auth": "Bearer k3y"})
    );
    assert!(report
        .logs
        .lines
        .iter()
        .any(|l| l.message == "looked up 203.0.113.7"));
}

#[tokio::test]
async fn hostile_infinite_loop_hits_the_deadline() {
    let runtime = runtime_with(Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    let started = Instant::now();
    let report = hostile(&runtime, &grants(&[("mode", "loop")])).await;
    assert!(
        matches!(report.result, Err(PluginError::DeadlineExceeded { .. })),
        "{:?}",
        report.result
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "deadline held: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn hostile_memory_bomb_hits_the_memory_cap() {
    let runtime = runtime_with(Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    });
    let report = hostile(&runtime, &grants(&[("mode", "memory")])).await;
    assert!(
        matches!(report.result, Err(PluginError::MemoryLimit { limit }) if limit == 32 << 20),
        "{:?}",
        report.result
    );
}

#[tokio::test]
async fn hostile_recursion_overflows_its_stack() {
    let runtime = runtime();
    let report = hostile(&runtime, &grants(&[("mode", "recursion")])).await;
    assert!(
        matches!(report.result, Err(PluginError::StackOverflow)),
        "{:?}",
        report.result
    );
}

#[tokio::test]
async fn hostile_huge_output_is_refused() {
    let runtime = runtime();
    let report = hostile(&runtime, &grants(&[("mode", "huge-output")])).await;
    assert!(
        matches!(report.result, Err(PluginError::OutputTooLarge { size, limit }) if size > limit),
        "{:?}",
        report.result
    );
}

#[tokio::test]
async fn hostile_panic_is_a_trap_with_its_message() {
    let runtime = runtime();
    let report = hostile(&runtime, &grants(&[("mode", "panic")])).await;
    match &report.result {
        Err(PluginError::Trap { message }) => {
            assert!(
                message.contains("hostile plugin panicked on purpose"),
                "{message}"
            )
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn hostile_http_to_an_ungranted_host_is_forbidden() {
    let receiver = Receiver::start(geo_receiver()).await;
    let runtime = runtime();
    // The receiver is real, but the grant names another host.
    let grant = loopback_grant(
        &[("mode", "http"), ("url", &receiver.url("/geo"))],
        &["api.example.com"],
        &["127.0.0.1/32"],
    );
    let report = hostile(&runtime, &grant).await;
    assert!(
        matches!(&report.result, Err(PluginError::ForbiddenHost(h)) if h.starts_with("127.0.0.1:")),
        "{:?}",
        report.result
    );
}

#[tokio::test]
async fn hostile_http_to_loopback_without_a_network_grant_is_blocked() {
    let receiver = Receiver::start(geo_receiver()).await;
    let runtime = runtime();
    for host in ["127.0.0.1", "localhost"] {
        let url = receiver.url("/geo").replace("127.0.0.1", host);
        let grant = loopback_grant(&[("mode", "http"), ("url", &url)], &[host], &[]);
        let report = hostile(&runtime, &grant).await;
        assert!(
            matches!(&report.result, Err(PluginError::BlockedAddress { host: h, .. }) if h == host),
            "{host}: {:?}",
            report.result
        );
    }
}

#[tokio::test]
async fn hostile_redirect_to_a_private_address_is_blocked() {
    // 127.0.0.1 is granted explicitly; it redirects to 127.0.0.2, which is not.
    let receiver = Receiver::start(Router::new().route(
        "/hop",
        get(|| async { Redirect::temporary("http://127.0.0.2:9/internal") }),
    ))
    .await;
    let runtime = runtime();
    let grant = loopback_grant(
        &[("mode", "http"), ("url", &receiver.url("/hop"))],
        &["*"],
        &["127.0.0.1/32"],
    );
    let report = hostile(&runtime, &grant).await;
    assert!(
        matches!(&report.result, Err(PluginError::BlockedAddress { address, .. }) if address == "127.0.0.2"),
        "{:?}",
        report.result
    );
}

#[tokio::test]
async fn hostile_log_flood_is_capped_not_fatal() {
    let runtime = runtime_with(Limits {
        log_bytes: 4096,
        ..Limits::default()
    });
    let report = hostile(&runtime, &grants(&[("mode", "log-flood")])).await;
    assert!(
        matches!(report.result, Ok(Outcome::Continue { .. })),
        "{:?}",
        report.result
    );
    assert!(report.logs.truncated);
    let kept: usize = report.logs.lines.iter().map(|l| l.message.len()).sum();
    assert!(kept <= 4096 && kept > 3000, "kept {kept} bytes");
}

#[tokio::test]
async fn sync_outcome_on_an_async_call_is_invalid_output() {
    let runtime = runtime();
    let report = hostile(&runtime, &grants(&[("mode", "deny-async")])).await;
    assert!(
        matches!(&report.result, Err(PluginError::InvalidOutput(m)) if m.contains("synchronous")),
        "{:?}",
        report.result
    );
}

#[tokio::test]
async fn oversized_input_is_refused_before_running() {
    let runtime = runtime_with(Limits {
        input_bytes: 1024,
        ..Limits::default()
    });
    let plugin = load(&runtime, "hostile");
    let big = json!({"blob": "y".repeat(2000)});
    let report = plugin
        .call(&event("PostSignIn", big, None), &grants(&[("mode", "ok")]))
        .await;
    assert!(
        matches!(
            report.result,
            Err(PluginError::InputTooLarge { limit: 1024, .. })
        ),
        "{:?}",
        report.result
    );
}

#[tokio::test]
async fn components_of_the_wrong_kind_are_refused_at_load() {
    let runtime = runtime();
    let wrong = runtime.load(&plugin_bytes("wrong-world")).unwrap_err();
    assert!(
        matches!(&wrong, PluginError::WrongWorld(m) if m.contains("wasmhooks:hook/handler")),
        "{wrong}"
    );

    let core_module = b"\0asm\x01\0\0\0";
    let err = runtime.load(core_module).unwrap_err();
    assert!(
        matches!(&err, PluginError::InvalidComponent(m) if m.contains("core")),
        "{err}"
    );

    let err = runtime.load(b"definitely not wasm").unwrap_err();
    assert!(matches!(err, PluginError::InvalidComponent(_)), "{err}");

    let mut truncated = plugin_bytes("enrich");
    truncated.truncate(truncated.len() / 2);
    let err = runtime.load(&truncated).unwrap_err();
    assert!(matches!(err, PluginError::InvalidComponent(_)), "{err}");
    assert_still_serves(&runtime).await;
}

#[tokio::test]
async fn compiled_components_are_cached_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let bytes = plugin_bytes("enrich");
    let first = Runtime::new(config.clone()).unwrap().load(&bytes).unwrap();
    assert_eq!(first.origin(), Origin::Compiled);

    // A new runtime stands for a restarted host.
    let restarted = Runtime::new(config).unwrap();
    let again = restarted.load(&bytes).unwrap();
    assert_eq!(again.origin(), Origin::Cache);
    assert_eq!(again.hash(), first.hash());
    let report = again
        .call(
            &event("PostSignIn", json!({}), None),
            &grants(&[("tenant", "acme")]),
        )
        .await;
    assert_eq!(continued(report.result), json!({"tenant": "acme"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_instance_pool_wait_for_a_slot() {
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = load(&runtime, "enrich");
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..16 {
        let plugin = plugin.clone();
        calls.spawn(async move {
            let report = plugin
                .call(
                    &event("PostSignIn", json!({"n": i}), None),
                    &grants(&[("tenant", "acme")]),
                )
                .await;
            (i, continued(report.result))
        });
    }
    let mut done = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, payload) = joined.unwrap();
        assert_eq!(payload, json!({"n": i, "tenant": "acme"}));
        done += 1;
    }
    assert_eq!(done, 16);
}

#[tokio::test]
async fn patches_apply_in_order() {
    let mut doc = json!({"a": 1, "b": {"c": 2}});
    Patch::Merge(json!({"b": {"c": null, "d": 3}}))
        .apply(&mut doc)
        .unwrap();
    Patch::Json(serde_json::from_value(json!([{"op": "add", "path": "/e", "value": 4}])).unwrap())
        .apply(&mut doc)
        .unwrap();
    assert_eq!(doc, json!({"a": 1, "b": {"d": 3}, "e": 4}));
}

#[tokio::test]
async fn a_reused_instance_serves_many_calls_within_limits() {
    let runtime = runtime_with(Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    let enrich = load(&runtime, "enrich");
    let mut instance = enrich
        .reusable_instance(&grants(&[("tenant", "acme")]))
        .await
        .unwrap();
    for i in 0..3 {
        let payload = continued(
            instance
                .call(&event("PostSignIn", json!({"n": i}), None))
                .await,
        );
        assert_eq!(payload, json!({"n": i, "tenant": "acme"}));
    }
    let hostile = load(&runtime, "hostile");
    let mut looping = hostile
        .reusable_instance(&grants(&[("mode", "loop")]))
        .await
        .unwrap();
    let result = looping.call(&event("PostSignIn", json!({}), None)).await;
    assert!(
        matches!(result, Err(PluginError::DeadlineExceeded { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_handler_of_the_wrong_type_is_refused_at_load_naming_the_mismatch() {
    let bytes = plugin_bytes("wrong-signature");
    let err = Runtime::check(&bytes).unwrap_err();
    let PluginError::WrongWorld(message) = &err else {
        panic!("expected wrong_world, got {err:?}");
    };
    assert!(
        message.contains("wasmhooks:hook/handler@0.1.0") && message.contains("handle"),
        "{message}"
    );
    assert_eq!(err.kind(), "wrong_world");
    assert!(matches!(
        runtime().load(&bytes),
        Err(PluginError::WrongWorld(_))
    ));
    for good in ["enrich", "hostile", "geo-lookup"] {
        Runtime::check(&plugin_bytes(good)).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

#[tokio::test]
async fn a_deadline_error_names_the_deadline_and_the_time_taken() {
    let runtime = runtime_with(Limits {
        timeout: Duration::from_millis(150),
        ..Limits::default()
    });
    let report = hostile(&runtime, &grants(&[("mode", "loop")])).await;
    let err = report.result.unwrap_err();
    let PluginError::DeadlineExceeded { limit, took } = err else {
        panic!("expected a deadline, got {err:?}");
    };
    assert_eq!(limit, Duration::from_millis(150));
    assert!(took >= limit, "stopped after {took:?}, before the deadline");
    let message = err.to_string();
    assert!(
        message.contains("150ms") && message.contains("stopped after"),
        "{message}"
    );
}

/// On a single-threaded runtime a guest that never yielded would keep every
/// other task waiting until its deadline: a benign call finishing while the
/// loop still runs proves the guest gives its thread back.
#[tokio::test(flavor = "current_thread")]
async fn a_looping_guest_yields_its_thread_to_other_calls() {
    let runtime = runtime_with(Limits {
        timeout: Duration::from_secs(20),
        ..Limits::default()
    });
    let hostile = load(&runtime, "hostile");
    let looping = tokio::spawn({
        let hostile = hostile.clone();
        async move {
            hostile
                .call(
                    &event("PostSignIn", json!({}), None),
                    &grants(&[("mode", "loop")]),
                )
                .await
        }
    });
    for i in 0..3 {
        let report = hostile
            .call(
                &event("PostSignIn", json!({"i": i}), None),
                &grants(&[("mode", "ok")]),
            )
            .await;
        assert_eq!(continued(report.result), json!({"i": i}));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!looping.is_finished(), "the loop is still running");
    looping.abort();
}

#[tokio::test]
async fn the_memory_budget_is_shared_by_every_call() {
    let runtime = runtime_with(Limits {
        memory_bytes: 32 << 20,
        total_memory_bytes: 48 << 20,
        ..Limits::default()
    });
    let hostile = load(&runtime, "hostile");
    let bomb = grants(&[("mode", "memory")]);
    // A kept instance keeps the memory it grew until it is dropped.
    let mut holder = hostile.reusable_instance(&bomb).await.unwrap();
    let held = holder.call(&event("PostSignIn", json!({}), None)).await;
    assert!(
        matches!(held, Err(PluginError::MemoryLimit { .. })),
        "{held:?}"
    );
    assert!(runtime.memory_in_use().0 > 24 << 20);

    let report = hostile
        .call(&event("PostSignIn", json!({}), None), &bomb)
        .await;
    let err = report.result.unwrap_err();
    assert!(
        matches!(err, PluginError::MemoryBudget { budget } if budget == 48 << 20),
        "{err:?}"
    );
    assert_eq!(err.kind(), "memory_budget");

    drop(holder);
    assert_eq!(runtime.memory_in_use().0, 0, "all returned");
    let report = hostile
        .call(&event("PostSignIn", json!({}), None), &bomb)
        .await;
    assert!(
        matches!(report.result, Err(PluginError::MemoryLimit { .. })),
        "{:?}",
        report.result
    );
    assert_still_serves(&runtime).await;
}

#[tokio::test]
async fn a_call_that_gets_no_instance_slot_in_time_says_so() {
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let hostile = load(&runtime, "hostile");
    let held = hostile
        .reusable_instance(&grants(&[("mode", "ok")]))
        .await
        .unwrap();
    let report = hostile
        .call_until(
            &event("PostSignIn", json!({}), None),
            &grants(&[("mode", "ok")]),
            Deadline::after(Duration::from_millis(50)),
        )
        .await;
    let err = report.result.unwrap_err();
    assert!(matches!(err, PluginError::Busy { slots: 1, .. }), "{err:?}");
    assert_eq!(err.blame(), Blame::Host);
    drop(held);
    assert_still_serves(&runtime).await;
}

#[tokio::test]
async fn a_granted_upstream_that_never_answers_is_a_deadline() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let runtime = runtime_with(Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let url = format!("http://{addr}/slow");
    let grant = loopback_grant(
        &[("mode", "http"), ("url", &url)],
        &["127.0.0.1"],
        &["127.0.0.1/32"],
    );
    let report = hostile(&runtime, &grant).await;
    assert!(
        matches!(report.result, Err(PluginError::DeadlineExceeded { limit, .. }) if limit == Duration::from_millis(300)),
        "{:?}",
        report.result
    );
    silent.abort();
}
