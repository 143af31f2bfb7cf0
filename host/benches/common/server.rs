//! The real `wasmhooks serve` binary for benchmarks that drive it over HTTP.

use serde_json::Value;

/// The admin token the server is started with.
pub const ADMIN: &str = "bench-admin-token-0123456789abcdef";
/// The ingest token the server is started with.
pub const INGEST: &str = "bench-ingest-token-0123456789abcdef";

/// A running server, killed when dropped.
pub struct Server {
    process: wasmhooks_testkit::serve::Running,
    /// A keep-alive client for it.
    pub http: reqwest::Client,
}

impl Server {
    /// Start the binary with `config` (TOML) and its data in `dir`.
    pub fn start(dir: &std::path::Path, config: &str) -> Server {
        let mut command = wasmhooks_testkit::serve::command(
            env!("CARGO_BIN_EXE_wasmhooks"),
            dir,
            config,
            ADMIN,
            INGEST,
        );
        command
            .env("RUST_LOG", "error")
            .env_remove("RUST_BACKTRACE");
        Server {
            process: wasmhooks_testkit::serve::spawn(command),
            http: reqwest::Client::new(),
        }
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        &self.process.url
    }

    /// POST `body` to the admin route `path`, expecting success.
    pub async fn admin(&self, path: &str, body: Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url()))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }

    /// Upload the built plugin `name` under its own name.
    pub async fn upload(&self, name: &str) {
        let bytes = std::fs::read(wasmhooks_testkit::plugin(name)).unwrap();
        let response = self
            .http
            .post(format!("{}/v1/plugins?name={name}", self.url()))
            .bearer_auth(ADMIN)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "upload {name}: {}",
            response.status()
        );
    }

    /// Peak resident memory of the server process, in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}
