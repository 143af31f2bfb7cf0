//! `wasmhooks plugin new`: a ready plugin project in Rust, JavaScript or
//! Python. Each has its source, a build command that fetches its toolchain
//! from the language's registry (cargo, npm, PyPI), a sample event and a
//! README with the commands to build, run and upload it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

/// A plugin's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Lang {
    /// Rust, with the `wasmhooks-sdk` crate.
    Rust,
    /// JavaScript, with `wasmhooks.js`, built by componentize-js.
    Js,
    /// Python, with `wasmhooks_sdk.py`, built by componentize-py.
    Python,
}

#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// Name of the plugin, e.g. `add-tenant`.
    name: String,
    /// Its language.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// Directory to create the project in (default: `./<name>`).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rust: path to the wasmhooks-sdk crate, for a dependency by path
    /// (default: the SDK this binary was built from, when it is still
    /// there, otherwise the published crate).
    #[arg(long)]
    sdk_path: Option<PathBuf>,
}

/// A project just written.
pub(crate) struct Project {
    /// Where it is.
    pub(crate) dir: PathBuf,
    /// The command that builds it, run in `dir`.
    pub(crate) build: &'static str,
    /// The component the build writes, relative to `dir`.
    pub(crate) wasm: String,
}

/// The contract every project builds against: `plugin-sdk/wit`.
const WIT: [(&str, &str); 8] = [
    (
        "wit/hook.wit",
        include_str!("../../../plugin-sdk/wit/hook.wit"),
    ),
    (
        "wit/deps/cli/cli.wit",
        include_str!("../../../plugin-sdk/wit/deps/cli/cli.wit"),
    ),
    (
        "wit/deps/clocks/clocks.wit",
        include_str!("../../../plugin-sdk/wit/deps/clocks/clocks.wit"),
    ),
    (
        "wit/deps/filesystem/filesystem.wit",
        include_str!("../../../plugin-sdk/wit/deps/filesystem/filesystem.wit"),
    ),
    (
        "wit/deps/http/http.wit",
        include_str!("../../../plugin-sdk/wit/deps/http/http.wit"),
    ),
    (
        "wit/deps/io/io.wit",
        include_str!("../../../plugin-sdk/wit/deps/io/io.wit"),
    ),
    (
        "wit/deps/random/random.wit",
        include_str!("../../../plugin-sdk/wit/deps/random/random.wit"),
    ),
    (
        "wit/deps/sockets/sockets.wit",
        include_str!("../../../plugin-sdk/wit/deps/sockets/sockets.wit"),
    ),
];

/// Write a new plugin project and say how to build it.
pub(crate) fn scaffold(args: &NewArgs) -> anyhow::Result<Project> {
    let name = &args.name;
    let valid = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!("`{name}` is not a valid plugin name: use lower-case letters, digits, `-` and `_`, starting with a letter");
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("`{}` already exists and is not empty", dir.display());
    }
    let fill = |text: &str| text.replace("{name}", name);
    let (mut files, build, wasm): (Vec<(&str, String)>, _, _) = match args.lang {
        Lang::Rust => {
            let sdk = sdk_dependency(args.sdk_path.as_deref())?;
            let wasm = format!(
                "target/wasm32-wasip2/release/{}.wasm",
                name.replace('-', "_")
            );
            (
                vec![
                    ("Cargo.toml", fill(rust::CARGO_TOML).replace("{sdk}", &sdk)),
                    ("src/lib.rs", fill(rust::LIB_RS)),
                    ("README.md", fill(rust::README)),
                    (".gitignore", "/target\n".to_string()),
                ],
                "cargo build --release --target wasm32-wasip2",
                wasm,
            )
        }
        Lang::Js => (
            vec![
                ("app.js", fill(js::APP_JS)),
                (
                    "wasmhooks.js",
                    include_str!("../../../plugin-sdk/js/wasmhooks.js").to_string(),
                ),
                (
                    "wasmhooks.d.ts",
                    include_str!("../../../plugin-sdk/js/wasmhooks.d.ts").to_string(),
                ),
                ("package.json", fill(js::PACKAGE_JSON)),
                ("README.md", fill(js::README)),
                (".gitignore", "/node_modules\n/plugin.wasm\n".to_string()),
            ],
            "npm install && npm run build",
            "plugin.wasm".to_string(),
        ),
        Lang::Python => (
            vec![
                ("app.py", fill(python::APP_PY)),
                (
                    "wasmhooks_sdk.py",
                    include_str!("../../../plugin-sdk/python/wasmhooks_sdk.py").to_string(),
                ),
                ("build.sh", python::BUILD_SH.to_string()),
                ("README.md", fill(python::README)),
                (
                    ".gitignore",
                    "/.venv\n/plugin.wasm\n__pycache__/\n".to_string(),
                ),
            ],
            "sh build.sh",
            "plugin.wasm".to_string(),
        ),
    };
    for (path, text) in files.iter_mut() {
        if *path == "README.md" {
            *text = text.replace("{wasm}", &wasm);
        }
    }
    files.push(("event.json", EVENT_JSON.to_string()));
    if args.lang != Lang::Rust {
        files.extend(WIT.iter().map(|(path, text)| (*path, text.to_string())));
    }
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Project { dir, build, wasm })
}

/// The `wasmhooks-sdk = ...` dependency line for a new Rust plugin.
fn sdk_dependency(explicit: Option<&Path>) -> anyhow::Result<String> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => built_from.join("Cargo.toml").exists().then_some(built_from),
    };
    Ok(match path {
        Some(p) => {
            let p = p
                .canonicalize()
                .with_context(|| format!("SDK path `{}`", p.display()))?;
            format!("{{ path = {:?} }}", p.display().to_string())
        }
        None => format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    })
}

/// The sample event every project starts with.
const EVENT_JSON: &str = r#"{
  "event": "PostSignIn",
  "payload": {
    "event": "PostSignIn",
    "interactionEvent": "SignIn",
    "sessionId": "sess_123",
    "userId": "u_123",
    "user": { "id": "u_123", "primaryEmail": "ada@example.com" },
    "userIp": "203.0.113.7",
    "userAgent": "Mozilla/5.0"
  }
}
"#;

/// The upload step every README ends with.
macro_rules! upload {
    () => {
        "Upload it to a running server, then use it as a step of a hook (`{\"plugin\": \"{name}\"}`):

    curl -X POST -H \"Authorization: Bearer $ADMIN\" -H 'content-type: application/wasm' \\
        --data-binary @{wasm} 'http://127.0.0.1:8787/v1/plugins?name={name}'
"
    };
}

/// The files of a new Rust plugin.
mod rust {
    pub(super) const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
wasmhooks-sdk = {sdk}

[profile.release]
opt-level = "s"
lto = true
strip = true

# A plugin is a crate of its own, not part of any enclosing workspace.
[workspace]
"#;

    pub(super) const LIB_RS: &str = r#"//! {name}: a wasmhooks plugin.
//!
//! Adds `tenant` (from the hook's config) and `handledBy` to every payload.
//! In a synchronous trigger it allows the flow, merging the same fields in.

use wasmhooks_sdk::{config, export_hook, json, log, Error, Event, Hook, Outcome};

struct Plugin;

impl Hook for Plugin {
    fn handle(mut event: Event) -> Result<Outcome, Error> {
        let tenant = config::get("tenant").unwrap_or_else(|| "default".into());
        log::info(&format!("{} for tenant {tenant}", event.name));
        if event.is_sync() {
            return Ok(Outcome::allow_merge(json!({ "tenant": tenant })));
        }
        event.payload["tenant"] = tenant.into();
        event.payload["handledBy"] = "{name}".into();
        Ok(Outcome::payload(event.payload))
    }
}

export_hook!(Plugin);
"#;

    pub(super) const README: &str = concat!(
        r#"# {name}

A wasmhooks plugin.

    cargo build --release --target wasm32-wasip2
    wasmhooks plugin run {wasm} --event event.json --config tenant=acme

(`rustup target add wasm32-wasip2` once, if the target is missing.)

"#,
        upload!()
    );
}

/// The files of a new JavaScript plugin.
mod js {
    pub(super) const APP_JS: &str = r#"// {name}: a wasmhooks plugin.
//
// Adds `tenant` (from the hook's config) and `handledBy` to every payload.
// In a synchronous trigger it allows the flow, merging the same fields in.

import { hook, Outcome, config, log } from './wasmhooks.js';

export const handler = hook((event) => {
  const tenant = config.get('tenant') ?? 'default';
  log.info(`${event.name} for tenant ${tenant}`);
  if (event.isSync()) return Outcome.allow({ tenant });
  event.payload.tenant = tenant;
  event.payload.handledBy = '{name}';
  return Outcome.payload(event.payload);
});
"#;

    pub(super) const PACKAGE_JSON: &str = r#"{
  "name": "{name}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "scripts": {
    "build": "componentize-js app.js --wit wit --world-name hook --disable http fetch-event -o plugin.wasm"
  },
  "devDependencies": {
    "@bytecodealliance/componentize-js": "0.23.0"
  }
}
"#;

    pub(super) const README: &str = concat!(
        r#"# {name}

A wasmhooks plugin in JavaScript. `wasmhooks.js` is the SDK (types in
`wasmhooks.d.ts`); `wit/` is the contract it builds against.

    npm install && npm run build
    wasmhooks plugin run plugin.wasm --event event.json --config tenant=acme

"#,
        upload!()
    );
}

/// The files of a new Python plugin.
mod python {
    pub(super) const APP_PY: &str = r#""""{name}: a wasmhooks plugin.

Adds `tenant` (from the hook's config) and `handledBy` to every payload. In a
synchronous trigger it allows the flow, merging the same fields in.
"""

import wasmhooks_sdk as wh


def handle(event: wh.Event) -> wh.RawOutcome:
    tenant = wh.config.get("tenant") or "default"
    wh.log.info(f"{event.name} for tenant {tenant}")
    if event.is_sync():
        return wh.Outcome.allow({"tenant": tenant})
    event.payload["tenant"] = tenant
    event.payload["handledBy"] = "{name}"
    return wh.Outcome.payload(event.payload)


Handler = wh.hook(handle)
"#;

    pub(super) const BUILD_SH: &str = r#"#!/bin/sh
# Build plugin.wasm with componentize-py, installed from PyPI into .venv.
set -eu
cd "$(dirname "$0")"
if [ ! -x .venv/bin/componentize-py ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check componentize-py==0.25.1
fi
.venv/bin/componentize-py -d wit -w hook componentize app -o plugin.wasm
"#;

    pub(super) const README: &str = concat!(
        r#"# {name}

A wasmhooks plugin in Python. `wasmhooks_sdk.py` is the SDK (type hinted);
`wit/` is the contract it builds against.

    sh build.sh
    wasmhooks plugin run plugin.wasm --event event.json --config tenant=acme

"#,
        upload!()
    );
}
