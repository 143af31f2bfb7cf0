//! Test support shared by the workspace's tests.
//!
//! - [`plugin`]: the path of an example or fixture plugin, built to
//!   `wasm32-wasip2` from `plugins/` on first use (installing the target if
//!   it is missing), so `cargo test` needs no other step.
//! - [`Receiver`]: a real HTTP server on 127.0.0.1 with the handler a test
//!   gives it.
//! - [`script::Script`]: a receiver that records requests and answers from a
//!   script.
//! - [`db`]: fresh SQLite files and PostgreSQL databases for store tests.
//! - [`python::tool`]: a command from PyPI, installed on first use.
//! - [`polyglot`]: JavaScript and Python plugins built with their toolchains.
//! - [`tools`]: whether an external tool is here, and running it.
//! - [`browser`]: headless Chromium driven over WebDriver.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub mod browser;
pub mod db;
pub mod polyglot;
pub mod python;
pub mod script;
pub mod serve;
pub mod tools;

/// The workspace root: the parent of the package whose test is running
/// (cargo names it in `CARGO_MANIFEST_DIR` when it runs a test), or of this
/// crate where it was compiled. The running package comes first, so a
/// checkout reusing another one's build directory still finds its own files.
pub fn workspace_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let package = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        package
            .parent()
            .expect("every package sits in the workspace root")
            .to_path_buf()
    })
}

/// Path of the compiled plugin `name` (the crate name under `plugins/`).
///
/// The first call in a process builds every plugin in release mode into
/// `target/wasm`; cargo makes later builds no-ops and serialises concurrent ones.
pub fn plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(build_plugins);
    let lib = dir.join(format!("{}.wasm", name.replace('-', "_")));
    if lib.exists() {
        return lib;
    }
    let bin = dir.join(format!("{name}.wasm"));
    assert!(
        bin.exists(),
        "no plugin named `{name}` was built in {}",
        dir.display()
    );
    bin
}

/// The bytes of plugin `name`.
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    std::fs::read(plugin(name)).expect("read the built plugin")
}

/// Install the wasm32-wasip2 target when rustup lacks it.
pub fn ensure_wasm_target() {
    wasmhooks_build::ensure_wasm_target().expect("the wasm32-wasip2 target");
}

fn build_plugins() -> PathBuf {
    let root = workspace_root();
    let mut packages: Vec<String> = std::fs::read_dir(root.join("plugins"))
        .expect("list plugins/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    packages.sort();
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    wasmhooks_build::build(root, &wasm_target_dir(), &packages).expect("build the plugins")
}

/// A compile cache shared by every test process: the JavaScript engine is
/// pre-initialised and compiled once per build rather than once per test.
pub fn shared_cache_dir() -> PathBuf {
    wasm_target_dir().join("test-compile-cache")
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    // A relative CARGO_TARGET_DIR is relative to the workspace root.
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace_root().join(dir))
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where plugins are built: `wasm/` inside the cargo target directory.
pub fn wasm_target_dir() -> PathBuf {
    wasmhooks_build::wasm_dir(&target_dir())
}

/// A real HTTP server on 127.0.0.1, on a free port, serving `router` until
/// dropped.
pub struct Receiver {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Start serving `router` on a free port (call from inside a tokio runtime).
    pub async fn start(router: axum::Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        Receiver::start_on(listener, router)
    }

    /// Start serving `router` on a listener the caller bound.
    pub fn start_on(listener: tokio::net::TcpListener, router: axum::Router) -> Self {
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        Receiver { addr, task }
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
