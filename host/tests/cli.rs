//! The real `wasmhooks` binary: `plugin run` and `plugin new`, as a plugin
//! author uses them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use wasmhooks_testkit::{plugin, wasm_target_dir};

fn wasmhooks(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhooks"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wasmhooks");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn write_event(dir: &Path, body: &str) -> String {
    let path = dir.join("event.json");
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn plugin_run_prints_the_outcome_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let event = write_event(
        dir.path(),
        r#"{"event": "PostSignIn", "payload": {"userId": "u1", "userIp": "203.0.113.7"}}"#,
    );
    let enrich = plugin("enrich");
    let output = wasmhooks(
        &[
            "plugin",
            "run",
            enrich.to_str().unwrap(),
            "--event",
            &event,
            "--config",
            "tenant=acme",
        ],
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = stdout_json(&output);
    assert_eq!(printed["outcome"], "continue");
    assert_eq!(
        printed["payload"],
        serde_json::json!({"userId": "u1", "userIp": "203.0.113.7", "tenant": "acme"})
    );
    assert!(printed["duration_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn readme_examples_run() {
    let events = wasmhooks_testkit::workspace_root().join("examples/events");
    let enrich = plugin("enrich");
    let signed_in = events.join("post-sign-in.json");
    let output = wasmhooks(
        &[
            "plugin",
            "run",
            enrich.to_str().unwrap(),
            "--event",
            signed_in.to_str().unwrap(),
            "--config",
            "tenant=acme",
        ],
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout_json(&output)["payload"]["tenant"], "acme");

    let blocker = plugin("block-disposable-email");
    let registration = events.join("pre-registration.json");
    let output = wasmhooks(
        &[
            "plugin",
            "run",
            blocker.to_str().unwrap(),
            "--event",
            registration.to_str().unwrap(),
            "--trigger",
            "pre-registration",
        ],
        None,
    );
    assert_eq!(stdout_json(&output)["outcome"], "deny");
}

#[test]
fn plugin_run_reads_a_logto_body_from_stdin_and_answers_sync() {
    let blocker = plugin("block-disposable-email");
    let body = r#"{"event": "PostRegister", "hookId": "h1", "email": "x@mailinator.com"}"#;
    let output = wasmhooks(
        &[
            "plugin",
            "run",
            blocker.to_str().unwrap(),
            "--event",
            "-",
            "--sync",
        ],
        Some(body),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = stdout_json(&output);
    assert_eq!(printed["outcome"], "deny");
    assert_eq!(printed["code"], "disposable_email");
}

#[test]
fn plugin_run_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let event = write_event(dir.path(), r#"{"event": "PostSignIn", "payload": {}}"#);
    let hostile = plugin("hostile");

    let looped = wasmhooks(
        &[
            "plugin",
            "run",
            hostile.to_str().unwrap(),
            "--event",
            &event,
            "--config",
            "mode=loop",
            "--timeout-ms",
            "100",
        ],
        None,
    );
    assert!(!looped.status.success());
    assert_eq!(stdout_json(&looped)["kind"], "deadline_exceeded");
    assert!(String::from_utf8_lossy(&looped.stderr).contains("deadline"));

    let not_wasm = dir.path().join("junk.wasm");
    std::fs::write(&not_wasm, b"junk").unwrap();
    let junk = wasmhooks(
        &[
            "plugin",
            "run",
            not_wasm.to_str().unwrap(),
            "--event",
            &event,
        ],
        None,
    );
    assert!(!junk.status.success());
    let stderr = String::from_utf8_lossy(&junk.stderr);
    assert!(
        stderr.contains("not a valid WebAssembly component"),
        "{stderr}"
    );

    let no_name = write_event(dir.path(), r#"{"payload": {}}"#);
    let missing = wasmhooks(
        &[
            "plugin",
            "run",
            hostile.to_str().unwrap(),
            "--event",
            &no_name,
        ],
        None,
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no string field `event`"));

    let bad_config = wasmhooks(
        &[
            "plugin",
            "run",
            hostile.to_str().unwrap(),
            "--event",
            &event,
            "--config",
            "novalue",
        ],
        None,
    );
    assert!(!bad_config.status.success());
    assert!(String::from_utf8_lossy(&bad_config.stderr).contains("is not KEY=VALUE"));
}

#[test]
fn plugin_new_scaffolds_a_crate_that_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("add-tenant");
    let created = wasmhooks(
        &[
            "plugin",
            "new",
            "add-tenant",
            "--dir",
            crate_dir.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    wasmhooks_testkit::ensure_wasm_target();
    // Share compiled dependencies with the workspace's plugin builds.
    let target_dir = wasm_target_dir();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&crate_dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .unwrap();
    assert!(status.success(), "the scaffolded plugin must build");

    let wasm = target_dir.join("wasm32-wasip2/release/add_tenant.wasm");
    let event = crate_dir.join("event.json");
    let output = wasmhooks(
        &[
            "plugin",
            "run",
            wasm.to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
            "--config",
            "tenant=acme",
        ],
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = stdout_json(&output);
    assert_eq!(printed["payload"]["tenant"], "acme");
    assert_eq!(printed["payload"]["handledBy"], "add-tenant");
    assert_eq!(printed["logs"][0]["message"], "PostSignIn for tenant acme");

    let again = wasmhooks(
        &[
            "plugin",
            "new",
            "add-tenant",
            "--dir",
            crate_dir.to_str().unwrap(),
        ],
        None,
    );
    assert!(!again.status.success(), "refuses to overwrite");
    let bad = wasmhooks(
        &[
            "plugin",
            "new",
            "Bad Name",
            "--dir",
            dir.path().join("x").to_str().unwrap(),
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid crate name"));
}
