//! End to end: the real `wasmhooks serve` binary on a free port with a
//! temporary data directory, driven over HTTP like a platform and an
//! operator would, delivering to real receivers on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wasmhooks::delivery::signing::{logto_signature, verify_standard, WebhookSecret};
use wasmhooks_testkit::script::{ok, status, Script};
use wasmhooks_testkit::serve::Running;
use wasmhooks_testkit::{plugin, plugin_bytes};

/// A running `wasmhooks serve`.
struct Server {
    process: Running,
    token: String,
    http: reqwest::Client,
}

const ADMIN: &str = "test-admin-token-0123456789abcdef";
const INGEST: &str = "test-ingest-token-0123456789abcdef";

impl Server {
    /// Start the binary with `config` (TOML) in `dir`, its data under
    /// `dir/data`, and tokens from the environment.
    fn start(dir: &Path, config: &str) -> Server {
        Server::start_with(dir, config, &[])
    }

    fn start_with(dir: &Path, config: &str, env: &[(&str, &str)]) -> Server {
        let mut command = wasmhooks_testkit::serve::command(
            env!("CARGO_BIN_EXE_wasmhooks"),
            dir,
            config,
            ADMIN,
            INGEST,
        );
        command
            .env("RUST_LOG", "warn,wasmhooks=info")
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        Server {
            process: wasmhooks_testkit::serve::spawn(command),
            token: ADMIN.into(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(&self.token, method, path, body).await
    }

    async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.process.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }

    async fn raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.process.url))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }

    async fn upload(&self, name: &str) -> Value {
        let (status, body) = self
            .raw(
                &format!("/v1/plugins?name={name}"),
                "application/wasm",
                plugin_bytes(name),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "ready", "{body}");
        body
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.process.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Poll `path` until `done` holds for its body.
    async fn wait_until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let body = self.get(path).await;
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never got there: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Post a sign-in event (202 expected) and return its first delivery's id.
    async fn emit_sign_in(&self) -> String {
        let (status, ingested) = self
            .call(
                Method::POST,
                "/v1/events",
                Some(json!({"event": "PostSignIn", "payload": sign_in()})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{ingested}");
        ingested["deliveries"][0]["id"]
            .as_str()
            .expect("the event made a delivery")
            .to_string()
    }

    /// Wait until delivery `id` has succeeded; returns it with its attempts.
    async fn wait_delivered(&self, id: &str) -> Value {
        self.wait_until(&format!("/v1/deliveries/{id}"), |d| {
            d["delivery"]["status"] == "succeeded"
        })
        .await
    }

    /// SIGTERM, then wait for the process to exit.
    fn terminate(self) -> ExitStatus {
        self.process.terminate()
    }
}

async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

const LOOPBACK: &str = "private_networks = [\"127.0.0.0/8\"]\n";

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn sign_in() -> Value {
    json!({"interactionEvent": "SignIn", "sessionId": "s1", "userId": "u1",
           "user": {"id": "u1", "primaryEmail": "ada@example.com"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_delivers_a_signed_transformed_event() {
    let dir = tempfile::tempdir().unwrap();
    quick_start(&Server::start(dir.path(), LOOPBACK)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_on_postgresql_named_in_the_environment() {
    let Some(db) = wasmhooks_testkit::db::PostgresDb::create("server_quick_start").await else {
        eprintln!("skipped: set WASMHOOKS_TEST_POSTGRES_URL to run against PostgreSQL");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), LOOPBACK, &[("WASMHOOKS_DATABASE_URL", &db.url)]);
    quick_start(&server).await;
    assert!(
        !dir.path().join("data/wasmhooks.db").exists(),
        "nothing went to SQLite"
    );
    drop(server);
    db.drop_database().await;
}

/// The README's quick start, step by step.
async fn quick_start(server: &Server) {
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;

    // 1. Upload a plugin. 2. Create a hook with a plugin step.
    let plugin = server.upload("enrich").await;
    assert_eq!(plugin["name"], "enrich");
    let hook = server
        .post(
            "/v1/hooks",
            json!({"id": "audit", "events": ["PostSignIn"],
               "steps": [{"plugin": "enrich", "config": {"tenant": "acme"}}],
               "webhook": {"url": receiver.url("/logto")}}),
        )
        .await;
    let key = hook["spec"]["webhook"]["signing_key"].as_str().unwrap();
    let secret = WebhookSecret::parse(
        hook["spec"]["webhook"]["secrets"][0]["secret"]
            .as_str()
            .unwrap(),
    )
    .unwrap();

    // 3. Post an event.
    let delivery = server.emit_sign_in().await;

    // 4. The signed, transformed delivery arrives.
    let seen = script.wait_for(1, Duration::from_secs(20)).await;
    let request = &seen[0];
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["tenant"], "acme", "the plugin step ran");
    assert_eq!(body["hookId"], "audit");
    assert_eq!(
        request.headers["logto-signature-sha-256"],
        logto_signature(key, &request.body).as_str()
    );
    let ts: i64 = request.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(verify_standard(
        &secret,
        &delivery,
        ts,
        &request.body,
        request.headers["webhook-signature"].to_str().unwrap()
    ));

    // 5. The delivery log shows it.
    let detail = server.wait_delivered(&delivery).await;
    assert_eq!(detail["attempts"][0]["response_status"], 200);
    let stats = server.get("/v1/hooks/audit/stats").await;
    assert_eq!(
        (stats["requests"].as_u64(), stats["successes"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(stats["latency_ms"]["p50"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_needs_a_token_and_ingest_tokens_only_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let no_token = server
        .http
        .get(format!("{}/v1/hooks", server.process.url))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(no_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthorized");
    let (status, _) = server
        .call_as("wrong-token", Method::GET, "/v1/hooks", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = server.call_as(INGEST, Method::GET, "/v1/hooks", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "forbidden");
    let (status, _) = server.call_as(INGEST, Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let event = json!({"event": "PostSignIn", "payload": sign_in()});
    let (status, _) = server
        .call_as(INGEST, Method::POST, "/v1/events", Some(event))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = server
        .call_as(
            INGEST,
            Method::POST,
            "/v1/sync/PreRegistration",
            Some(json!({"payload": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.call(Method::GET, "/v1/hooks", None).await;
    assert_eq!(status, StatusCode::OK);
    let open = server
        .http
        .get(format!("{}/healthz", server.process.url))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK, "health needs no token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configured_tokens_the_first_start_makes_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhooks"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("generated an admin token"), "{first}");
    let stored = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert!(first.ends_with(stored.trim()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only");
    }
    let url = lines.next().unwrap().unwrap();
    let url = url.strip_prefix("wasmhooks listening on ").unwrap();
    let response = reqwest::Client::new()
        .get(format!("{url}/v1/hooks"))
        .bearer_auth(stored.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "max_body_bytes = 4096\n");
    let malformed = server
        .raw("/v1/events", "application/json", b"{\"event\": ".to_vec())
        .await;
    assert_eq!(
        (malformed.0, error_code(&malformed.1)),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events",
            Some(json!({"event": "PostSignin", "payload": {}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "unknown_event")
    );
    assert_eq!(body["error"]["details"]["did_you_mean"], "PostSignIn");
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events",
            Some(json!({"event": "PostSignIn", "payload": {}, "extra": 1})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_field")
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("extra"));
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events",
            Some(json!({"event": "PostSignIn", "payload": {"pad": "x".repeat(5000)}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events/batch",
            Some(json!({"events": [
                {"event": "PostSignIn", "payload": {}},
                {"event": "Nope.Event", "payload": {}}
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("events[1]"),
        "{body}"
    );
    let (status, body) = server
        .raw(
            "/v1/plugins?name=junk",
            "application/wasm",
            b"\0asm not really".to_vec(),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_plugin")
    );
    let (status, body) = server
        .raw(
            "/v1/plugins?name=drifted",
            "application/wasm",
            plugin_bytes("wrong-signature"),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "wrong_world"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("wasmhooks:hook/handler@0.1.0") && message.contains("handle"),
        "the mismatch is named: {message}"
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/hooks",
            Some(
                json!({"events": ["PostSignIn"], "steps": [{"plugin": "missing"}],
                "webhook": {"url": "https://example.com/hook"}}),
            ),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_hook")
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`missing` is not registered"));
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/hooks",
            Some(json!({"events": ["PostSignIn"], "webhook": {"url": "ftp://example.com"}})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_hook")
    );
    let (status, body) = server.call(Method::GET, "/v1/hooks/nope", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );

    // Nothing changed.
    assert_eq!(server.get("/v1/hooks").await["hooks"], json!([]));
    assert_eq!(server.get("/v1/plugins").await["plugins"], json!([]));
    assert!(server
        .metrics()
        .await
        .contains("wasmhooks_events_accepted_total 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_deliveries_and_plugins_are_managed_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &format!("{LOOPBACK}[retry]\nschedule = [\"100ms\"]\njitter = 0.0\n"),
    );
    let script = Script::new(vec![status(500), ok()]);
    let receiver = script.start().await;
    server.upload("redact").await;
    server
        .post("/v1/event-types", json!({"name": "Billing.Invoice.Paid"}))
        .await;
    let events = server.get("/v1/event-types").await["events"].clone();
    assert!(events
        .as_array()
        .unwrap()
        .contains(&json!("Billing.Invoice.Paid")));

    let created = server
        .post(
            "/v1/hooks",
            json!({"id": "billing", "events": ["Billing.Invoice.Paid"],
                   "steps": [{"plugin": "redact", "config": {"paths": "card"}}],
                   "webhook": {"url": receiver.url("/billing")}}),
        )
        .await;
    assert_eq!(
        created["spec"]["webhook"]["retry"]["schedule"],
        json!(["100ms"]),
        "config's retry default"
    );
    let patched = server
        .call(
            Method::PATCH,
            "/v1/hooks/billing",
            Some(json!({"name": "Billing", "webhook": {"headers": {"x-team": "finance"}}})),
        )
        .await;
    assert_eq!(patched.0, StatusCode::OK, "{}", patched.1);
    assert_eq!(patched.1["spec"]["name"], "Billing");
    assert_eq!(
        patched.1["spec"]["webhook"]["url"],
        receiver.url("/billing"),
        "merge keeps the rest"
    );
    assert_eq!(
        server.get("/v1/hooks").await["hooks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Batch ingest; the first attempt fails (500), the retry succeeds.
    let batch = server
        .post(
            "/v1/events/batch",
            json!({"events": [{"event": "Billing.Invoice.Paid", "payload": {"card": "4242", "amount": 10}, "id": "inv-1"}]}),
        )
        .await;
    let delivery = batch["events"][0]["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let detail = server.wait_delivered(&delivery).await;
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 2);
    let sent: Value = serde_json::from_slice(&script.seen()[1].body).unwrap();
    assert_ne!(sent["card"], "4242", "the redact step ran");
    assert_eq!(script.seen()[1].headers["x-team"], "finance");
    let again = server
        .post(
            "/v1/events",
            json!({"event": "Billing.Invoice.Paid", "payload": {"amount": 10, "card": "4242"}, "id": "inv-1"}),
        )
        .await;
    assert_eq!(again["duplicate"], true, "idempotent on the event id");
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/events",
            Some(json!({"event": "Billing.Invoice.Paid", "payload": {}, "id": "inv-1"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "another event under a used id"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("inv-1"),
        "{body}"
    );

    let page = server
        .get("/v1/hooks/billing/deliveries?status=succeeded&limit=10")
        .await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 1);
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/hooks/billing/deliveries?status=bogus",
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );

    // Manual retry and replay.
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/v1/deliveries/{delivery}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    script.wait_for(3, Duration::from_secs(20)).await;
    let replayed = server
        .post(
            "/v1/hooks/billing/replay",
            json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(replayed["status"], "running", "{replayed}");
    let job = format!("/v1/replays/{}", replayed["id"].as_str().unwrap());
    let done = server.wait_until(&job, |j| j["status"] == "done").await;
    assert_eq!(done["enqueued"], 1, "{done}");
    script.wait_for(4, Duration::from_secs(20)).await;

    // Test sends reach the receiver now and report its answer.
    let tested = server.post("/v1/hooks/billing/test", json!({})).await;
    assert_eq!(tested["results"][0]["status"], 200);
    assert_eq!(tested["results"][0]["body"], "receiver says hi");

    // Rotation: two secrets sign during the grace period, which must read
    // as a duration.
    // Reads mask secrets; the explicit call reveals them.
    let masked = patched.1["spec"]["webhook"]["signing_key"]
        .as_str()
        .unwrap()
        .to_string();
    let revealed = server.get("/v1/hooks/billing/secrets").await;
    let old_key = revealed["spec"]["webhook"]["signing_key"].clone();
    assert_eq!(
        wasmhooks::secrets::mask(old_key.as_str().unwrap()),
        masked,
        "the read showed the key masked"
    );
    assert!(!server
        .get("/v1/hooks")
        .await
        .to_string()
        .contains(old_key.as_str().unwrap()));
    // A definition sent back as read keeps its stored secrets.
    let read = server.get("/v1/hooks/billing").await;
    let (status, _) = server
        .call(
            Method::PATCH,
            "/v1/hooks/billing",
            Some(json!({"webhook": read["spec"]["webhook"].clone()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let again = server.get("/v1/hooks/billing/secrets").await;
    assert_eq!(again["spec"]["webhook"]["signing_key"], old_key);
    assert_eq!(
        again["spec"]["webhook"]["secrets"],
        revealed["spec"]["webhook"]["secrets"]
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/hooks/billing/signing-key",
            Some(json!({"grace": "soon"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_field")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`soon`"),
        "{body}"
    );
    let rotated = server
        .post("/v1/hooks/billing/signing-key", json!({"grace": "1h"}))
        .await;
    // Logto's header carries one signature: the old key signs through the
    // grace period, and the new one waits for its end.
    let webhook = &rotated["spec"]["webhook"];
    assert_eq!(webhook["signing_key"], old_key);
    let next = &webhook["next_signing_key"];
    assert!(
        next["key"].is_string() && next["key"] != old_key,
        "{webhook}"
    );
    assert!(next["active_from"].as_i64().unwrap() > wasmhooks::store::now_ms());
    let secrets = webhook["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert!(secrets[0]["expires_at"].is_null() && secrets[1]["expires_at"].is_i64());
    // Each scheme rotates alone.
    let standard = server
        .post(
            "/v1/hooks/billing/signing-key",
            json!({"scheme": "standard", "grace": "1h"}),
        )
        .await;
    assert_eq!(standard["spec"]["webhook"]["signing_key"], old_key);
    assert_eq!(standard["spec"]["webhook"]["next_signing_key"], *next);
    assert_eq!(
        standard["spec"]["webhook"]["secrets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let logto = server
        .post(
            "/v1/hooks/billing/signing-key",
            json!({"scheme": "logto", "grace": "0s"}),
        )
        .await;
    assert_ne!(
        logto["spec"]["webhook"]["signing_key"], old_key,
        "no grace: at once"
    );
    assert_ne!(logto["spec"]["webhook"]["signing_key"], next["key"]);
    assert!(logto["spec"]["webhook"]["next_signing_key"].is_null());
    assert_eq!(
        logto["spec"]["webhook"]["secrets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Disabled hooks come back with one call.
    let enabled = server.post("/v1/hooks/billing/enable", json!({})).await;
    assert_eq!(enabled["enabled"], true);

    // A plugin in use cannot be deleted; once its hook is gone it can.
    let (status, body) = server
        .call(Method::DELETE, "/v1/plugins/redact", None)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "conflict")
    );
    let (status, _) = server.call(Method::DELETE, "/v1/hooks/billing", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(Method::DELETE, "/v1/plugins/redact", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Operations.
    let metrics = server.metrics().await;
    for name in [
        "wasmhooks_events_accepted_total",
        "wasmhooks_deliveries_total{outcome=\"succeeded\"}",
        "wasmhooks_deliveries_total{outcome=\"retry\"}",
        "wasmhooks_attempt_duration_seconds_bucket",
        "wasmhooks_plugin_calls_total{plugin=\"redact\",outcome=\"continue\"}",
        "wasmhooks_queue_pending",
        "wasmhooks_queue_oldest_due_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
    let ready = server
        .http
        .get(format!("{}/readyz", server.process.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let document = server
        .http
        .get(format!("{}/openapi.json", server.process.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // It reads as an OpenAPI 3.1 document: every object of the right type,
    // with the fields the specification requires.
    let spec = oas3::from_json(&document).expect("a valid OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let openapi: Value = serde_json::from_str(&document).unwrap();
    for path in [
        "/v1/events",
        "/v1/events/batch",
        "/v1/event-types",
        "/v1/hooks",
        "/v1/hooks/{id}",
        "/v1/hooks/{id}/test",
        "/v1/hooks/{id}/signing-key",
        "/v1/hooks/{id}/secrets",
        "/v1/hooks/{id}/enable",
        "/v1/hooks/{id}/deliveries",
        "/v1/hooks/{id}/replay",
        "/v1/replays/{id}",
        "/v1/hooks/{id}/stats",
        "/v1/deliveries/{id}",
        "/v1/deliveries/{id}/retry",
        "/v1/plugins",
        "/v1/plugins/{name}",
        "/v1/sync/{trigger}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} is documented");
    }
    assert!(openapi["components"]["schemas"]["HookSpec"].is_object());
    // Every path parameter stands in its path, and query filters are
    // declared in the query, so generated clients put them where they go.
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                let placed = parameter["in"].as_str().unwrap();
                let in_template = path.contains(&format!("{{{name}}}"));
                assert_eq!(
                    placed == "path",
                    in_template,
                    "{method} {path}: parameter `{name}` is declared in {placed}"
                );
            }
        }
    }
    let filters = &openapi["paths"]["/v1/hooks/{id}/deliveries"]["get"]["parameters"];
    let status = filters
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "status")
        .unwrap();
    assert_eq!(
        (status["in"].as_str(), status["required"].as_bool()),
        (Some("query"), Some(false))
    );
    // The answers every operation can give are documented.
    let hooks = &openapi["paths"]["/v1/hooks"];
    for code in ["401", "403", "500", "503"] {
        assert!(
            hooks["get"]["responses"][code].is_object(),
            "GET /v1/hooks {code}"
        );
    }
    for code in ["400", "413"] {
        assert!(
            hooks["post"]["responses"][code].is_object(),
            "POST /v1/hooks {code}"
        );
    }
    assert!(openapi["paths"]["/healthz"]["get"]["responses"]["401"].is_null());
    assert!(
        openapi["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
            ["application/openmetrics-text; version=1.0.0; charset=utf-8"]
            .is_object()
    );
    let details = &openapi["components"]["schemas"]["ErrorDetail"]["properties"]["details"];
    assert!(
        details.to_string().contains("null"),
        "details may be null: {details}"
    );
    // The schemas carry the limits the server enforces.
    let emit = &openapi["components"]["schemas"]["EmitRequest"]["properties"];
    assert_eq!(emit["event"]["minLength"], 1, "{emit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_triggers_deny_patch_and_survive_a_looping_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        "[sync]\ndeadline = \"300ms\"\n[limits]\ntimeout = \"2s\"\n",
    );
    server.upload("block-disposable-email").await;
    server.upload("enrich").await;
    server.upload("hostile").await;
    for (id, spec) in [
        (
            "a-block",
            json!({"sync": {"trigger": "PreRegistration", "order": 1},
            "steps": [{"plugin": "block-disposable-email"}]}),
        ),
        (
            "b-enrich",
            json!({"sync": {"trigger": "PreRegistration", "order": 2},
            "steps": [{"plugin": "enrich", "config": {"customData.plan": "free"}}]}),
        ),
        (
            "loop-open",
            json!({"sync": {"trigger": "PostSignIn", "on_error": "allow"},
            "steps": [{"plugin": "hostile", "config": {"mode": "loop"}}]}),
        ),
        (
            "loop-closed",
            json!({"sync": {"trigger": "Token", "on_error": "deny"},
            "steps": [{"plugin": "hostile", "config": {"mode": "loop"}}]}),
        ),
    ] {
        let mut spec = spec;
        spec["id"] = json!(id);
        server.post("/v1/hooks", spec).await;
    }

    let denied = server
        .post(
            "/v1/sync/PreRegistration",
            json!({"payload": {"email": "x@mailinator.com"}}),
        )
        .await;
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["hook"], "a-block");
    assert!(denied["code"].is_string() && denied["message"].is_string());
    assert_eq!(
        denied["hooks"].as_array().unwrap().len(),
        1,
        "a deny stops the chain"
    );

    let allowed = server
        .post(
            "/v1/sync/PreRegistration",
            json!({"payload": {"email": "ada@example.com"}}),
        )
        .await;
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(allowed["payload"]["customData"]["plan"], "free");
    assert_eq!(
        allowed["patch"],
        json!([{"op": "add", "path": "/customData", "value": {"plan": "free"}}])
    );
    assert_eq!(allowed["hooks"].as_array().unwrap().len(), 2);

    let started = Instant::now();
    let open = server
        .post("/v1/sync/PostSignIn", json!({"payload": {"userId": "u1"}}))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the trigger's deadline held"
    );
    assert_eq!(open["decision"], "allow", "on_error = allow fails open");
    assert_eq!(open["hooks"][0]["outcome"], "error");
    assert!(open["hooks"][0]["error"]
        .as_str()
        .unwrap()
        .contains("deadline"));
    let closed = server
        .post(
            "/v1/sync/Token",
            json!({"payload": {"userId": "u1"}, "deadline_ms": 100}),
        )
        .await;
    assert_eq!(closed["decision"], "deny", "on_error = deny fails closed");
    assert_eq!(closed["code"], "hook_failed");

    let nothing = server
        .post("/v1/sync/Unbound", json!({"payload": {"a": 1}}))
        .await;
    assert_eq!(
        (nothing["decision"].clone(), nothing["patch"].clone()),
        (json!("allow"), json!([]))
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/sync/PostSignIn",
            Some(json!({"payload": [1]})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert!(
        server.get("/healthz").await["status"] == "ok",
        "still serving"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_hooks_plugins_and_pending_deliveries_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port yet: the first attempt fails to connect.
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let config = format!(
        "{LOOPBACK}[retry]\nschedule = [\"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\"]\njitter = 0.0\n\
         [[plugins]]\nname = \"enrich\"\npath = \"{}\"\n\
         [[hooks]]\nid = \"declared\"\nevents = [\"PostSignIn\"]\n\
         steps = [{{ plugin = \"enrich\", config = {{ tenant = \"acme\" }} }}]\n\
         webhook = {{ url = \"http://127.0.0.1:{port}/hook\" }}\n",
        plugin("enrich").display()
    );
    let server = Server::start(dir.path(), &config);
    let key = server.get("/v1/hooks/declared").await["spec"]["webhook"]["signing_key"].clone();
    let delivery = server.emit_sign_in().await;
    server
        .wait_until(&format!("/v1/deliveries/{delivery}"), |d| {
            d["attempts"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    assert!(server
        .metrics()
        .await
        .contains("wasmhooks_plugin_loads_total{origin=\"compiled\"} 1"));
    assert!(server.terminate().success());

    // The receiver comes up; the host restarts from the same data directory.
    let script = Script::new(vec![ok()]);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let _receiver = script.start_on(listener);
    let started = Instant::now();
    let server = Server::start(dir.path(), &config);
    let restart = started.elapsed();
    let hook = server.get("/v1/hooks/declared").await;
    assert_eq!(
        hook["spec"]["webhook"]["signing_key"], key,
        "declared hooks keep their keys"
    );
    assert_eq!(
        server.get("/v1/plugins").await["plugins"][0]["name"],
        "enrich"
    );
    let seen = script.wait_for(1, Duration::from_secs(20)).await;
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["tenant"], "acme");
    server.wait_delivered(&delivery).await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("wasmhooks_plugin_loads_total{origin=\"cache\"} 1")
            && !metrics.contains("origin=\"compiled\""),
        "the restart loaded the plugin from the compile cache:\n{metrics}"
    );
    eprintln!("restart to listening: {restart:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_deliveries_in_flight_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let script = Script::new(vec![(200, vec![], Duration::from_millis(800))]);
    let receiver = script.start().await;
    let server = Server::start(dir.path(), LOOPBACK);
    server
        .post(
            "/v1/hooks",
            json!({"id": "slow", "events": ["PostSignIn"], "webhook": {"url": receiver.url("/slow")}}),
        )
        .await;
    let delivery = server.emit_sign_in().await;
    script.wait_for(1, Duration::from_secs(20)).await;
    let started = Instant::now();
    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it waited for the slow receiver"
    );

    let server = Server::start(dir.path(), LOOPBACK);
    let detail = server.get(&format!("/v1/deliveries/{delivery}")).await;
    assert_eq!(detail["delivery"]["status"], "succeeded", "{detail}");
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(script.seen().len(), 1, "not sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snippet_answers_a_sync_trigger_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "cache_dir = \"{}\"\n[limits]\ntimeout = \"10s\"\n[sync]\ndeadline = \"10s\"\n",
        wasmhooks_testkit::shared_cache_dir().display()
    );
    let server = Server::start(dir.path(), &config);
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/hooks",
            Some(json!({"id": "bad", "sync": {"trigger": "PostSignIn"},
                        "steps": [{"snippet": "export default (event) => {\n  return event.;\n}"}]})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_hook")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 2, col"), "{message}");
    assert_eq!(server.get("/v1/hooks").await["hooks"], json!([]));

    server
        .post(
            "/v1/hooks",
            json!({"id": "mfa", "sync": {"trigger": "PostSignIn"},
                   "steps": [{"snippet": "export default function (event, ctx) {\n  const { user } = event.payload;\n  if (!user?.mfaVerified && ctx.config.require === \"yes\") return ctx.deny(\"mfa_required\", \"Verify your second factor first.\");\n  event.payload.claims = { roles: user?.roles ?? [] };\n  return event;\n}",
                              "config": {"require": "yes"}}]}),
        )
        .await;
    let denied = server
        .post(
            "/v1/sync/PostSignIn",
            json!({"payload": {"user": {"id": "u1"}}}),
        )
        .await;
    assert_eq!(
        (denied["decision"].clone(), denied["code"].clone()),
        (json!("deny"), json!("mfa_required"))
    );
    let allowed = server
        .post(
            "/v1/sync/PostSignIn",
            json!({"payload": {"user": {"id": "u1", "mfaVerified": true, "roles": ["admin"]}}}),
        )
        .await;
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(
        allowed["patch"],
        json!([{"op": "add", "path": "/claims", "value": {"roles": ["admin"]}}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_in_flight_at_a_kill_are_sent_again_at_once_after_restart() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let answering = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let router = {
        let (answering, requests) = (answering.clone(), requests.clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (answering, requests) = (answering.clone(), requests.clone());
                async move {
                    requests.fetch_add(1, Ordering::SeqCst);
                    // Before the kill the receiver hangs: the attempts stay in flight.
                    while !answering.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    "ok"
                }
            }),
        )
    };
    let receiver = wasmhooks_testkit::Receiver::start(router).await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), LOOPBACK);
    server
        .post(
            "/v1/hooks",
            json!({"id": "h", "events": ["PostSignIn"],
                   "webhook": {"url": receiver.url("/hook"), "timeout": "60s"}}),
        )
        .await;
    let mut deliveries = Vec::new();
    for _ in 0..3 {
        deliveries.push(server.emit_sign_in().await);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while requests.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "the three attempts started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(server); // kill -9
    answering.store(true, Ordering::SeqCst);

    // Within the 20 s `wait_until` allows, well under the 30 s lease the
    // dead process held them by.
    let server = Server::start(dir.path(), LOOPBACK);
    for id in &deliveries {
        server
            .wait_until(&format!("/v1/deliveries/{id}"), |d| {
                d["delivery"]["status"] == "succeeded"
            })
            .await;
    }
}

/// The OpenAPI-driven fuzzer the contract test runs, pinned.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// What the contract test checks of every response: no 5xx, only
/// documented statuses, content types, bodies and headers, and every
/// request that breaks the document's schemas refused.
const CONTRACT_CHECKS: &str =
    "not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance,response_headers_conformance,negative_data_rejection";

/// Every operation of `/openapi.json`, driven by schemathesis with requests
/// generated from the document (valid and invalid ones, and chains that
/// follow its links) against the real server. A hook, a plugin, an event
/// with its delivery and a replay are made first, and their ids given to
/// the operations that take them, so the requests reach past the 404.
/// Needs `python3` (schemathesis comes from PyPI); CI always runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_the_openapi_document_says() {
    let Some(st) = wasmhooks_testkit::python::tool(SCHEMATHESIS, "st") else {
        return wasmhooks_testkit::tools::skip_without("python3, for schemathesis");
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), LOOPBACK);
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    server.upload("enrich").await;
    let hook = server
        .post(
            "/v1/hooks",
            json!({"id": "contract", "events": ["PostSignIn"],
                   "steps": [{"plugin": "enrich", "config": {"tenant": "acme"}}],
                   "webhook": {"url": receiver.url("/hook")}}),
        )
        .await;
    let hook_id = hook["id"].as_str().unwrap().to_string();
    server
        .post(
            "/v1/hooks",
            json!({"id": "contract-sync",
                   "steps": [{"plugin": "enrich", "config": {"tenant": "acme"}}],
                   "sync": {"trigger": "sign-in"}}),
        )
        .await;
    let delivery = server.emit_sign_in().await;
    let replay = server
        .post(&format!("/v1/hooks/{hook_id}/replay"), json!({"since": 0}))
        .await;
    let config = format!(
        r#"
[[operations]]
include-path-regex = "^/v1/hooks/\\{{id\\}}"
exclude-method = "DELETE"
parameters = {{ id = "{hook_id}" }}

[[operations]]
include-path-regex = "^/v1/deliveries/\\{{id\\}}"
parameters = {{ id = "{delivery}" }}

[[operations]]
include-path = "/v1/replays/{{id}}"
parameters = {{ id = "{replay}" }}
"#,
        replay = replay["id"].as_str().unwrap(),
    );
    let config_file = dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config).unwrap();
    let seed = std::env::var("WASMHOOKS_CONTRACT_SEED").unwrap_or_else(|_| "1".into());
    let run = tokio::process::Command::new(&st)
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config_file)
        .args(["run", &format!("{}/openapi.json", server.process.url)])
        .args(["--checks", CONTRACT_CHECKS])
        .args(["--max-examples", "25", "--workers", "2", "--seed", &seed])
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .output()
        .await
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis found responses the document does not describe (seed {seed}):\n{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let document = server.get("/openapi.json").await;
    let operations: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "all {operations} operations were driven:\n{report}"
    );
}

/// The reference Standard Webhooks library, pinned, for signing as a real
/// sender does.
const STANDARD_WEBHOOKS: &str = "standardwebhooks==1.1.0";

/// `body` signed by the reference Standard Webhooks library with `secret`,
/// as message `id` at `timestamp` (seconds): the `webhook-signature` value.
fn reference_signature(
    python: &Path,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &str,
) -> String {
    let script = "import sys, datetime\n\
        from standardwebhooks import Webhook\n\
        secret, msg_id, ts, body = sys.argv[1:5]\n\
        at = datetime.datetime.fromtimestamp(int(ts), tz=datetime.timezone.utc)\n\
        print(Webhook(secret).sign(msg_id, at, body))";
    let out = Command::new(python)
        .args(["-c", script, secret, id, &timestamp.to_string(), body])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A Logto webhook's body, signed as Logto signs it: the hex HMAC-SHA256
/// of the raw body with the webhook's signing key.
fn logto_signed(key: &str, body: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl Server {
    /// POST `body` to `/v1/inbound/{source}` with `headers` and no token.
    async fn inbound(
        &self,
        source: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/inbound/{source}", self.process.url))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().await.unwrap()).await
    }

    /// How many deliveries hook `id` has.
    async fn delivery_count(&self, id: &str) -> usize {
        self.get(&format!("/v1/hooks/{id}/deliveries?limit=500"))
            .await["deliveries"]
            .as_array()
            .unwrap()
            .len()
    }
}

/// A Logto webhook and a Standard Webhooks sender post to their sources;
/// what they sign is stored and delivered onward through a hook, and
/// tampered, unsigned, stale and replayed requests are refused or dropped
/// with nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_from_logto_and_standard_senders_become_events() {
    let dir = tempfile::tempdir().unwrap();
    // Logto: the signing key from Logto's console.
    let key = "uKFwbT0yd3Ydhp3eR7s0qjn2Ha5ZK1f3";
    let config = format!(
        "{LOOPBACK}\n[[sources]]\nid = \"from-file\"\nkind = \"logto\"\nsigning_key = \"{key}\"\n"
    );
    let server = Server::start(dir.path(), &config);
    let script = Script::new(vec![ok()]);
    let receiver = script.start().await;
    server
        .post(
            "/v1/hooks",
            json!({"id": "onward", "events": ["PostRegister", "User.Created"],
                   "webhook": {"url": receiver.url("/onward")}}),
        )
        .await;

    let (status, created) = server
        .call(
            Method::PUT,
            "/v1/sources/logto",
            Some(json!({"kind": "logto", "signing_key": key})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["signing_key"], key, "shown in full once");
    assert_eq!(created["inbound_path"], "/v1/inbound/logto");
    let read = server.get("/v1/sources/logto").await;
    assert_ne!(read["signing_key"], key, "masked on reads: {read}");

    let body = json!({"event": "PostRegister", "hookId": "logto_hook_1",
        "createdAt": "2026-12-03T10:00:00.000Z", "interactionEvent": "Register",
        "user": {"id": "u1", "primaryEmail": "ada@example.com"}})
    .to_string();
    let signature = logto_signed(key, &body);
    let (status, ingested) = server
        .inbound("logto", &[("logto-signature-sha-256", &signature)], &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{ingested}");
    let seen = script.wait_for(1, Duration::from_secs(20)).await;
    let delivered: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(delivered["event"], "PostRegister");
    assert_eq!(delivered["user"]["primaryEmail"], "ada@example.com");
    assert_eq!(delivered["createdAt"], "2026-12-03T10:00:00.000Z");

    let tampered = body.replace("ada@", "eve@");
    let (status, refused) = server
        .inbound(
            "logto",
            &[("logto-signature-sha-256", &signature)],
            &tampered,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(error_code(&refused), "invalid_signature");
    let (status, refused) = server.inbound("logto", &[], &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("logto-signature-sha-256"));
    let (status, _) = server
        .inbound("nobody", &[("logto-signature-sha-256", &signature)], &body)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Over the body cap (1 MiB by default), even when correctly signed. The
    // server closes a connection whose body it refused unread, so this one
    // goes on a connection of its own.
    let huge = json!({"event": "PostRegister", "padding": "x".repeat(2 << 20)}).to_string();
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/inbound/logto", server.process.url))
        .header("content-type", "application/json")
        .header("logto-signature-sha-256", logto_signed(key, &huge))
        .body(huge)
        .send()
        .await;
    // The 413 may reach the client, or the close may cut its upload first.
    match refused {
        Ok(answer) => {
            assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
            assert_eq!(answer.headers()["connection"], "close");
        }
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    assert_eq!(
        server.delivery_count("onward").await,
        1,
        "nothing refused was stored"
    );
    let (status, from_file) = server
        .inbound(
            "from-file",
            &[("logto-signature-sha-256", &signature)],
            &body,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "a source from [[sources]]: {from_file}"
    );
    script.wait_for(2, Duration::from_secs(20)).await;

    // Standard Webhooks, signed by the reference library.
    let Some(python) = wasmhooks_testkit::python::tool(STANDARD_WEBHOOKS, "python") else {
        return wasmhooks_testkit::tools::skip_without(
            "python3, for the Standard Webhooks library",
        );
    };
    let secret = WebhookSecret::generate().to_text();
    let (status, created) = server
        .call(
            Method::PUT,
            "/v1/sources/billing",
            Some(json!({"kind": "standard-webhooks", "secrets": [secret], "event_field": "type"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let body = json!({"type": "User.Created", "data": {"id": "u2"}}).to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sign = |id: &str, at: i64, body: &str| reference_signature(&python, &secret, id, at, body);
    let signature = sign("msg_1", now, &body);
    let ts = now.to_string();
    let headers = [
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    let (status, first) = server.inbound("billing", &headers, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["duplicate"], false);
    let (status, again) = server.inbound("billing", &headers, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["duplicate"], true, "a replayed webhook-id is dropped");
    let seen = script.wait_for(3, Duration::from_secs(20)).await;
    let delivered: Value = serde_json::from_slice(&seen[2].body).unwrap();
    assert_eq!(delivered["event"], "User.Created");
    assert_eq!(delivered["data"]["id"], "u2");

    let stale_at = now - 600;
    let stale_signature = sign("msg_2", stale_at, &body);
    let stale_ts = stale_at.to_string();
    let (status, refused) = server
        .inbound(
            "billing",
            &[
                ("webhook-id", "msg_2"),
                ("webhook-timestamp", &stale_ts),
                ("webhook-signature", &stale_signature),
            ],
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(error_code(&refused), "stale_timestamp");
    let (status, refused) = server
        .inbound("billing", &headers, &body.replace("u2", "u3"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    let unknown = json!({"type": "No.Such.Event"}).to_string();
    let unknown_signature = sign("msg_3", now, &unknown);
    let (status, refused) = server
        .inbound(
            "billing",
            &[
                ("webhook-id", "msg_3"),
                ("webhook-timestamp", &ts),
                ("webhook-signature", &unknown_signature),
            ],
            &unknown,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(error_code(&refused), "unknown_event");
    assert_eq!(
        server.delivery_count("onward").await,
        3,
        "nothing refused was stored"
    );

    let listed = server.get("/v1/sources").await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert!(!listed.to_string().contains(&secret), "masked: {listed}");
    let (status, _) = server
        .call(Method::DELETE, "/v1/sources/billing", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.inbound("billing", &headers, &body).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a deleted source's sender is refused"
    );
}
