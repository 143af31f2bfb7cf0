//! The embedding API in process: what `Host` adds over the store and the
//! dispatcher (retention, declared keys, custom events).

use std::time::Duration;

use serde_json::json;
use wasmhooks::host::{EmitEvent, Host, HostConfig, HostError};
use wasmhooks::store::{now_ms, DeliveryStatus};
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
