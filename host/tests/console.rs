//! The web console, end to end against the real binary: its session and
//! CSRF rules over plain HTTP, and an operator's whole round in a real
//! headless Chromium (skipped where Chromium is not installed, always run
//! in CI).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhooks_testkit::browser::{self, fantoccini};
use wasmhooks_testkit::script::{ok, Script};
use wasmhooks_testkit::serve::Running;

use fantoccini::{Client, Locator};

const ADMIN: &str = "console-admin-token-0123456789abcdef";
const INGEST: &str = "console-ingest-token-0123456789abcdef";

/// The real server, killed on drop.
struct Server {
    process: Running,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut command = wasmhooks_testkit::serve::command(
            env!("CARGO_BIN_EXE_wasmhooks"),
            dir,
            "private_networks = [\"127.0.0.0/8\"]\n",
            ADMIN,
            INGEST,
        );
        command.env("RUST_LOG", "warn").stderr(Stdio::inherit());
        Server {
            process: wasmhooks_testkit::serve::spawn(command),
        }
    }

    /// A call to the JSON API with the admin token.
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = reqwest::Client::new()
            .request(method.clone(), format!("{}{path}", self.process.url))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// The value of `name="csrf"` in a console page.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form")
        + 19;
    page[at..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_are_cookies_and_every_change_needs_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", server.process.url);
    server
        .api(
            reqwest::Method::POST,
            "/v1/hooks",
            Some(json!({"id": "h", "events": ["PostSignIn"], "webhook": {"url": "http://127.0.0.1:9/h"}})),
        )
        .await;

    // No session: every page sends the browser to sign in, and back after.
    let to_sign_in = http.get(url("/console/hooks/h")).send().await.unwrap();
    assert_eq!(to_sign_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        to_sign_in.headers()[LOCATION],
        "/console/sign-in?next=%2Fconsole%2Fhooks%2Fh"
    );
    let unsigned_change = http
        .post(url("/console/hooks/h/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned_change.status(), StatusCode::SEE_OTHER);

    // Only an admin token signs in.
    for (token, status) in [
        ("wrong", StatusCode::UNAUTHORIZED),
        (INGEST, StatusCode::FORBIDDEN),
    ] {
        let refused = http
            .post(url("/console/sign-in"))
            .form(&[("token", token), ("next", "/console/hooks")])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), status);
        assert!(refused.headers().get(SET_COOKIE).is_none());
    }
    let signed_in = http
        .post(url("/console/sign-in"))
        .form(&[("token", ADMIN), ("next", "https://elsewhere.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        signed_in.headers()[LOCATION],
        "/console/hooks",
        "never off-site"
    );
    let set_cookie = signed_in.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    // The cookie is no credential for the JSON API.
    let api = http
        .get(url("/v1/hooks"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);

    let page = http
        .get(url("/console/hooks/h"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers()["cache-control"], "no-store");
    let csrf = csrf_of(&page.text().await.unwrap());

    // A change without the token, or with another, is refused and changes nothing.
    for form in [
        vec![("reason", "x")],
        vec![("reason", "x"), ("csrf", "forged")],
    ] {
        let refused = http
            .post(url("/console/hooks/h/disable"))
            .header(COOKIE, &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    // An oversized form is refused unread, even with the token.
    let huge = http
        .post(url("/console/hooks/h/disable"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("reason", &"x".repeat(2 << 20))])
        .send()
        .await;
    match huge {
        Ok(answer) => {
            assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
            assert_eq!(answer.headers()["connection"], "close");
        }
        // The server may close the connection before the upload ends.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let hook = server.api(reqwest::Method::GET, "/v1/hooks/h", None).await;
    assert_eq!(hook["enabled"], true, "nothing changed: {hook}");

    let disabled = http
        .post(url("/console/hooks/h/disable"))
        .header(COOKIE, &cookie)
        .form(&[("reason", "maintenance"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), StatusCode::SEE_OTHER);
    let hook = server.api(reqwest::Method::GET, "/v1/hooks/h", None).await;
    assert_eq!(hook["disabled_reason"], "maintenance");

    // Signing out clears the cookie and ends the session.
    let out = http
        .post(url("/console/sign-out"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = http
        .get(url("/console/hooks"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
}

/// Wait until the page shows `needle` in the element at `css`, reloading
/// it in between.
async fn reload_until(client: &Client, css: &str, needle: &str) {
    for _ in 0..200 {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if element.text().await.is_ok_and(|text| text.contains(needle)) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.refresh().await.unwrap();
    }
    panic!("the page never showed {needle:?} at {css}");
}

/// Wait until the element at `css` shows `needle` (the page may still be
/// loading), and return its whole text.
async fn see(client: &Client, css: &str, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..400 {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if text.contains(needle) {
                    return text;
                }
                last = text;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css} never showed {needle:?}; it showed {last:?}");
}

/// Wait until the browser is on a page whose path ends with `suffix`.
async fn arrive(client: &Client, suffix: &str) {
    for _ in 0..400 {
        if client.current_url().await.unwrap().path().ends_with(suffix) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the browser never reached {suffix}");
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_hooks_from_the_browser() {
    let Some(browser) = browser::start(1280, 900).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let receiver = Script::new(vec![ok()]);
    let endpoint = receiver.start().await;
    let c = &browser.client;
    let url = |path: &str| format!("{}{path}", server.process.url);

    // Sign in, by keyboard: a wrong token is refused at the field.
    c.goto(&url("/console/hooks")).await.unwrap();
    arrive(c, "/sign-in").await;
    fill(c, "#token", "not-the-token\n").await;
    see(c, "#token-error", "not valid").await;
    fill(c, "#token", &format!("{ADMIN}\n")).await;
    see(c, "main h1", "Hooks").await;

    // Upload a plugin through the file picker; it is validated.
    c.goto(&url("/console/plugins")).await.unwrap();
    let wasm = wasmhooks_testkit::plugin("enrich");
    c.find(Locator::Css("#plugin-file"))
        .await
        .unwrap()
        .send_keys(wasm.to_str().unwrap())
        .await
        .unwrap();
    fill(c, "#plugin-name", "enrich").await;
    click(c, "#upload button[type=submit]").await;
    see(c, ".notice", "Plugin enrich uploaded").await;
    see(c, "table", "enrich").await;
    // A file dropped on the form that is not a component is refused beside it.
    let name = c.find(Locator::Css("#plugin-name")).await.unwrap();
    name.clear().await.unwrap();
    c.execute(
        "const drop = document.querySelector('[data-drop]');
         const files = new DataTransfer();
         files.items.add(new File(['not wasm'], 'junk.wasm', {type: 'application/wasm'}));
         drop.dispatchEvent(new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true}));",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        name.prop("value").await.unwrap().as_deref(),
        Some("junk"),
        "the dropped file names the plugin"
    );
    click(c, "#upload button[type=submit]").await;
    see(c, "#upload-status", "invalid plugin").await;

    // Create a hook with a snippet step: a syntax error is shown at its line.
    c.goto(&url("/console/hooks/new")).await.unwrap();
    fill(c, "#id", "signups").await;
    fill(c, "#event-search", "PostReg").await;
    click(c, "input[name=events][value=PostRegister]").await;
    fill(c, "#url", &endpoint.url("/hooks")).await;
    fill(c, "#headers", "Authorization: Bearer receiver-secret").await;
    click(c, "button[data-step=add]").await;
    let broken = "export default function (event) {\n  return event.payload.;\n}";
    fill(c, "#step-0-snippet", broken).await;
    click(c, "button[type=submit].primary").await;
    let error = see(c, "#step-0-step-error", "SyntaxError").await;
    assert!(error.contains("line 2, col"), "{error}");
    see(c, "pre.excerpt mark", "2 |   return event.payload.;").await;
    assert_eq!(
        c.find(Locator::Css("#step-0-snippet"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(broken),
        "what was typed is kept"
    );
    fill(
        c,
        "#step-0-snippet",
        "export default function (event) {\n  event.payload.checked = true;\n  return event;\n}",
    )
    .await;
    click(c, "button[data-step=add]").await;
    c.find(Locator::Css("#step-1-kind"))
        .await
        .unwrap()
        .select_by_value("plugin")
        .await
        .unwrap();
    click(c, "button[type=submit].primary").await;
    see(c, ".notice", "Hook saved").await;
    see(c, "main h1", "Hook signups").await;
    let hook = server
        .api(reqwest::Method::GET, "/v1/hooks/signups", None)
        .await;
    assert_eq!(hook["spec"]["steps"][1]["plugin"], "enrich", "{hook}");
    assert_eq!(hook["spec"]["events"], json!(["PostRegister"]));

    // Send a test: the receiver's answer is shown.
    click(c, "#test-title + form button[type=submit]").await;
    see(c, ".test-status", "200").await;
    see(c, "pre.code", "receiver says hi").await;
    let test = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(test[0].headers["authorization"], "Bearer receiver-secret");

    // Post events; find their deliveries and attempts.
    let http = reqwest::Client::new();
    for i in 0..3 {
        let response = http
            .post(url("/v1/events"))
            .bearer_auth(INGEST)
            .json(&json!({"event": "PostRegister", "payload": {"user": {"id": format!("u{i}")}}}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
    receiver.wait_for(4, Duration::from_secs(20)).await;
    c.goto(&url("/console/deliveries?hook=signups&status=succeeded"))
        .await
        .unwrap();
    reload_until(c, "table.deliveries tbody tr:nth-child(3)", "succeeded").await;
    click(c, "table.deliveries tbody tr:first-child a").await;
    let attempt = see(c, "details.attempt", "Attempt 1").await;
    assert!(attempt.contains("200"), "{attempt}");
    assert!(attempt.contains("logto-signature-sha-256"), "{attempt}");
    assert!(
        attempt.contains("***") && !attempt.contains("receiver-secret"),
        "secret headers are masked: {attempt}"
    );
    assert!(
        attempt.contains("\"checked\": true"),
        "the snippet ran: {attempt}"
    );

    // Retry one: a second attempt is made and shown.
    click(c, "form[action$='/retry'] button").await;
    see(c, ".notice", "Queued").await;
    reload_until(c, "details.attempt:nth-of-type(2)", "Attempt").await;

    // A plugin a hook uses is not deleted, and the page says which hook.
    c.goto(&url("/console/plugins")).await.unwrap();
    click(c, "button[aria-label='Delete enrich']").await;
    c.accept_alert().await.unwrap();
    see(c, ".notice", "is used by hook(s) signups").await;

    // Replay the day: the job's progress page shows it done.
    c.goto(&url("/console/hooks/signups")).await.unwrap();
    click(c, "#replay-title + form button[type=submit]").await;
    // The page reloads itself while the job runs.
    see(c, "dd.replay-status", "done").await;
    see(c, "dd.replay-enqueued", "3").await;
    receiver.wait_for(8, Duration::from_secs(20)).await;

    // Rotate the keys: shown once, and they are the hook's new keys.
    c.goto(&url("/console/hooks/signups")).await.unwrap();
    click(c, "#keys-title + form button[type=submit]").await;
    c.accept_alert().await.unwrap();
    let shown = c
        .wait()
        .for_element(Locator::Css("#standard-key"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    let secrets = server
        .api(reqwest::Method::GET, "/v1/hooks/signups/secrets", None)
        .await;
    assert_eq!(
        secrets["spec"]["webhook"]["secrets"][0]["secret"],
        shown.as_str()
    );
    assert!(c
        .find(Locator::Css("button[data-copy=standard-key]"))
        .await
        .is_ok());

    // The hook's page charts its day.
    c.goto(&url("/console/hooks/signups")).await.unwrap();
    assert!(c
        .find(Locator::Css("svg.chart rect.ok[height]"))
        .await
        .is_ok());
    // The replayed attempts are logged just after their requests arrive.
    reload_until(c, "figure figcaption", "7 in all").await;
    let screenshot = c.screenshot().await.unwrap();
    save_screenshot("console.png", &screenshot);

    // A sync hook made in the form; the playground runs its trigger and
    // shows each hook's outcome.
    c.goto(&url("/console/hooks/new")).await.unwrap();
    fill(c, "#id", "no-example-org").await;
    click(c, "input[name=kind][value=sync]").await;
    // The webhook's fields give way to the trigger's.
    assert!(!c
        .find(Locator::Css("#url"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    fill(c, "#trigger", "PreRegistration").await;
    fill(c, "#order", "1").await;
    click(c, "button[data-step=add]").await;
    fill(
        c,
        "#step-0-snippet",
        "export default function (event, ctx) {\n  if (event.payload.user.primaryEmail.endsWith('@example.org')) \
         return ctx.deny('blocked_domain', 'example.org may not register');\n  \
         event.payload.user.name = 'Checked';\n  return event;\n}",
    )
    .await;
    click(c, "button[type=submit].primary").await;
    see(c, ".notice", "Hook saved").await;
    let sync = server
        .api(reqwest::Method::GET, "/v1/hooks/no-example-org", None)
        .await;
    assert_eq!(sync["spec"]["sync"]["trigger"], "PreRegistration", "{sync}");
    assert_eq!(sync["spec"]["sync"]["order"], 1);
    assert!(sync["spec"].get("webhook").is_none(), "{sync}");
    c.goto(&url("/console/playground")).await.unwrap();
    click(c, "button[type=submit].primary").await;
    see(c, ".decision", "allow").await;
    see(c, "pre.code", "Checked").await;
    fill(
        c,
        "#payload",
        "{\"user\": {\"primaryEmail\": \"eve@example.org\"}}",
    )
    .await;
    click(c, "button[type=submit].primary").await;
    see(c, ".decision", "deny").await;
    see(c, "table.hook-runs", "no-example-org").await;
    fill(c, "#payload", "[1, 2").await;
    click(c, "button[type=submit].primary").await;
    see(c, "#payload-error", "not JSON").await;

    // An inbound source: a Logto webhook signed with its key becomes an event.
    c.goto(&url("/console/sources")).await.unwrap();
    fill(c, "#source-id", "logto").await;
    click(c, "#source-title + form button[type=submit]").await;
    see(c, ".error-summary", "signing_key").await;
    fill(c, "#source-id", "logto").await;
    fill(c, "#source-key", "logto-signing-key-1234").await;
    click(c, "#source-title + form button[type=submit]").await;
    see(c, ".notice", "Source logto saved").await;
    let listed = see(c, "table", "/v1/inbound/logto").await;
    assert!(
        !listed.contains("logto-signing-key-1234"),
        "the key is masked: {listed}"
    );
    assert!(listed.contains("…1234"), "{listed}");
    let body = json!({"event": "PostRegister", "user": {"id": "from-logto"}}).to_string();
    let signature = {
        use hmac::Mac;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(b"logto-signing-key-1234").unwrap();
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let inbound = reqwest::Client::new()
        .post(url("/v1/inbound/logto"))
        .header("content-type", "application/json")
        .header("logto-signature-sha-256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(inbound.status(), StatusCode::ACCEPTED);
    let seen = receiver.wait_for(9, Duration::from_secs(20)).await;
    assert!(seen
        .iter()
        .any(|s| String::from_utf8_lossy(&s.body).contains("from-logto")));

    // Register a custom event type.
    c.goto(&url("/console/event-types")).await.unwrap();
    fill(c, "#event-name", "Invoice.Paid\n").await;
    see(c, ".notice", "Invoice.Paid").await;
    see(c, "#event-catalogue", "Invoice.Paid").await;

    // A phone's width: nothing runs off the side.
    c.set_window_size(390, 844).await.unwrap();
    for path in [
        "/console/hooks",
        "/console/hooks/signups",
        "/console/deliveries",
        "/console/hooks/new",
        "/console/sources",
        "/console/plugins",
    ] {
        c.goto(&url(path)).await.unwrap();
        // The elements that reach past the right edge, outermost first.
        let wide = c
            .execute(
                "return [...document.body.querySelectorAll('*')]
                   .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                             && !e.closest('pre, .checks'))
                   .map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`);",
                vec![],
            )
            .await
            .unwrap();
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{path} overflows by {overflow}px: {wide}"
        );
    }
    save_screenshot("console-phone.png", &c.screenshot().await.unwrap());

    // Sign out: the console is closed again.
    click(c, ".sign-out button").await;
    arrive(c, "/sign-in").await;
    c.goto(&url("/console/hooks")).await.unwrap();
    arrive(c, "/sign-in").await;
    browser.close().await;
}

/// Keep a screenshot under the target directory; with
/// `WASMHOOKS_UPDATE_SCREENSHOTS` set, also as the README's in `docs/`.
fn save_screenshot(name: &str, png: &[u8]) {
    let dir = wasmhooks_testkit::target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
    if std::env::var_os("WASMHOOKS_UPDATE_SCREENSHOTS").is_some() {
        let docs = wasmhooks_testkit::workspace_root().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(name), png).unwrap();
    }
}
