//! Plugins in three languages: the example plugins `enrich`,
//! `block-disposable-email` and `geo-lookup`, written in Rust (`plugins/`),
//! JavaScript (`plugins-js/`) and Python (`plugins-py/`) on each language's
//! SDK, built with their real toolchains and run with `wasmhooks plugin
//! run`, give the same outcomes and log lines on the same events. JavaScript needs npm and Python needs
//! python3; CI always has both.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use wasmhooks_testkit::{plugin, polyglot, shared_cache_dir, workspace_root};

/// A plugin `name` in each language that can be built here.
fn builds(name: &str) -> Vec<(&'static str, PathBuf)> {
    let root = workspace_root();
    let mut built = vec![("rust", plugin(name))];
    let js = polyglot::build_js(&root.join("plugins-js").join(name));
    let python = polyglot::build_python(&root.join("plugins-py").join(name));
    for (language, wasm) in [("javascript", js), ("python", python)] {
        match wasm {
            Some(wasm) => built.push((language, wasm)),
            None => wasmhooks_testkit::tools::skip_without(&format!("the {language} toolchain")),
        }
    }
    built
}

/// What `plugin run` printed of the outcome: everything but timings and
/// cache state, with the payload parsed, and the logs' messages.
fn outcome(wasm: &Path, event: &Value, args: &[&str], dir: &Path) -> Value {
    let file = dir.join("event.json");
    std::fs::write(&file, event.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wasmhooks"))
        .args(["plugin", "run"])
        .arg(wasm)
        .arg("--event")
        .arg(&file)
        .args([
            "--timeout-ms",
            "10000",
            "--memory-mib",
            "256",
            "--cache-dir",
        ])
        .arg(shared_cache_dir())
        .args(args)
        .output()
        .unwrap();
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\n{}\n{}",
            wasm.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut kept = printed.as_object().unwrap().clone();
    for volatile in ["duration_ms", "compiled", "logs_truncated"] {
        kept.remove(volatile);
    }
    if let Some(Value::Array(lines)) = kept.remove("logs") {
        let messages = lines.iter().map(|l| l["message"].clone()).collect();
        kept.insert("logs".into(), Value::Array(messages));
    }
    for parsed in ["payload", "patch"] {
        if let Some(Value::String(text)) = kept.get(parsed) {
            let value = serde_json::from_str(text).unwrap_or(Value::String(text.clone()));
            kept.insert(parsed.to_string(), value);
        }
    }
    Value::Object(kept)
}

/// Each case's outcome is the same in every language built.
fn same_everywhere(name: &str, cases: &[(Value, Vec<&str>)]) {
    let dir = tempfile::tempdir().unwrap();
    let built = builds(name);
    for (event, args) in cases {
        let (first, rust) = (&built[0].0, outcome(&built[0].1, event, args, dir.path()));
        for (language, wasm) in &built[1..] {
            let other = outcome(wasm, event, args, dir.path());
            assert_eq!(
                other, rust,
                "{name} in {language} differs from {first} on {event} with {args:?}"
            );
        }
    }
}

fn sign_in() -> Value {
    json!({"event": "PostSignIn", "payload": {"event": "PostSignIn", "userId": "u_1",
        "user": {"id": "u_1", "primaryEmail": "ada@example.com"}, "meta": "flat"}})
}

fn registration(email: &str) -> Value {
    json!({"event": "PostRegister", "payload": {"event": "PostRegister",
        "user": {"id": "u_2", "primaryEmail": email}}})
}

#[test]
fn enrich_is_the_same_in_rust_javascript_and_python() {
    let config = vec![
        "--config",
        "tenant=acme",
        "--config",
        "meta.environment=production",
        "--config",
        "meta.shard=3",
        "--config",
        r#"flags={"beta":true}"#,
    ];
    let mut sync = config.clone();
    sync.push("--sync");
    same_everywhere(
        "enrich",
        &[(sign_in(), config), (sign_in(), sync), (sign_in(), vec![])],
    );
}

#[test]
fn block_disposable_email_is_the_same_in_rust_javascript_and_python() {
    let mut cases = Vec::new();
    for email in [
        "ada@example.com",
        "bot@Mailinator.COM",
        "x@eu.yopmail.com.",
        "y@throwaway.test",
        "no-at-sign",
    ] {
        cases.push((registration(email), vec!["--sync"]));
        cases.push((registration(email), vec![]));
        cases.push((
            registration(email),
            vec![
                "--sync",
                "--config",
                "domains=throwaway.test, other.test",
                "--config",
                "message=No throwaways, please.",
            ],
        ));
    }
    cases.push((
        json!({"event": "PostRegister", "payload": {"email": 7}}),
        vec!["--sync"],
    ));
    same_everywhere("block-disposable-email", &cases);
}

/// geo-lookup calls a granted HTTP API (a real receiver on 127.0.0.1) with
/// its secret as a bearer token; refused hosts and failing answers fail the
/// call alike in every language.
#[test]
fn geo_lookup_is_the_same_in_rust_javascript_and_python() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(wasmhooks_testkit::Receiver::start(
        axum::Router::new().route(
            "/geo",
            axum::routing::get(
                |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >,
                 headers: axum::http::HeaderMap| async move {
                    let auth = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_string());
                    if q.get("ip").is_some_and(|ip| ip == "0.0.0.0") {
                        return Err(axum::http::StatusCode::NOT_FOUND);
                    }
                    Ok(axum::Json(
                        json!({"ip": q.get("ip"), "country": "NZ", "auth": auth}),
                    ))
                },
            ),
        ),
    ));
    let url = format!("url={}", receiver.url("/geo?ip={ip}"));
    let granted = |extra: &[&'static str]| {
        let mut args = vec![
            "--config".to_string(),
            url.clone(),
            "--allow-host".into(),
            "127.0.0.1".into(),
            "--allow-network".into(),
            "127.0.0.1/32".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let sign_in_from =
        |ip: &str| json!({"event": "PostSignIn", "payload": {"event": "PostSignIn", "userIp": ip}});
    let cases = [
        (
            sign_in_from("203.0.113.7"),
            granted(&["--secret", "api-key=k3y"]),
        ),
        (
            sign_in_from("203.0.113.7"),
            granted(&["--config", "field=where.geo"]),
        ),
        (sign_in_from("0.0.0.0"), granted(&[])),
        (
            json!({"event": "PostSignIn", "payload": {"event": "PostSignIn"}}),
            granted(&[]),
        ),
        (
            sign_in_from("203.0.113.7"),
            vec!["--config".to_string(), url.clone()],
        ),
    ];
    let cases: Vec<(Value, Vec<&str>)> = cases
        .iter()
        .map(|(event, args)| (event.clone(), args.iter().map(String::as_str).collect()))
        .collect();
    same_everywhere("geo-lookup", &cases);
    drop(receiver);
}
