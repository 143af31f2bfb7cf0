//! The delivery engine against real receivers on 127.0.0.1: signatures a
//! receiver verifies, Logto's body shape, plugin pipelines, and the retry
//! policy's answers to failing, slow, redirecting and vanishing endpoints.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use wasmhooks::delivery::dispatcher::{DispatchSettings, Dispatcher};
use wasmhooks::delivery::sender::Sender;
use wasmhooks::delivery::signing::{logto_signature, verify_standard, WebhookSecret};
use wasmhooks::event::Catalogue;
use wasmhooks::hook::HookSpec;
use wasmhooks::metrics::Metrics;
use wasmhooks::pipeline::PluginRegistry;
use wasmhooks::runtime::{content_hash, Runtime, RuntimeConfig};
use wasmhooks::store::{
    now_ms, Attempt, Delivery, DeliveryStatus, NewEvent, PluginRecord, SharedStore, StoreLimits,
};
use wasmhooks_testkit::db::sqlite_path;
use wasmhooks_testkit::script::{ok, status, Script};
use wasmhooks_testkit::{plugin_bytes, Receiver};

struct Harness {
    store: SharedStore,
    dispatcher: Dispatcher,
    _dir: tempfile::TempDir,
}

async fn harness_with(private_networks: &[&str]) -> Harness {
    harness_settings(private_networks, DispatchSettings::default()).await
}

async fn harness_settings(private_networks: &[&str], settings: DispatchSettings) -> Harness {
    let (dir, path) = sqlite_path();
    harness_on(path.to_str().unwrap(), dir, private_networks, settings).await
}

/// A dispatcher over the database `url`.
async fn harness_on(
    url: &str,
    dir: tempfile::TempDir,
    private_networks: &[&str],
    settings: DispatchSettings,
) -> Harness {
    let store = wasmhooks::store::open(url, StoreLimits::default())
        .await
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let sender = Sender::new(
        private_networks
            .iter()
            .map(|n| n.parse().unwrap())
            .collect(),
        4096,
    );
    let metrics = Arc::new(Metrics::default());
    let plugins = Arc::new(PluginRegistry::new(
        store.clone(),
        runtime,
        settings.cache_ttl,
        metrics.clone(),
    ));
    let dispatcher = Dispatcher::new(store.clone(), plugins, sender, settings, metrics);
    Harness {
        store,
        dispatcher,
        _dir: dir,
    }
}

async fn harness() -> Harness {
    harness_with(&["127.0.0.0/8"]).await
}

impl Harness {
    async fn hook(&self, id: &str, spec: Value) {
        let spec = HookSpec::from_json(spec, &Catalogue::default()).unwrap();
        let record = spec.to_record(id);
        self.store.create_hook(&record).await.unwrap();
    }

    async fn plugin(&self, name: &str) {
        let bytes = plugin_bytes(name);
        let record = PluginRecord {
            name: name.into(),
            hash: content_hash(&bytes),
            size: bytes.len() as u64,
            bytes,
            created_at: now_ms(),
        };
        self.store.put_plugin(&record).await.unwrap();
    }

    /// A stored plugin `unloadable` the host cannot load: when a step
    /// fails on it, that is the host's fault, not the event's.
    async fn unloadable_plugin(&self) {
        let garbage = b"\0asm not really".to_vec();
        self.store
            .put_plugin(&PluginRecord {
                name: "unloadable".into(),
                hash: content_hash(&garbage),
                size: garbage.len() as u64,
                bytes: garbage,
                created_at: now_ms(),
            })
            .await
            .unwrap();
    }

    async fn emit(&self, name: &str, payload: Value) -> Vec<String> {
        let event = NewEvent {
            id: None,
            name: name.into(),
            payload: payload.to_string(),
            created_at: 1_787_313_600_000, // 2026-08-21T12:00:00.000Z
        };
        let ingested = self
            .store
            .ingest(vec![event])
            .await
            .unwrap()
            .pop()
            .unwrap()
            .unwrap();
        ingested.deliveries.into_iter().map(|d| d.id).collect()
    }

    async fn delivery(&self, id: &str) -> (Delivery, Vec<Attempt>) {
        self.store.delivery(id).await.unwrap().unwrap()
    }
}

/// `count` events named `name` with payloads `{"n": 0}`, `{"n": 1}`, ...
fn numbered(name: &str, count: u64) -> Vec<NewEvent> {
    (0..count)
        .map(|n| NewEvent {
            id: None,
            name: name.into(),
            payload: json!({"n": n}).to_string(),
            created_at: now_ms(),
        })
        .collect()
}

/// A receiver at `/ordered` keeping the `n` of each body it accepts, in
/// arrival order, and counting every request; with `fail_every`, each
/// request whose count is a multiple of it answers 500 instead.
async fn numbered_receiver(
    fail_every: Option<usize>,
) -> (
    Receiver,
    Arc<Mutex<Vec<u64>>>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    let received = Arc::new(Mutex::new(Vec::<u64>::new()));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let router = {
        let (received, calls) = (received.clone(), calls.clone());
        Router::new().route(
            "/ordered",
            post(move |body: Bytes| {
                let (received, calls) = (received.clone(), calls.clone());
                async move {
                    let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    if fail_every.is_some_and(|every| call % every == 0) {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let body: Value = serde_json::from_slice(&body).unwrap();
                    received.lock().unwrap().push(body["n"].as_u64().unwrap());
                    StatusCode::OK
                }
            }),
        )
    };
    (Receiver::start(router).await, received, calls)
}

fn interaction() -> Value {
    json!({
        "event": "PostSignIn", "interactionEvent": "SignIn", "sessionId": "Xn3",
        "userAgent": "Mozilla/5.0", "userId": "u1a2b3c4d5e6", "userIp": "203.0.113.7",
        "user": {"id": "u1a2b3c4d5e6", "username": "alice", "primaryEmail": "a@x.com"},
        "application": {"id": "app1", "type": "SPA", "name": "My SPA", "description": null}
    })
}

#[tokio::test]
async fn deliveries_are_signed_both_ways_and_shaped_like_logto() {
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    let h = harness().await;
    let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
    h.hook(
        "k3j2h1g0f9e8d7c6b5a43",
        json!({"events": ["PostSignIn", "Organization.Data.Updated"], "webhook": {
            "url": receiver.url("/hooks/logto"),
            "signing_key": "abcDEF0123456789abcDEF0123456789",
            "headers": {"X-Tenant": "acme", "Authorization": "Bearer hunter2"},
            "secrets": [{"secret": new.to_text()}, {"secret": old.to_text(), "expires_at": now_ms() + 86_400_000}]
        }}),
    )
    .await;
    let interaction_id = h.emit("PostSignIn", interaction()).await.remove(0);
    let data = json!({"event": "Organization.Data.Updated", "userAgent": "node", "ip": "::ffff:10.0.0.5",
        "path": "/organizations/o1", "method": "PATCH", "status": 200, "params": {"id": "o1"},
        "matchedRoute": "/organizations/:id", "data": {"id": "o1", "name": "Acme"}});
    h.emit("Organization.Data.Updated", data).await;
    assert_eq!(h.dispatcher.process_due().await.unwrap(), 2);

    let seen = script.seen();
    assert_eq!(seen.len(), 2);
    let by_event = |name: &str| {
        seen.iter()
            .find(|s| serde_json::from_slice::<Value>(&s.body).unwrap()["event"] == name)
            .unwrap()
            .clone()
    };
    let signin = by_event("PostSignIn");
    assert_eq!(signin.path, "/hooks/logto");
    assert_eq!(
        std::str::from_utf8(&signin.body).unwrap(),
        r#"{"event":"PostSignIn","interactionEvent":"SignIn","createdAt":"2026-08-21T12:00:00.000Z","sessionId":"Xn3","userAgent":"Mozilla/5.0","userId":"u1a2b3c4d5e6","userIp":"203.0.113.7","user":{"id":"u1a2b3c4d5e6","username":"alice","primaryEmail":"a@x.com"},"application":{"id":"app1","type":"SPA","name":"My SPA","description":null},"hookId":"k3j2h1g0f9e8d7c6b5a43"}"#
    );
    let org = by_event("Organization.Data.Updated");
    assert!(std::str::from_utf8(&org.body)
        .unwrap()
        .starts_with(r#"{"event":"Organization.Data.Updated","createdAt":"2026-08-21T12:00:00.000Z","userAgent":"node""#));

    for request in [&signin, &org] {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(header("content-type"), "application/json");
        assert_eq!(header("x-tenant"), "acme");
        assert!(header("user-agent").starts_with("wasmhooks/"));
        assert_eq!(
            header("logto-signature-sha-256"),
            logto_signature("abcDEF0123456789abcDEF0123456789", &request.body)
        );
        let (id, ts, sig) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        );
        let ts: i64 = ts.parse().unwrap();
        assert!((now_ms() / 1000 - ts).abs() < 60);
        assert!(
            verify_standard(&new, &id, ts, &request.body, &sig),
            "the new secret verifies"
        );
        assert!(
            verify_standard(&old, &id, ts, &request.body, &sig),
            "the old secret verifies in its grace period"
        );
    }
    assert_eq!(
        signin.headers["webhook-id"],
        interaction_id.as_str(),
        "the message id is the delivery id"
    );

    let (delivery, attempts) = h.delivery(&interaction_id).await;
    assert_eq!(delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].detail.response_status, Some(200));
    assert_eq!(
        attempts[0].detail.response_body.as_deref(),
        Some("receiver says hi")
    );
    let logged = |name: &str| {
        attempts[0]
            .detail
            .request_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        logged("authorization").as_deref(),
        Some("***"),
        "secrets are masked in the log"
    );
    assert_eq!(logged("x-tenant").as_deref(), Some("acme"));
}

#[tokio::test]
async fn plugin_steps_transform_and_filters_cancel() {
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    let h = harness().await;
    for plugin in ["enrich", "redact", "filter"] {
        h.plugin(plugin).await;
    }
    h.hook(
        "transformed",
        json!({"events": ["PostSignIn"], "steps": [
            {"plugin": "enrich", "config": {"tenant": "acme"}},
            {"plugin": "redact", "config": {"paths": "userIp,user.primaryEmail"}}
        ], "webhook": {"url": receiver.url("/t")}}),
    )
    .await;
    h.hook(
        "filtered",
        json!({"events": ["PostSignIn"], "steps": [
            {"plugin": "filter", "config": {"path": "user.primaryEmail", "ends-with": "@corp.example"}}
        ], "webhook": {"url": receiver.url("/f")}}),
    )
    .await;
    let ids = h.emit("PostSignIn", interaction()).await;
    h.dispatcher.process_due().await.unwrap();

    let seen = script.seen();
    assert_eq!(seen.len(), 1, "the filtered delivery sent nothing");
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(seen[0].path, "/t");
    assert_eq!(body["tenant"], "acme");
    assert_eq!(body["userIp"], "[redacted]");
    assert_eq!(body["user"]["primaryEmail"], "[redacted]");
    assert_eq!(body["hookId"], "transformed", "hookId still comes last");
    assert_eq!(
        body.as_object().unwrap().keys().next_back().unwrap(),
        "hookId"
    );

    let (a, _) = h.delivery(&ids[0]).await;
    let (b, _) = h.delivery(&ids[1]).await;
    let (cancelled, delivered) = if a.hook_id == "filtered" {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(delivered.status, DeliveryStatus::Succeeded);
    assert_eq!(cancelled.status, DeliveryStatus::Cancelled);
    assert!(cancelled.last_error.unwrap().contains("filtered out"));
}

#[tokio::test]
async fn skip_passes_over_plugin_faults_but_never_host_faults() {
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    let h = harness().await;
    h.plugin("hostile").await;
    h.unloadable_plugin().await;
    h.hook(
        "trapping",
        json!({"events": ["PostSignIn"], "on_step_error": "skip", "steps": [
            {"plugin": "hostile", "config": {"mode": "panic"}}
        ], "webhook": {"url": receiver.url("/trap")}}),
    )
    .await;
    h.hook(
        "redacting",
        json!({"events": ["PostSignIn"], "on_step_error": "skip", "steps": [
            {"plugin": "unloadable"}
        ], "webhook": {"url": receiver.url("/redact")}}),
    )
    .await;
    let ids = h.emit("PostSignIn", interaction()).await;
    h.dispatcher.process_due().await.unwrap();

    let seen = script.seen();
    assert_eq!(seen.len(), 1, "only the plugin fault was skipped");
    assert_eq!(seen[0].path, "/trap");
    for id in ids {
        let (delivery, attempts) = h.delivery(&id).await;
        if delivery.hook_id == "redacting" {
            assert_eq!(delivery.status, DeliveryStatus::Pending, "{delivery:?}");
            assert_eq!(delivery.attempts, 0, "a host fault uses no attempt");
            assert!(attempts.is_empty());
            let error = delivery.last_error.unwrap();
            assert!(error.starts_with("host: plugin `unloadable`"), "{error}");
            assert!(delivery.due_at.unwrap() > now_ms(), "retried later");
        } else {
            assert_eq!(delivery.status, DeliveryStatus::Succeeded);
        }
    }
}

fn fast_retries(url: String) -> Value {
    json!({"events": ["PostSignIn"], "webhook": {"url": url, "timeout": "300ms",
        "retry": {"schedule": ["50ms", "50ms"], "overload_floor": "400ms"}}})
}

/// Wait until the delivery's next attempt is due, then process it.
async fn retry(h: &Harness, id: &str) {
    let (d, _) = h.delivery(id).await;
    let wait = d.due_at.unwrap() - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64 + 20)).await;
    }
    assert_eq!(h.dispatcher.process_due().await.unwrap(), 1);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_succeeds() {
    let script = Script::new(vec![status(500), status(503), ok()]);
    let receiver = script.start().await;
    let h = harness().await;
    h.hook("h", fast_retries(receiver.url("/r"))).await;
    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    h.dispatcher.process_due().await.unwrap();
    let (d, attempts) = h.delivery(&id).await;
    assert_eq!((d.status, attempts.len()), (DeliveryStatus::Pending, 1));
    assert_eq!(
        attempts[0].detail.error_kind.as_deref(),
        Some("http_status")
    );
    retry(&h, &id).await;
    retry(&h, &id).await;
    let (d, attempts) = h.delivery(&id).await;
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(
        attempts
            .iter()
            .map(|a| a.detail.response_status.unwrap())
            .collect::<Vec<_>>(),
        [500, 503, 200]
    );
    let ids: Vec<_> = script
        .seen()
        .iter()
        .map(|s| s.headers["webhook-id"].clone())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the message id is stable across retries"
    );
}

#[tokio::test]
async fn the_schedule_runs_out_and_the_delivery_fails() {
    let script = Script::new(vec![status(500)]);
    let receiver = script.start().await;
    let h = harness().await;
    h.hook("h", fast_retries(receiver.url("/r"))).await;
    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    h.dispatcher.process_due().await.unwrap();
    retry(&h, &id).await;
    retry(&h, &id).await;
    let (d, attempts) = h.delivery(&id).await;
    assert_eq!(
        (d.status, attempts.len()),
        (DeliveryStatus::Failed, 3),
        "first attempt plus two retries"
    );
}

#[tokio::test]
async fn gone_disables_the_endpoint_at_once() {
    let script = Script::new(vec![status(410)]);
    let receiver = script.start().await;
    let h = harness().await;
    h.hook("h", fast_retries(receiver.url("/gone"))).await;
    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    h.dispatcher.process_due().await.unwrap();
    let (d, attempts) = h.delivery(&id).await;
    assert_eq!((d.status, attempts.len()), (DeliveryStatus::Failed, 1));
    let hook = h.store.get_hook("h").await.unwrap().unwrap();
    assert!(!hook.enabled);
    assert_eq!(
        hook.disabled_reason.as_deref(),
        Some("endpoint answered 410 Gone")
    );
    assert!(
        h.emit("PostSignIn", interaction()).await.is_empty(),
        "a disabled hook gets no deliveries"
    );
    assert_eq!(script.seen().len(), 1);
}

#[tokio::test]
async fn an_endpoint_failing_for_the_whole_window_is_disabled() {
    let script = Script::new(vec![status(500), ok(), status(500)]);
    let receiver = script.start().await;
    let settings = DispatchSettings {
        cache_ttl: Duration::ZERO,
        ..DispatchSettings::default()
    };
    let h = harness_settings(&["127.0.0.0/8"], settings).await;
    h.hook("h", json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/flaky"),
        "retry": {"schedule": ["50ms", "50ms", "50ms", "50ms"], "jitter": 0.0, "disable_after": "300ms"}}}))
        .await;
    let failing_since = || async { h.store.get_hook("h").await.unwrap().unwrap().failing_since };

    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    h.dispatcher.process_due().await.unwrap();
    assert!(
        failing_since().await.is_some(),
        "the 500 starts a failing streak"
    );
    retry(&h, &id).await;
    assert_eq!(failing_since().await, None, "the 200 ends it");

    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    h.dispatcher.process_due().await.unwrap();
    retry(&h, &id).await;
    let hook = h.store.get_hook("h").await.unwrap().unwrap();
    assert!(hook.enabled, "failing for 50 ms is within the window");
    tokio::time::sleep(Duration::from_millis(300)).await;
    retry(&h, &id).await;
    let hook = h.store.get_hook("h").await.unwrap().unwrap();
    assert!(
        !hook.enabled,
        "failing past the window disables the endpoint"
    );
    let reason = hook.disabled_reason.unwrap();
    assert!(reason.starts_with("every request failed for"), "{reason}");
    assert!(
        h.emit("PostSignIn", interaction()).await.is_empty(),
        "a disabled hook gets no deliveries"
    );
    h.store.set_hook_enabled("h", true, None).await.unwrap();
    assert_eq!(
        h.emit("PostSignIn", interaction()).await.len(),
        1,
        "one call enables it again"
    );
}

#[tokio::test]
async fn redirects_are_failures_and_not_followed() {
    let script = Script::new(vec![(
        302,
        vec![("location", "/elsewhere".into())],
        Duration::ZERO,
    )]);
    let receiver = script.start().await;
    let h = harness().await;
    h.hook("h", fast_retries(receiver.url("/moved"))).await;
    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    h.dispatcher.process_due().await.unwrap();
    let (d, attempts) = h.delivery(&id).await;
    assert_eq!(d.status, DeliveryStatus::Pending, "retried later");
    assert_eq!(attempts[0].detail.response_status, Some(302));
    let paths: Vec<_> = script.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(paths, ["/moved"], "the redirect was not followed");
}

#[tokio::test]
async fn timeouts_fail_the_attempt_and_back_off_to_the_floor() {
    let script = Script::new(vec![(200, vec![], Duration::from_secs(3))]);
    let receiver = script.start().await;
    let h = harness().await;
    h.hook("h", fast_retries(receiver.url("/slow"))).await;
    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    let before = now_ms();
    h.dispatcher.process_due().await.unwrap();
    let (d, attempts) = h.delivery(&id).await;
    assert_eq!(attempts[0].detail.error_kind.as_deref(), Some("timeout"));
    assert!(
        attempts[0].detail.duration_ms < 2000,
        "the 300 ms timeout held: {} ms",
        attempts[0].detail.duration_ms
    );
    assert!(
        d.due_at.unwrap() - before >= 400,
        "the overload floor, not the 50 ms schedule"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let script = Script::new(vec![
        (429, vec![("retry-after", "2".into())], Duration::ZERO),
        ok(),
    ]);
    let receiver = script.start().await;
    let h = harness().await;
    h.hook("h", fast_retries(receiver.url("/busy"))).await;
    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    let before = now_ms();
    h.dispatcher.process_due().await.unwrap();
    let (d, _) = h.delivery(&id).await;
    assert!(
        d.due_at.unwrap() - before >= 1900,
        "waits the 2 s the receiver asked for"
    );
    retry(&h, &id).await;
    assert_eq!(h.delivery(&id).await.0.status, DeliveryStatus::Succeeded);
}

#[tokio::test]
async fn a_reset_connection_is_a_failed_attempt() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Read a little of the request, then hang up mid-exchange.
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 16];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
            drop(socket);
        }
    });
    let h = harness().await;
    h.hook("h", fast_retries(format!("http://{addr}/reset")))
        .await;
    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    h.dispatcher.process_due().await.unwrap();
    let (d, attempts) = h.delivery(&id).await;
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(attempts[0].detail.response_status, None);
    assert!(attempts[0].detail.error_kind.is_some(), "{:?}", attempts[0]);
}

#[tokio::test]
async fn private_targets_are_refused_unless_the_operator_allows_them() {
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    let h = harness_with(&[]).await;
    h.hook("h", fast_retries(receiver.url("/internal"))).await;
    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    h.dispatcher.process_due().await.unwrap();
    let (_, attempts) = h.delivery(&id).await;
    assert_eq!(
        attempts[0].detail.error_kind.as_deref(),
        Some("blocked"),
        "{:?}",
        attempts[0]
    );
    assert!(script.seen().is_empty());
}

#[tokio::test]
async fn response_bodies_are_kept_only_up_to_the_cap() {
    let big = "z".repeat(100_000);
    let router = Router::new().route("/big", post(move || async move { big.clone() }));
    let receiver = Receiver::start(router).await;
    let h = harness().await;
    h.hook("h", fast_retries(receiver.url("/big"))).await;
    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    h.dispatcher.process_due().await.unwrap();
    let (d, attempts) = h.delivery(&id).await;
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(
        attempts[0].detail.response_body.as_ref().map(String::len),
        Some(4096)
    );
}

#[tokio::test]
async fn the_endpoint_concurrency_bound_holds() {
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let router = {
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        Router::new().route(
            "/count",
            post(move || {
                let (in_flight, peak) = (in_flight.clone(), peak.clone());
                async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = in_flight.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    in_flight.fetch_sub(1, SeqCst);
                    "ok"
                }
            }),
        )
    };
    let receiver = Receiver::start(router).await;
    let h = harness().await;
    h.hook(
        "h",
        json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/count"), "concurrency": 2}}),
    )
    .await;
    for _ in 0..8 {
        h.emit("PostSignIn", interaction()).await;
    }
    assert_eq!(h.dispatcher.process_due().await.unwrap(), 8);
    assert_eq!(
        peak.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "two at a time, never more"
    );
}

#[tokio::test]
async fn missed_events_are_replayed_and_single_deliveries_retried() {
    let script = Script::new(vec![status(500), ok()]);
    let receiver = script.start().await;
    let h = harness().await;
    h.hook("h", json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/r"), "retry": {"schedule": []}}}))
        .await;
    let id = h.emit("PostSignIn", interaction()).await.remove(0);
    h.dispatcher.process_due().await.unwrap();
    assert_eq!(
        h.delivery(&id).await.0.status,
        DeliveryStatus::Failed,
        "no retries in this schedule"
    );

    // An operator retries the failed delivery by hand.
    h.store.retry_now(&id).await.unwrap();
    h.dispatcher.process_due().await.unwrap();
    let (d, attempts) = h.delivery(&id).await;
    assert_eq!((d.status, attempts.len()), (DeliveryStatus::Succeeded, 2));

    // Events stored while the hook did not subscribe are replayed to it.
    h.emit("PostRegister", json!({"event": "PostRegister"}))
        .await;
    let mut hook = h.store.get_hook("h").await.unwrap().unwrap();
    hook.events.push("PostRegister".into());
    hook.spec["events"] = json!(["PostSignIn", "PostRegister"]);
    h.store.update_hook(&hook).await.unwrap();
    let mut pages = Vec::new();
    let replayed = h
        .dispatcher
        .replay("h", 0, now_ms() + 1, |scanned, enqueued| {
            pages.push((scanned, enqueued))
        })
        .await
        .unwrap();
    assert_eq!(replayed, 2, "the sign-in and the registration");
    assert_eq!(
        pages,
        [(2, 2)],
        "one page: two events looked at, two enqueued"
    );
    assert_eq!(h.dispatcher.process_due().await.unwrap(), 2);
    assert_eq!(script.seen().len(), 4);
    assert!(h
        .dispatcher
        .replay("missing", 0, 1, |_, _| {})
        .await
        .is_err());
}

#[tokio::test]
async fn the_running_dispatcher_delivers_new_work_and_drains_on_shutdown() {
    let script = Script::new(vec![(200, vec![], Duration::from_millis(150))]);
    let receiver = script.start().await;
    let h = harness().await;
    h.hook("h", fast_retries(receiver.url("/live"))).await;
    let Harness {
        store,
        dispatcher,
        _dir,
    } = h;
    let dispatcher = Arc::new(dispatcher);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(dispatcher.clone().run(shutdown.clone()));

    // Work that arrives while the dispatcher idles is picked up at once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let event = NewEvent {
        id: None,
        name: "PostSignIn".into(),
        payload: interaction().to_string(),
        created_at: now_ms(),
    };
    let id = store
        .ingest(vec![event])
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap()
        .deliveries
        .remove(0)
        .id;
    for _ in 0..100 {
        if !script.seen().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(script.seen().len(), 1, "delivered while the dispatcher ran");

    // Shutdown waits for the attempt in flight (the receiver is slow) and records it.
    shutdown.cancel();
    worker.await.unwrap();
    let (delivery, attempts) = store.delivery(&id).await.unwrap().unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(attempts.len(), 1);
}

#[tokio::test]
async fn ordered_delivery_keeps_order_through_failures() {
    // The receiver fails every third request; a later message must never
    // overtake an earlier one that is waiting for its retry.
    let (receiver, received, calls) = numbered_receiver(Some(3)).await;
    let h = harness().await;
    h.hook(
        "h",
        json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/ordered"), "ordered": true,
            "concurrency": 8, "retry": {"schedule": ["5ms", "5ms", "5ms"], "jitter": 0.0}}}),
    )
    .await;
    let events = numbered("PostSignIn", 100);
    h.store.ingest(events).await.unwrap();
    for _ in 0..2000 {
        if received.lock().unwrap().len() == 100 {
            break;
        }
        if h.dispatcher.process_due().await.unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let order = received.lock().unwrap().clone();
    assert_eq!(
        order,
        (0..100).collect::<Vec<_>>(),
        "all 100 arrived, in order"
    );
    assert!(
        calls.load(std::sync::atomic::Ordering::SeqCst) >= 149,
        "the failures really happened"
    );
}

#[tokio::test]
async fn the_endpoint_rate_limit_spaces_requests() {
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    let h = harness().await;
    h.hook(
        "h",
        json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/paced"), "rate_limit": 20, "concurrency": 8}}),
    )
    .await;
    for _ in 0..6 {
        h.emit("PostSignIn", interaction()).await;
    }
    let started = std::time::Instant::now();
    assert_eq!(h.dispatcher.process_due().await.unwrap(), 6);
    // Six requests at 20 per second need at least five 50 ms gaps.
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(script.seen().len(), 6);
    let bad = HookSpec::from_json(
        json!({"events": ["PostSignIn"], "webhook": {"url": "https://x", "rate_limit": 0}}),
        &Catalogue::default(),
    );
    assert!(bad.unwrap_err().to_string().contains("rate_limit"));
}

/// Run the harness's dispatcher in the background until the returned token
/// is cancelled.
fn run(
    h: Harness,
) -> (
    SharedStore,
    tokio_util::sync::CancellationToken,
    tempfile::TempDir,
) {
    let Harness {
        store,
        dispatcher,
        _dir,
    } = h;
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(Arc::new(dispatcher).run(shutdown.clone()));
    (store, shutdown, _dir)
}

/// Poll `done` every 10 ms for up to `within`.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_does_not_delay_another() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/never", silent.local_addr().unwrap());
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepting = {
        let connections = connections.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(socket);
            }
        })
    };
    let fast = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let router = {
        let fast = fast.clone();
        Router::new().route(
            "/fast",
            post(move || {
                fast.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { "ok" }
            }),
        )
    };
    let receiver = Receiver::start(router).await;
    let h = harness().await;
    h.hook(
        "slow",
        json!({"events": ["User.Created"], "webhook": {"url": silent_url, "timeout": "10s"}}),
    )
    .await;
    h.hook(
        "fast",
        json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/fast"), "concurrency": 16}}),
    )
    .await;
    // The slow endpoint's backlog is older: it is due first.
    let slow = numbered("User.Created", 500);
    h.store.ingest(slow).await.unwrap();
    let fast_events = numbered("PostSignIn", 500);
    let ingested = h.store.ingest(fast_events).await.unwrap();
    let (store, shutdown, _dir) = run(h);

    let all_fast = eventually(Duration::from_secs(60), || {
        fast.load(std::sync::atomic::Ordering::SeqCst) >= 500
    })
    .await;
    assert!(
        all_fast,
        "the fast endpoint got all 500 while the slow one hung"
    );
    assert_eq!(
        fast.load(std::sync::atomic::Ordering::SeqCst),
        500,
        "none twice"
    );
    for result in ingested {
        let id = result.unwrap().deliveries.remove(0).id;
        let (delivery, attempts) = store.delivery(&id).await.unwrap().unwrap();
        assert_eq!(delivery.status, DeliveryStatus::Succeeded);
        assert_eq!(attempts.len(), 1, "every attempt logged, once");
    }
    // The silent endpoint holds only its own slots (4 by default).
    assert!(
        connections.load(std::sync::atomic::Ordering::SeqCst) <= 4,
        "{} connections to the slow endpoint",
        connections.load(std::sync::atomic::Ordering::SeqCst)
    );
    shutdown.cancel();
    accepting.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_run_at_their_due_time_not_at_the_next_poll() {
    let times = Arc::new(Mutex::new(Vec::<std::time::Instant>::new()));
    let router = {
        let times = times.clone();
        Router::new().route(
            "/flaky",
            post(move || {
                let times = times.clone();
                async move {
                    let mut times = times.lock().unwrap();
                    times.push(std::time::Instant::now());
                    if times.len() < 4 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
    };
    let receiver = Receiver::start(router).await;
    let h = harness().await;
    h.hook(
        "h",
        json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/flaky"),
            "retry": {"schedule": ["100ms", "100ms", "100ms"], "jitter": 0.0}}}),
    )
    .await;
    let (store, shutdown, _dir) = run(h);
    let event = NewEvent {
        id: None,
        name: "PostSignIn".into(),
        payload: "{}".into(),
        created_at: now_ms(),
    };
    store.ingest(vec![event]).await.unwrap();
    assert!(
        eventually(Duration::from_secs(30), || times.lock().unwrap().len() >= 4).await,
        "four attempts"
    );
    let times = times.lock().unwrap().clone();
    for gap in times.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            gap >= Duration::from_millis(100),
            "waited its delay: {gap:?}"
        );
        // Far under the one-second idle poll: the dispatcher slept until
        // the due time rather than polling for it.
        assert!(
            gap < Duration::from_millis(600),
            "retried when due: {gap:?}"
        );
    }
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_hook_sends_the_next_event_as_soon_as_the_last_is_done() {
    let (receiver, received, _) = numbered_receiver(None).await;
    let h = harness().await;
    h.hook(
        "h",
        json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/ordered"), "ordered": true}}),
    )
    .await;
    let events = numbered("PostSignIn", 200);
    h.store.ingest(events).await.unwrap();
    let (_store, shutdown, _dir) = run(h);
    // At one event per idle poll this would take over three minutes.
    assert!(
        eventually(Duration::from_secs(60), || received.lock().unwrap().len()
            == 200)
        .await,
        "all 200 arrived: {}",
        received.lock().unwrap().len()
    );
    assert_eq!(*received.lock().unwrap(), (0..200).collect::<Vec<_>>());
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_deliveries_are_taken_over_when_its_lease_ends() {
    let Some(db) = wasmhooks_testkit::db::PostgresDb::create("takeover").await else {
        eprintln!("skipped: set WASMHOOKS_TEST_POSTGRES_URL to run the PostgreSQL test");
        return;
    };
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    let lease = Duration::from_secs(3);
    let settings = |owner: &str| DispatchSettings {
        owner: owner.into(),
        lease,
        ..DispatchSettings::default()
    };
    let dead = harness_on(
        &db.url,
        tempfile::tempdir().unwrap(),
        &["127.0.0.0/8"],
        settings("worker-dead"),
    )
    .await;
    dead.hook(
        "h",
        json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/r")}}),
    )
    .await;
    for _ in 0..20 {
        dead.emit("PostSignIn", interaction()).await;
    }
    // The first worker claims everything, then dies before sending any.
    let claimed = dead.store.claim("worker-dead", 100, lease).await.unwrap();
    assert_eq!(claimed.len(), 20);
    let started = std::time::Instant::now();
    let alive = harness_on(
        &db.url,
        tempfile::tempdir().unwrap(),
        &["127.0.0.0/8"],
        settings("worker-alive"),
    )
    .await;
    let (store, shutdown, _dir) = run(alive);
    let seen = script.wait_for(20, lease + Duration::from_secs(10)).await;
    assert_eq!(
        seen.len(),
        20,
        "all taken over within the lease and ten seconds"
    );
    assert!(
        started.elapsed() >= lease - Duration::from_millis(500),
        "not before the lease ended"
    );
    shutdown.cancel();
    drop((store, dead));
    db.drop_database().await;
}

#[tokio::test]
async fn a_delivery_the_host_keeps_failing_ends_dead_without_blocking_others() {
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    let h = harness().await;
    h.unloadable_plugin().await;
    h.hook(
        "poisoned",
        json!({"events": ["PostSignIn"], "steps": [{"plugin": "unloadable"}],
               "webhook": {"url": receiver.url("/poisoned"), "ordered": true}}),
    )
    .await;
    h.hook(
        "healthy",
        json!({"events": ["PostSignIn"], "webhook": {"url": receiver.url("/healthy")}}),
    )
    .await;
    let ids = h.emit("PostSignIn", interaction()).await;
    let mut poisoned = None;
    for id in &ids {
        if h.delivery(id).await.0.hook_id == "poisoned" {
            poisoned = Some(id.clone());
        }
    }
    let poisoned = poisoned.unwrap();
    for round in 1..=wasmhooks::delivery::dispatcher::MAX_HOST_FAILURES {
        h.dispatcher.process_due().await.unwrap();
        let (delivery, attempts) = h.delivery(&poisoned).await;
        assert!(attempts.is_empty(), "no request was ever sent");
        assert_eq!(delivery.attempts, 0);
        if round < wasmhooks::delivery::dispatcher::MAX_HOST_FAILURES {
            assert_eq!(delivery.status, DeliveryStatus::Pending, "round {round}");
            // Make the deferred try due now rather than wait for it.
            h.store.retry_now(&poisoned).await.unwrap();
        } else {
            assert_eq!(delivery.status, DeliveryStatus::Dead, "round {round}");
            let reason = delivery.last_error.unwrap();
            assert!(reason.contains("plugin `unloadable`"), "{reason}");
            assert!(reason.contains("10 times in a row"), "{reason}");
        }
    }
    let healthy: Vec<_> = script
        .seen()
        .into_iter()
        .filter(|s| s.path == "/healthy")
        .collect();
    assert_eq!(
        healthy.len(),
        1,
        "the other hook's delivery went out at once"
    );

    // A later event of the ordered hook is not held behind the dead one.
    let later = h.emit("PostSignIn", interaction()).await;
    h.dispatcher.process_due().await.unwrap();
    for id in later {
        let (delivery, _) = h.delivery(&id).await;
        if delivery.hook_id == "poisoned" {
            let tried = delivery.last_error.unwrap_or_default();
            assert!(tried.starts_with("host: "), "claimed and tried: {tried}");
        }
    }
}
