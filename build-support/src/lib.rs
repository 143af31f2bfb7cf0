//! Build the workspace's plugins to `wasm32-wasip2` with cargo, installing
//! the target through rustup when it is missing. The host's build script
//! uses it for the built-in JavaScript engine, the tests for every plugin;
//! both build into the same directory, so each plugin is built once.
//!
//! The JavaScript engine is QuickJS, written in C, so the build also needs
//! clang and llvm-ar; Debian's packages are installed with apt-get when they
//! are missing and the build runs as root.

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

/// Debian packages that give clang and llvm-ar.
const C_PACKAGES: [&str; 2] = ["clang", "llvm"];

/// The first of `names` that runs (`<name> --version` succeeds).
fn first_runnable(names: impl IntoIterator<Item = String>) -> Option<String> {
    names.into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// A clang and a matching llvm-ar, newest first.
fn find_c_tools() -> Option<(String, String)> {
    let suffixes = (14..=21)
        .rev()
        .map(|v| format!("-{v}"))
        .chain([String::new()]);
    suffixes.into_iter().find_map(|suffix| {
        let clang = first_runnable([format!("clang{suffix}")])?;
        let ar = first_runnable([format!("llvm-ar{suffix}"), "llvm-ar".into()])?;
        Some((clang, ar))
    })
}

/// Install the C toolchain through apt-get, when running as root.
fn install_c_tools() -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let missing = format!(
        "building QuickJS for wasm needs clang and llvm-ar: install the Debian packages {}",
        C_PACKAGES.join(" ")
    );
    if !root {
        return Err(missing);
    }
    let apt_get = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = [
        &["install", "-y", "-q", "--no-install-recommends"][..],
        &C_PACKAGES,
    ]
    .concat();
    if apt_get(&install) || (apt_get(&["update", "-q"]) && apt_get(&install)) {
        Ok(())
    } else {
        Err(format!("{missing} (apt-get install failed)"))
    }
}

/// The compiler and archiver for the QuickJS build (rquickjs-sys, through
/// the cc crate). Its flags, and the switch that stops it downloading a
/// wasi-sdk, are in the workspace's `.cargo/config.toml`.
fn c_toolchain_env() -> Result<[(String, String); 2], String> {
    let (clang, ar) = match find_c_tools() {
        Some(tools) => tools,
        None => {
            install_c_tools()?;
            find_c_tools().ok_or("clang or llvm-ar is still missing after installing them")?
        }
    };
    let target = TARGET.replace('-', "_");
    Ok([
        (format!("CC_{target}"), clang),
        (format!("AR_{target}"), ar),
    ])
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
        .envs(c_toolchain_env()?)
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
