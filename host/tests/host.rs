//! The embedding API in process: what `Host` adds over the store and the
//! dispatcher (retention, declared keys, custom events).

use std::time::Duration;

use serde_json::json;
use wasmhooks::host::{EmitEvent, Host, HostConfig, HostError};
use wasmhooks::pipeline::PluginState;
use wasmhooks::store::{now_ms, DeliveryStatus};
use wasmhooks::sync::Verdict;
use wasmhooks_testkit::plugin_bytes;
use wasmhooks_testkit::script::{ok, Script};

fn config(dir: &std::path::Path, retention: Option<Duration>) -> HostConfig {
    let mut config = HostConfig::new(dir);
    config.private_networks = vec!["127.0.0.0/8".parse().unwrap()];
    config.retention = retention;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_events_past_their_retention_are_pruned_at_start() {
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(config(dir.path(), None)).await.unwrap();
    host.create_hook(
        Some("h".into()),
        json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/r")}}),
    )
    .await
    .unwrap();
    let mut old = EmitEvent::new("PostSignIn", json!({"userId": "u1"}));
    old.created_at = Some(now_ms() - 3_600_000);
    let old = host.emit(old).await.unwrap().deliveries[0].id.clone();
    let fresh = host
        .emit(EmitEvent::new("PostSignIn", json!({"userId": "u2"})))
        .await
        .unwrap()
        .deliveries[0]
        .id
        .clone();
    script.wait_for(2, Duration::from_secs(20)).await;
    for _ in 0..100 {
        if host.delivery(&old).await.unwrap().0.status == DeliveryStatus::Succeeded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.shutdown().await;
    drop(host);

    let host = Host::start(config(dir.path(), Some(Duration::from_secs(600))))
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..100 {
        if matches!(host.delivery(&old).await, Err(HostError::NotFound { .. })) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the hour-old finished event was pruned");
    assert!(host.delivery(&fresh).await.is_ok(), "the new one stays");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_events_must_be_registered_first() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(config(dir.path(), None)).await.unwrap();
    let unknown = host
        .emit(EmitEvent::new("Billing.Invoice.Paid", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(unknown, HostError::UnknownEvent(_)), "{unknown}");
    host.register_event_type("Billing.Invoice.Paid")
        .await
        .unwrap();
    host.emit(EmitEvent::new("Billing.Invoice.Paid", json!({})))
        .await
        .unwrap();
    assert!(host
        .register_event_type("bad name")
        .await
        .unwrap_err()
        .to_string()
        .contains("invalid custom event name"));
    host.shutdown().await;
    drop(host);
    let host = Host::start(config(dir.path(), None)).await.unwrap();
    assert!(
        host.event_types()
            .contains(&"Billing.Invoice.Paid".to_string()),
        "registrations are stored"
    );
    host.shutdown().await;
}

/// A sync hook over the hostile fixture in `mode`, on `trigger`.
async fn sync_hook(host: &Host, id: &str, trigger: &str, mode: &str) {
    host.create_hook(
        Some(id.into()),
        json!({"steps": [{"plugin": "hostile", "config": {"mode": mode}}],
               "sync": {"trigger": trigger, "on_error": "deny"}}),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_deadline_counts_from_the_request_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(config(dir.path(), None)).await.unwrap();
    host.put_plugin("hostile", plugin_bytes("hostile"))
        .await
        .unwrap();
    sync_hook(&host, "echo", "PreRegistration", "ok").await;
    let fresh = host
        .call_sync("PreRegistration", json!({"a": 1}), None)
        .await
        .unwrap();
    assert_eq!(fresh.decision, Verdict::Allow, "{fresh:?}");

    // The same call, for a request that arrived before its deadline ran out.
    let arrived = tokio::time::Instant::now() - Duration::from_secs(1);
    let late = host
        .call_sync_from(
            arrived,
            "PreRegistration",
            json!({"a": 1}),
            Some(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    assert_eq!(late.decision, Verdict::Deny, "{late:?}");
    let error = late.hooks[0].error.as_deref().unwrap();
    assert!(
        error.contains("deadline of 500ms exceeded"),
        "the whole call's deadline: {error}"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_call_with_no_free_slot_fails_with_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), None);
    config.runtime.max_instances = 1;
    config.runtime.limits.timeout = Duration::from_secs(10);
    let host = Host::start(config).await.unwrap();
    host.put_plugin("hostile", plugin_bytes("hostile"))
        .await
        .unwrap();
    sync_hook(&host, "spinner", "SpinTrigger", "loop").await;
    sync_hook(&host, "benign", "PreRegistration", "ok").await;
    let spinning = tokio::spawn({
        let host = host.clone();
        async move {
            host.call_sync("SpinTrigger", json!({}), Some(Duration::from_secs(5)))
                .await
        }
    });
    // Wait until the spinner holds the only slot.
    let mut busy = None;
    for _ in 0..500 {
        let answer = host
            .call_sync(
                "PreRegistration",
                json!({}),
                Some(Duration::from_millis(50)),
            )
            .await
            .unwrap();
        if answer.decision == Verdict::Deny {
            busy = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let busy = busy.expect("the benign call was refused once the slot was taken");
    assert_eq!(busy.hook.as_deref(), Some("benign"));
    let error = busy.hooks[0].error.as_deref().unwrap();
    assert!(error.contains("no instance slot came free"), "{error}");
    spinning.abort();
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_still_compiling_is_stored_and_calls_wait_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), None);
    // Answer before any compilation can finish.
    config.upload_wait = Duration::ZERO;
    let host = Host::start(config).await.unwrap();
    let view = host
        .put_plugin("hostile", plugin_bytes("hostile"))
        .await
        .unwrap();
    assert_eq!(view.state, PluginState::Compiling);
    assert!(
        host.plugins().await.unwrap()[0].record.name == "hostile",
        "stored while compiling"
    );
    // A call made now waits for the compilation.
    sync_hook(&host, "echo", "PreRegistration", "ok").await;
    let answer = host
        .call_sync(
            "PreRegistration",
            json!({"a": 1}),
            Some(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!(answer.decision, Verdict::Allow, "{answer:?}");
    let listed = host.plugins().await.unwrap();
    assert_eq!(listed[0].state, PluginState::Ready);
    assert_eq!(listed[0].error, None);

    // A bad upload is refused before anything is stored, however short the wait.
    let err = host
        .put_plugin("drifted", plugin_bytes("wrong-signature"))
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::WrongWorld(_)), "{err}");
    assert_eq!(host.plugins().await.unwrap().len(), 1);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_targets_in_blocked_ranges_are_refused_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    // Loopback is allowed; other private ranges are not.
    let host = Host::start(config(dir.path(), None)).await.unwrap();
    for (url, range) in [
        (
            "http://169.254.169.254/latest/meta-data",
            "link-local 169.254.0.0/16",
        ),
        ("http://10.0.0.1/hook", "private 10.0.0.0/8"),
        ("http://[fd00::1]/hook", "unique local fc00::/7"),
    ] {
        let refused = host
            .create_hook(
                None,
                json!({"events": ["PostSignIn"], "webhook": {"url": url}}),
            )
            .await
            .unwrap_err();
        let message = refused.to_string();
        assert!(matches!(refused, HostError::InvalidHook(_)), "{message}");
        assert!(message.contains(range), "{url}: {message}");
        assert!(message.contains("private_networks"), "{message}");
    }
    assert!(host.hooks().await.unwrap().is_empty(), "nothing was stored");
    for allowed in ["http://127.0.0.1:9/hook", "http://localhost:9/hook"] {
        host.create_hook(
            None,
            json!({"events": ["PostSignIn"], "webhook": {"url": allowed}}),
        )
        .await
        .unwrap();
    }
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_mask_secrets_and_leave_expired_ones_out() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(config(dir.path(), None)).await.unwrap();
    let (live, expired) = (
        wasmhooks::delivery::signing::WebhookSecret::generate().to_text(),
        wasmhooks::delivery::signing::WebhookSecret::generate().to_text(),
    );
    let created = host
        .create_hook(
            Some("h".into()),
            json!({"events": ["PostSignIn"], "webhook": {"url": "http://127.0.0.1:9/hook",
                "signing_key": "logto-key-0123456789",
                "secrets": [{"secret": live}, {"secret": expired, "expires_at": now_ms() - 1000}]}}),
        )
        .await
        .unwrap();
    assert_eq!(
        created.spec["webhook"]["signing_key"], "logto-key-0123456789",
        "shown once"
    );
    let read = host.hook("h").await.unwrap();
    let text = read.spec.to_string();
    assert!(
        !text.contains("logto-key-0123456789") && !text.contains(&live),
        "{text}"
    );
    let secrets = read.spec["webhook"]["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1, "the expired secret is gone: {text}");
    assert_eq!(secrets[0]["secret"], wasmhooks::secrets::mask(&live));
    host.shutdown().await;
}
