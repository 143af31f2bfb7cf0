//! Plugins in JavaScript and Python, built with their real toolchains: the
//! componentize-js compiler from the npm registry and componentize-py from
//! PyPI, each installed once under the cargo target directory. A plugin's
//! source sits beside the SDK of its language (`plugin-sdk/js`,
//! `plugin-sdk/python`) while it builds, against `plugin-sdk/wit`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::{install_dir, present, run};

/// componentize-js, pinned.
pub const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// componentize-py, pinned.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The `componentize-js` command, installed with npm on first use; `None`
/// when the machine has no npm.
pub fn componentize_js() -> Option<PathBuf> {
    if !present("npm") {
        return None;
    }
    let prefix = install_dir("npm", COMPONENTIZE_JS);
    let bin = prefix.join("node_modules/.bin/componentize-js");
    if !bin.exists() {
        std::fs::create_dir_all(&prefix).expect("create the npm prefix");
        run(
            Command::new("npm")
                .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
                .arg(&prefix)
                .arg(COMPONENTIZE_JS),
            &format!("npm install {COMPONENTIZE_JS}"),
        );
    }
    Some(bin)
}

/// Where a build of `inputs` with `toolchain` is kept: the same sources
/// build once.
fn built_path(toolchain: &str, inputs: &[PathBuf]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    toolchain.hash(&mut hasher);
    for input in inputs {
        std::fs::read(input)
            .unwrap_or_else(|e| panic!("{}: {e}", input.display()))
            .hash(&mut hasher);
    }
    let dir = crate::target_dir().join("polyglot");
    std::fs::create_dir_all(&dir).expect("create the build cache");
    dir.join(format!("{:016x}.wasm", hasher.finish()))
}

/// Build the JavaScript plugin whose `app.js` is in `source` (with
/// `plugin-sdk/js/wasmhooks.js` beside it); `None` without npm.
pub fn build_js(source: &Path) -> Option<PathBuf> {
    let compiler = componentize_js()?;
    let sdk = crate::workspace_root().join("plugin-sdk/js/wasmhooks.js");
    let out = built_path(COMPONENTIZE_JS, &[source.join("app.js"), sdk.clone()]);
    if out.exists() {
        return Some(out);
    }
    let stage = tempfile::tempdir().expect("a build directory");
    std::fs::copy(source.join("app.js"), stage.path().join("app.js")).expect("copy app.js");
    std::fs::copy(sdk, stage.path().join("wasmhooks.js")).expect("copy the SDK");
    // componentize-js reads modules relative to the directory it runs in.
    run(
        Command::new(compiler)
            .current_dir(stage.path())
            .arg("app.js")
            .arg("--wit")
            .arg(crate::workspace_root().join("plugin-sdk/wit"))
            .args([
                "--world-name",
                "hook",
                "--disable",
                "http",
                "fetch-event",
                "-o",
            ])
            .arg(&out),
        &format!("componentize-js {}", source.display()),
    );
    Some(out)
}

/// Build the Python plugin whose `app.py` is in `source`; `None` without
/// python3.
pub fn build_python(source: &Path) -> Option<PathBuf> {
    let compiler = crate::python::tool(COMPONENTIZE_PY, "componentize-py")?;
    let root = crate::workspace_root();
    let sdk = root.join("plugin-sdk/python/wasmhooks_sdk.py");
    let out = built_path(COMPONENTIZE_PY, &[source.join("app.py"), sdk]);
    if out.exists() {
        return Some(out);
    }
    run(
        Command::new(compiler)
            .arg("-d")
            .arg(root.join("plugin-sdk/wit"))
            .args(["-w", "hook", "componentize", "-p"])
            .arg(source)
            .arg("-p")
            .arg(root.join("plugin-sdk/python"))
            .args(["app", "-o"])
            .arg(&out),
        &format!("componentize-py {}", source.display()),
    );
    Some(out)
}
