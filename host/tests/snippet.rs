//! JavaScript snippets as hook steps, through the embedding API: transform,
//! cancel, headers, config and secrets, logs, deny and patch in sync
//! triggers, errors with positions, and hostile snippets contained.

use std::time::Duration;

use serde_json::{json, Value};
use wasmhooks::host::{EmitEvent, Host, HostConfig, HostError};
use wasmhooks::store::DeliveryStatus;
use wasmhooks::sync::Verdict;
use wasmhooks_testkit::script::{ok, Script};
use wasmhooks_testkit::{plugin_bytes, shared_cache_dir};

async fn host(dir: &std::path::Path) -> Host {
    let mut config = HostConfig::new(dir);
    config.private_networks = vec!["127.0.0.0/8".parse().unwrap()];
    config.runtime.cache_dir = Some(shared_cache_dir());
    // Generous budgets: a first call on a busy machine pays page faults.
    // The tests that are about deadlines give their own.
    config.runtime.limits.timeout = Duration::from_secs(10);
    config.sync.default_deadline = Duration::from_secs(10);
    config.retention = None;
    Host::start(config).await.unwrap()
}

fn sign_in(email: &str) -> Value {
    json!({"interactionEvent": "SignIn", "userId": "u1",
           "user": {"id": "u1", "primaryEmail": email, "customData": {"plan": "pro"}}})
}

/// Wait for a delivery to finish and return its status and last error.
async fn finished(host: &Host, id: &str) -> (DeliveryStatus, Option<String>) {
    for _ in 0..400 {
        let (delivery, _) = host.delivery(id).await.unwrap();
        if delivery.finished_at.is_some() || delivery.attempts > 0 {
            return (delivery.status, delivery.last_error);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("delivery {id} never finished");
}

const TRANSFORM: &str = r#"export default function (event, { config, secrets, setHeader, cancel }) {
  const { user, ...rest } = event.payload;
  if (user?.primaryEmail?.endsWith("@test.example")) return cancel(`test user ${user.primaryEmail}`);
  console.log("enriching", user.id, { plan: user.customData?.plan });
  setHeader("x-tenant", config.tenant);
  event.payload = { ...rest, user: { ...user, region: config.region ?? "eu" }, signed: secrets.apiKey?.length > 0 };
  return event;
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_mixing_a_plugin_and_a_snippet_is_delivered() {
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    host.put_plugin("enrich", plugin_bytes("enrich"))
        .await
        .unwrap();
    host.create_hook(
        Some("mixed".into()),
        json!({"events": ["PostSignIn"],
               "steps": [
                   {"plugin": "enrich", "config": {"tenant": "acme"}},
                   {"snippet": TRANSFORM, "config": {"tenant": "acme"}, "secrets": {"apiKey": "k-123"}}
               ],
               "webhook": {"url": receiver.url("/hook")}}),
    )
    .await
    .unwrap();

    let kept = host
        .emit(EmitEvent::new("PostSignIn", sign_in("ada@example.com")))
        .await
        .unwrap();
    let dropped = host
        .emit(EmitEvent::new("PostSignIn", sign_in("bot@test.example")))
        .await
        .unwrap();
    let seen = script.wait_for(1, Duration::from_secs(60)).await;
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["tenant"], "acme", "the wasm plugin ran first");
    assert_eq!(body["user"]["region"], "eu", "then the snippet");
    assert_eq!(body["signed"], true, "the snippet read its secret");
    assert_eq!(body["hookId"], "mixed");
    assert_eq!(seen[0].headers["x-tenant"], "acme");
    assert_eq!(
        finished(&host, &kept.deliveries[0].id).await.0,
        DeliveryStatus::Succeeded
    );
    let (status, reason) = finished(&host, &dropped.deliveries[0].id).await;
    assert_eq!(status, DeliveryStatus::Cancelled);
    assert_eq!(
        reason.as_deref(),
        Some("snippet: test user bot@test.example")
    );
    assert_eq!(script.seen().len(), 1, "the cancelled one was never sent");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_deny_and_patch_synchronous_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    host.create_hook(
        Some("domains".into()),
        json!({"sync": {"trigger": "PreRegistration", "order": 1},
               "steps": [{"snippet": r#"export default function (event, ctx) {
                   const domain = event.payload.email?.split("@")[1];
                   if (ctx.config.blocked.split(",").includes(domain)) {
                     return ctx.deny("domain_blocked", `Sign-ups from ${domain} are closed.`);
                   }
                 }"#, "config": {"blocked": "spam.example,junk.example"}}]}),
    )
    .await
    .unwrap();
    host.create_hook(
        Some("claims".into()),
        json!({"sync": {"trigger": "PreRegistration", "order": 2},
               "steps": [{"snippet": r#"export default (event) => ({
                   ...event, payload: { ...event.payload, customData: { plan: "free", trial: true } }
                 })"#}]}),
    )
    .await
    .unwrap();

    let denied = host
        .call_sync("PreRegistration", json!({"email": "x@spam.example"}), None)
        .await
        .unwrap();
    assert_eq!(denied.decision, Verdict::Deny);
    assert_eq!(denied.code.as_deref(), Some("domain_blocked"));
    assert_eq!(
        denied.message.as_deref(),
        Some("Sign-ups from spam.example are closed.")
    );
    assert_eq!(denied.hook.as_deref(), Some("domains"));

    let allowed = host
        .call_sync("PreRegistration", json!({"email": "ada@example.com"}), None)
        .await
        .unwrap();
    assert_eq!(allowed.decision, Verdict::Allow);
    assert_eq!(
        serde_json::to_value(allowed.patch.unwrap()).unwrap(),
        json!([{"op": "add", "path": "/customData", "value": {"plan": "free", "trial": true}}])
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syntax_error_is_refused_when_the_hook_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let error = host
        .create_hook(
            Some("broken".into()),
            json!({"events": ["PostSignIn"], "webhook": {"url": "https://example.com/h"},
                   "steps": [{"snippet": "export default function (event) {\n  return event.payload.;\n}"}]}),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, HostError::InvalidHook(_)), "{error}");
    let message = error.to_string();
    assert!(message.contains("steps[0]"), "{message}");
    assert!(message.contains("SyntaxError"), "{message}");
    assert!(message.contains("line 2, col 24"), "{message}");
    assert!(host.hooks().await.unwrap().is_empty(), "nothing stored");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_and_hostile_snippets_cost_only_their_call() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    // 600 locals per frame: the C stack runs out long before the wasm one.
    let locals: Vec<String> = (0..600).map(|i| format!("v{i} = n")).collect();
    let wide_frames = format!(
        "function f(n) {{ let {}; return f(v0 + v599); }}\nexport default () => f(1);",
        locals.join(", ")
    );
    for (trigger, source) in [
        (
            "Throws",
            "export default function (event) {\n  const user = null;\n  return user.id;\n}",
        ),
        ("Loops", "export default function () { for (;;) {} }"),
        (
            "Hoards",
            "export default function () { const a = []; for (;;) a.push(new Uint8Array(4 << 20)); }",
        ),
        (
            "Recurses",
            "export default function f(e) { return f(e) + 1; }",
        ),
        ("RecursesWide", wide_frames.as_str()),
        ("Fine", "export default (event) => event"),
    ] {
        host.create_hook(
            Some(trigger.to_lowercase()),
            json!({"sync": {"trigger": trigger, "on_error": "deny"}, "steps": [{"snippet": source}]}),
        )
        .await
        .unwrap();
    }
    let error = |decision: &wasmhooks::sync::Decision| {
        assert_eq!(decision.decision, Verdict::Deny);
        decision.hooks[0].error.clone().unwrap()
    };
    let thrown = host.call_sync("Throws", json!({}), None).await.unwrap();
    let message = error(&thrown);
    assert!(message.contains("snippet threw TypeError"), "{message}");
    assert!(message.contains("snippet.js:3:"), "the line: {message}");

    let looped = host
        .call_sync("Loops", json!({}), Some(Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(error(&looped).contains("deadline"), "{looped:?}");
    let hoarded = host
        .call_sync("Hoards", json!({}), Some(Duration::from_secs(5)))
        .await
        .unwrap();
    // QuickJS turns the failed allocation at the memory cap into an
    // InternalError the snippet could catch; uncaught, it fails the call.
    let hoard = error(&hoarded);
    assert!(hoard.contains("out of memory"), "{hoard}");
    // Deep recursion ends on the wasm stack cap or, for frames with many
    // locals, on QuickJS's own C stack check; either fails only the call.
    let recursed = host.call_sync("Recurses", json!({}), None).await.unwrap();
    assert!(error(&recursed).contains("recursion"), "{recursed:?}");
    let wide = host
        .call_sync("RecursesWide", json!({}), None)
        .await
        .unwrap();
    let wide = error(&wide);
    assert!(
        wide.contains("snippet threw RangeError: Maximum call stack size exceeded"),
        "{wide}"
    );
    let fine = host.call_sync("Fine", json!({"a": 1}), None).await.unwrap();
    assert_eq!(fine.decision, Verdict::Allow, "the host keeps serving");
    host.shutdown().await;
}

/// An async snippet that adds the country of the sign-up's IP address,
/// asked of the API at `ctx.config.api`.
const GEO: &str = r#"export default async function (event, ctx) {
  const answer = await fetch(`${ctx.config.api}?ip=${event.payload.ip}`, {
    headers: { authorization: `Bearer ${ctx.secrets.token}` },
  });
  if (!answer.ok) return ctx.deny("geo_unavailable", `geo lookup answered ${answer.status}`);
  const { country } = await answer.json();
  event.payload.country = country;
  return event;
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_snippets_fetch_from_granted_hosts_only() {
    use axum::extract::Query;
    use axum::http::HeaderMap;
    use std::collections::HashMap;
    let api = wasmhooks_testkit::Receiver::start(axum::Router::new().route(
        "/geo",
        axum::routing::get(
            |Query(q): Query<HashMap<String, String>>, headers: HeaderMap| async move {
                let authorized = headers
                    .get("authorization")
                    .is_some_and(|v| v == "Bearer t0k");
                let country = if q.get("ip").is_some_and(|ip| ip == "203.0.113.7") {
                    "NL"
                } else {
                    "??"
                };
                axum::Json(json!({ "country": if authorized { country } else { "unauthorized" } }))
            },
        ),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/geo", listener.local_addr().unwrap())
    };
    let granted = json!({"hosts": ["127.0.0.1"], "private_networks": ["127.0.0.0/8"]});
    for (trigger, url, http) in [
        ("Granted", api.url("/geo"), granted.clone()),
        ("Ungranted", api.url("/geo"), json!({})),
        ("Down", closed, granted),
    ] {
        host.create_hook(
            Some(trigger.to_lowercase()),
            json!({"sync": {"trigger": trigger, "on_error": "deny"},
                   "steps": [{"snippet": GEO, "config": {"api": url},
                              "secrets": {"token": "t0k"}, "http": http}]}),
        )
        .await
        .unwrap();
    }

    let granted = host
        .call_sync("Granted", json!({"ip": "203.0.113.7"}), None)
        .await
        .unwrap();
    assert_eq!(granted.decision, Verdict::Allow, "{granted:?}");
    assert_eq!(
        serde_json::to_value(granted.patch.unwrap()).unwrap(),
        json!([{"op": "add", "path": "/country", "value": "NL"}])
    );

    let refused = host
        .call_sync("Ungranted", json!({"ip": "203.0.113.7"}), None)
        .await
        .unwrap();
    assert_eq!(refused.decision, Verdict::Deny);
    // As for any plugin, a request outside the grant fails the whole call
    // as a policy violation; the snippet cannot catch it and carry on.
    let error = refused.hooks[0].error.clone().unwrap();
    assert!(
        error.contains("127.0.0.1") && error.contains("not granted"),
        "{error}"
    );

    // A granted host that does not answer rejects `fetch` with a TypeError,
    // as in browsers, which the snippet may catch.
    let down = host
        .call_sync("Down", json!({"ip": "203.0.113.7"}), None)
        .await
        .unwrap();
    let error = down.hooks[0].error.clone().unwrap();
    assert!(
        error.contains("snippet threw TypeError: fetch http://127.0.0.1:"),
        "{error}"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_javascript_runs() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    host.create_hook(
        Some("modern".into()),
        json!({"sync": {"trigger": "PreRegistration"},
               "steps": [{"snippet": r#"
class Tag { #name; constructor(name) { this.#name = name; } get name() { return this.#name; } }
export default async ({ payload, ...event }) => {
  payload.roles ??= [];
  const [first, ...others] = payload.emails ?? [];
  await null;
  return { ...event, payload: { ...payload, primary: first?.toLowerCase(), others: others.length,
    last: [1, 2, 3].at(-1), sorted: [3, 1, 2].toSorted(), tag: new Tag("vip").name, big: `${2n ** 64n}` } };
};"#}]}),
    )
    .await
    .unwrap();
    let decision = host
        .call_sync(
            "PreRegistration",
            json!({"emails": ["Ada@Example.com", "a@b.c"]}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(decision.decision, Verdict::Allow, "{decision:?}");
    let patched = json!({"emails": ["Ada@Example.com", "a@b.c"], "roles": [], "primary": "ada@example.com",
                         "others": 1, "last": 3, "sorted": [1, 2, 3], "tag": "vip",
                         "big": "18446744073709551616"});
    assert_eq!(decision.payload, Some(patched));
    host.shutdown().await;
}
