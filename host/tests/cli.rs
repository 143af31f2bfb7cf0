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

/// `wasmhooks plugin run <wasm> --event <event> <extra...>`.
fn plugin_run(wasm: &Path, event: &str, extra: &[&str], stdin: Option<&str>) -> Output {
    let mut args = vec!["plugin", "run", wasm.to_str().unwrap(), "--event", event];
    args.extend_from_slice(extra);
    wasmhooks(&args, stdin)
}

/// Assert the command succeeded and return what it printed.
fn succeeded(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout_json(output)
}

#[test]
fn plugin_run_prints_the_outcome_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let event = write_event(
        dir.path(),
        r#"{"event": "PostSignIn", "payload": {"userId": "u1", "userIp": "203.0.113.7"}}"#,
    );
    let printed = succeeded(&plugin_run(
        &plugin("enrich"),
        &event,
        &["--config", "tenant=acme"],
        None,
    ));
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
    let signed_in = events.join("post-sign-in.json");
    let printed = succeeded(&plugin_run(
        &plugin("enrich"),
        signed_in.to_str().unwrap(),
        &["--config", "tenant=acme"],
        None,
    ));
    assert_eq!(printed["payload"]["tenant"], "acme");

    let registration = events.join("pre-registration.json");
    let printed = succeeded(&plugin_run(
        &plugin("block-disposable-email"),
        registration.to_str().unwrap(),
        &["--trigger", "pre-registration"],
        None,
    ));
    assert_eq!(printed["outcome"], "deny");

    let snippets = wasmhooks_testkit::workspace_root().join("examples/snippets");
    let snippet_run = |file: &str, event: &Path, extra: &[&str]| {
        let (file, event) = (snippets.join(file), event.to_str().unwrap().to_string());
        let cache = wasmhooks_testkit::shared_cache_dir().display().to_string();
        let mut args = vec!["snippet", "run", file.to_str().unwrap(), "--event", &event];
        args.extend_from_slice(&["--cache-dir", &cache, "--timeout-ms", "10000"]);
        args.extend_from_slice(extra);
        succeeded(&wasmhooks(&args, None))
    };
    let tagged = snippet_run("tag-tenant.js", &signed_in, &["--config", "tenant=acme"]);
    assert_eq!(tagged["payload"]["user"]["tenant"], "acme");
    assert_eq!(tagged["headers"], serde_json::json!([["x-tenant", "acme"]]));
    assert_eq!(tagged["logs"][0]["message"], "delivering u_8a7d6c5b4a39");
    let refused = snippet_run(
        "block-domains.js",
        &registration,
        &["--sync", "--config", "blocked=spam.example, mailinator.com"],
    );
    assert_eq!(
        (refused["outcome"].as_str(), refused["code"].as_str()),
        (Some("deny"), Some("domain_blocked"))
    );
    let allowed = snippet_run(
        "block-domains.js",
        &registration,
        &["--sync", "--config", "blocked=spam.example"],
    );
    // The changed payload; a sync trigger turns it into the patch.
    assert_eq!(allowed["outcome"], "continue", "{allowed}");
    assert_eq!(allowed["payload"]["customData"]["plan"], "free");
}

#[test]
fn plugin_run_reads_a_logto_body_from_stdin_and_answers_sync() {
    let body = r#"{"event": "PostRegister", "hookId": "h1", "email": "x@mailinator.com"}"#;
    let printed = succeeded(&plugin_run(
        &plugin("block-disposable-email"),
        "-",
        &["--sync"],
        Some(body),
    ));
    assert_eq!(printed["outcome"], "deny");
    assert_eq!(printed["code"], "disposable_email");
}

/// Assert the command failed and that stderr says `expected`.
fn failed_saying(output: &Output, expected: &str) {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(expected),
        "stderr lacks `{expected}`: {stderr}"
    );
}

#[test]
fn plugin_run_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let event = write_event(dir.path(), r#"{"event": "PostSignIn", "payload": {}}"#);
    let hostile = plugin("hostile");

    let looped = plugin_run(
        &hostile,
        &event,
        &["--config", "mode=loop", "--timeout-ms", "100"],
        None,
    );
    failed_saying(&looped, "deadline");
    assert_eq!(stdout_json(&looped)["kind"], "deadline_exceeded");

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"junk").unwrap();
    failed_saying(
        &plugin_run(&junk, &event, &[], None),
        "not a valid WebAssembly component",
    );

    let no_name = write_event(dir.path(), r#"{"payload": {}}"#);
    failed_saying(
        &plugin_run(&hostile, &no_name, &[], None),
        "no string field `event`",
    );
    failed_saying(
        &plugin_run(&hostile, &event, &["--config", "novalue"], None),
        "is not KEY=VALUE",
    );
}

#[test]
fn plugin_new_scaffolds_a_crate_that_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("add-tenant");
    let crate_path = crate_dir.to_str().unwrap();
    let created = wasmhooks(&["plugin", "new", "add-tenant", "--dir", crate_path], None);
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
    let printed = succeeded(&plugin_run(
        &wasm,
        event.to_str().unwrap(),
        &["--config", "tenant=acme"],
        None,
    ));
    assert_eq!(printed["payload"]["tenant"], "acme");
    assert_eq!(printed["payload"]["handledBy"], "add-tenant");
    assert_eq!(printed["logs"][0]["message"], "PostSignIn for tenant acme");

    failed_saying(
        &wasmhooks(&["plugin", "new", "add-tenant", "--dir", crate_path], None),
        "already exists",
    );
    let elsewhere = dir.path().join("x");
    failed_saying(
        &wasmhooks(
            &[
                "plugin",
                "new",
                "Bad Name",
                "--dir",
                elsewhere.to_str().unwrap(),
            ],
            None,
        ),
        "not a valid plugin name",
    );
}

#[test]
fn snippet_run_prints_the_outcome_and_fails_on_exceptions() {
    let dir = tempfile::tempdir().unwrap();
    let event = write_event(
        dir.path(),
        r#"{"event": "PostSignIn", "payload": {"user": {"primaryEmail": "ada@example.com"}}}"#,
    );
    let cache = wasmhooks_testkit::shared_cache_dir().display().to_string();
    let snippet = dir.path().join("tenant.js");
    std::fs::write(
        &snippet,
        "export default function (event, ctx) {\n  console.log(`tenant ${ctx.config.tenant}`);\n  event.payload.tenant = ctx.config.tenant;\n  return event;\n}\n",
    )
    .unwrap();
    let snippet = snippet.display().to_string();
    let args = [
        "snippet",
        "run",
        &snippet,
        "--event",
        &event,
        "--config",
        "tenant=acme",
        "--cache-dir",
        &cache,
        "--timeout-ms",
        "10000",
    ];
    let output = wasmhooks(&args, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = stdout_json(&output);
    assert_eq!(printed["outcome"], "continue");
    assert_eq!(printed["payload"]["tenant"], "acme");
    assert_eq!(printed["logs"][0]["message"], "tenant acme");

    std::fs::write(
        dir.path().join("deny.js"),
        "export default (e, ctx) => ctx.deny(\"closed\", \"Sign-ups are closed.\")",
    )
    .unwrap();
    let deny = dir.path().join("deny.js").display().to_string();
    let output = wasmhooks(
        &[
            "snippet",
            "run",
            &deny,
            "--event",
            &event,
            "--sync",
            "--cache-dir",
            &cache,
            "--timeout-ms",
            "10000",
        ],
        None,
    );
    let printed = stdout_json(&output);
    assert_eq!(
        (printed["outcome"].as_str(), printed["code"].as_str()),
        (Some("deny"), Some("closed"))
    );

    std::fs::write(
        dir.path().join("throw.js"),
        "export default () => {\n  throw new Error(\"nope\");\n}",
    )
    .unwrap();
    let throws = dir.path().join("throw.js").display().to_string();
    let output = wasmhooks(
        &[
            "snippet",
            "run",
            &throws,
            "--event",
            &event,
            "--cache-dir",
            &cache,
            "--timeout-ms",
            "10000",
        ],
        None,
    );
    assert!(!output.status.success());
    let printed = stdout_json(&output);
    let message = printed["message"].as_str().unwrap();
    assert!(
        message.contains("Error: nope") && message.contains("snippet.js:2:"),
        "{message}"
    );
}

/// `plugin new --lang js` and `--lang python` write projects whose own
/// build command (npm, and a script installing componentize-py from PyPI)
/// builds a plugin that runs. Needs npm and python3; CI always has both.
#[test]
fn plugin_new_scaffolds_javascript_and_python_projects_that_build_and_run() {
    for (lang, tool, build) in [
        (
            "js",
            "npm",
            "npm install --silent --no-audit --no-fund && npm run build --silent",
        ),
        ("python", "python3", "sh build.sh"),
    ] {
        if !wasmhooks_testkit::tools::present(tool) {
            wasmhooks_testkit::tools::skip_without(&format!("{tool}, to build a {lang} plugin"));
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("add-tenant");
        let project_path = project.to_str().unwrap();
        let printed = wasmhooks(
            &[
                "plugin",
                "new",
                "add-tenant",
                "--lang",
                lang,
                "--dir",
                project_path,
            ],
            None,
        );
        assert!(
            printed.status.success(),
            "{}",
            String::from_utf8_lossy(&printed.stderr)
        );
        let said = String::from_utf8_lossy(&printed.stdout);
        assert!(said.contains(build.split(" --").next().unwrap()), "{said}");
        for file in ["README.md", "event.json", "wit/hook.wit"] {
            assert!(project.join(file).exists(), "{lang}: {file}");
        }
        let status = Command::new("sh")
            .args(["-c", build])
            .current_dir(&project)
            .status()
            .unwrap();
        assert!(status.success(), "the scaffolded {lang} plugin must build");
        let event = project.join("event.json");
        let cache = wasmhooks_testkit::shared_cache_dir();
        let wasm = project.join("plugin.wasm");
        let run = |extra: &[&str]| {
            let mut args = vec!["--config", "tenant=acme", "--timeout-ms", "10000"];
            args.extend([
                "--memory-mib",
                "256",
                "--cache-dir",
                cache.to_str().unwrap(),
            ]);
            args.extend(extra);
            succeeded(&plugin_run(&wasm, event.to_str().unwrap(), &args, None))
        };
        let outcome = run(&[]);
        assert_eq!(outcome["payload"]["tenant"], "acme", "{lang}");
        assert_eq!(outcome["payload"]["handledBy"], "add-tenant", "{lang}");
        assert_eq!(
            outcome["logs"][0]["message"], "PostSignIn for tenant acme",
            "{lang}"
        );
        let sync = run(&["--sync"]);
        assert_eq!(sync["outcome"], "allow", "{lang}: {sync}");
    }
}
