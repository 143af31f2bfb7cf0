//! Build the workspace's plugins to `wasm32-wasip2` with cargo, installing
//! the target through rustup when it is missing. The host's build script
//! uses it for the built-in JavaScript engine, the tests for every plugin;
//! both build into the same directory, so each plugin is built once.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The wasm target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Install the wasm target when rustup lacks it.
pub fn ensure_wasm_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(TARGET))
        .unwrap_or(false);
    if installed {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|e| format!("running rustup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("rustup target add {TARGET} failed"))
    }
}

/// Where plugins are built: `wasm/` inside the cargo target directory
/// `target_dir`.
pub fn wasm_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("wasm")
}

/// Build `packages` of the workspace at `root` in release mode into
/// `wasm_dir`, returning the directory holding the `.wasm` files.
pub fn build(root: &Path, wasm_dir: &Path, packages: &[&str]) -> Result<PathBuf, String> {
    ensure_wasm_target()?;
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(root)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(wasm_dir);
    // What a surrounding cargo sets for its own build must not leak into
    // this one (flags for the host, clippy as the compiler, a jobserver).
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "CARGO_TARGET_DIR",
    ] {
        cargo.env_remove(var);
    }
    for package in packages {
        cargo.args(["-p", package]);
    }
    let status = cargo
        .status()
        .map_err(|e| format!("running cargo to build the plugins: {e}"))?;
    if !status.success() {
        return Err(format!("building {packages:?} to {TARGET} failed"));
    }
    Ok(wasm_dir.join(TARGET).join("release"))
}
