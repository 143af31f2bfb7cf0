//! The server's configuration: embedded defaults, then an optional TOML
//! file, then `WASMHOOKS_...` environment variables (nested keys joined
//! with `__`, e.g. `WASMHOOKS_SYNC__DEADLINE=300ms`). Unknown keys are
//! errors that name the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::delivery::dispatcher::DispatchSettings;
use crate::delivery::policy::RetryPolicy;
use crate::host::HostConfig;
use crate::runtime::{Limits, RuntimeConfig};
use crate::sync::SyncSettings;

/// Everything `wasmhooks serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database, compiled plugins and the
    /// generated admin token.
    pub data_dir: PathBuf,
    /// Where compiled plugins are cached (default: `data_dir/cache`).
    pub cache_dir: Option<PathBuf>,
    /// `postgres://user:pass@host/db` to use PostgreSQL instead of SQLite.
    pub database_url: Option<String>,
    /// `text` or `json` logs (on stderr).
    pub log_format: LogFormat,
    /// Tokens that may call every API route. When none is configured, the
    /// first start generates one into `data_dir/admin-token`.
    pub admin_tokens: Vec<String>,
    /// Tokens that may only post events and call sync triggers.
    pub ingest_tokens: Vec<String>,
    /// Private networks (CIDR) webhook targets may be on, e.g. `10.0.0.0/8`.
    pub private_networks: Vec<ipnet::IpNet>,
    /// Custom event names accepted besides Logto's.
    pub events: Vec<String>,
    /// Largest JSON request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest plugin upload, in bytes.
    pub max_plugin_bytes: usize,
    /// Events, deliveries and attempt logs older than this are deleted once
    /// finished, e.g. `30days`; `0s` keeps everything.
    #[serde(with = "crate::duration::text")]
    pub retention: Duration,
    /// Per-call plugin limits.
    pub limits: Limits,
    /// Plugin instances running at once.
    pub max_instances: u32,
    /// Delivery workers.
    pub delivery: DeliveryConfig,
    /// Retry policy of hooks that do not set their own.
    pub retry: RetryPolicy,
    /// Synchronous trigger deadlines.
    pub sync: SyncConfig,
    /// Plugins registered at start from files.
    pub plugins: Vec<PluginDecl>,
    /// Hooks created (or updated) at start.
    pub hooks: Vec<Declared>,
    /// Inbound sources created (or updated) at start.
    pub sources: Vec<Declared>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Delivery workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Whether this process delivers webhooks (off: ingest and sync only).
    pub enabled: bool,
    /// Most deliveries in flight at once.
    pub max_in_flight: usize,
    /// How long a claimed delivery is held before another worker may take it.
    #[serde(with = "crate::duration::text")]
    pub lease: Duration,
    /// Largest webhook response body logged, in bytes.
    pub max_response_body: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let dispatch = DispatchSettings::default();
        DeliveryConfig {
            enabled: true,
            max_in_flight: dispatch.max_in_flight,
            lease: dispatch.lease,
            max_response_body: 16 << 10,
        }
    }
}

/// Synchronous trigger deadlines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Deadline of a trigger without its own.
    #[serde(with = "crate::duration::text")]
    pub deadline: Duration,
    /// Per-trigger settings, by trigger name.
    pub triggers: BTreeMap<String, TriggerConfig>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            deadline: SyncSettings::default().default_deadline,
            triggers: BTreeMap::new(),
        }
    }
}

/// One trigger's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// Its deadline.
    #[serde(with = "crate::duration::text")]
    pub deadline: Duration,
}

/// A plugin registered from a file at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDecl {
    /// The name hooks use.
    pub name: String,
    /// Path of the component (`.wasm`), relative to the config file.
    pub path: PathBuf,
}

/// A hook or source declared in the file: its id and its definition (the
/// same fields as the API takes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Declared {
    /// Its id.
    pub id: String,
    /// The definition.
    #[serde(flatten)]
    pub spec: serde_json::Map<String, serde_json::Value>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            data_dir: PathBuf::from("wasmhooks-data"),
            cache_dir: None,
            database_url: None,
            log_format: LogFormat::Text,
            admin_tokens: Vec::new(),
            ingest_tokens: Vec::new(),
            private_networks: Vec::new(),
            events: Vec::new(),
            max_body_bytes: 1 << 20,
            max_plugin_bytes: 32 << 20,
            retention: Duration::from_secs(30 * 86_400),
            limits: Limits::default(),
            max_instances: RuntimeConfig::default().max_instances,
            delivery: DeliveryConfig::default(),
            retry: RetryPolicy::default(),
            sync: SyncConfig::default(),
            plugins: Vec::new(),
            hooks: Vec::new(),
            sources: Vec::new(),
        }
    }
}

/// Top-level keys environment variables may set; other `WASMHOOKS_...`
/// variables belong to something else and are left alone.
const ENV_KEYS: [&str; 17] = [
    "listen",
    "data_dir",
    "cache_dir",
    "database_url",
    "log_format",
    "admin_tokens",
    "ingest_tokens",
    "private_networks",
    "events",
    "max_body_bytes",
    "max_plugin_bytes",
    "retention",
    "limits",
    "max_instances",
    "delivery",
    "retry",
    "sync",
];

/// The shortest delivery lease: a third of it apart, heartbeats must reach
/// the store well before it runs out.
const MIN_LEASE: Duration = Duration::from_secs(3);

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults, then `file` (when given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        let env = Env::prefixed("WASMHOOKS_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            ENV_KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
        });
        let mut config: Config = figment
            .merge(env)
            .extract()
            .map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        if let Some(base) = file.and_then(Path::parent) {
            for plugin in &mut config.plugins {
                if plugin.path.is_relative() {
                    plugin.path = base.join(&plugin.path);
                }
            }
        }
        Ok(config)
    }

    /// Check what each setting allows and what settings must agree on.
    fn validate(&self) -> Result<(), ConfigError> {
        let lease = self.delivery.lease;
        if lease < MIN_LEASE {
            return Err(ConfigError(format!(
                "delivery.lease of {} is too short: leases are renewed every third of it, and it must be at least {}",
                humantime::format_duration(lease),
                humantime::format_duration(MIN_LEASE)
            )));
        }
        if self.delivery.max_in_flight == 0 {
            return Err(ConfigError(
                "delivery.max_in_flight must be at least 1".into(),
            ));
        }
        self.retry
            .validate()
            .map_err(|e| ConfigError(format!("[retry]: {e}")))
    }

    /// The host this configuration describes.
    pub fn host_config(&self) -> HostConfig {
        let mut host = HostConfig::new(&self.data_dir);
        host.database_url = self.database_url.clone();
        host.runtime = RuntimeConfig {
            limits: self.limits.clone(),
            cache_dir: self.cache_dir.clone(),
            max_instances: self.max_instances,
        };
        host.dispatch.max_in_flight = self.delivery.max_in_flight;
        host.dispatch.lease = self.delivery.lease;
        host.deliver = self.delivery.enabled;
        host.max_response_body = self.delivery.max_response_body;
        host.store_limits.max_logged_body_bytes = self.delivery.max_response_body;
        host.private_networks = self.private_networks.clone();
        host.custom_events = self.events.clone();
        host.default_retry = self.retry.clone();
        host.retention = (!self.retention.is_zero()).then_some(self.retention);
        host.sync = SyncSettings {
            default_deadline: self.sync.deadline,
            deadlines: self
                .sync
                .triggers
                .iter()
                .map(|(name, t)| (name.clone(), t.deadline))
                .collect(),
        };
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_and_the_environment_override_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wasmhooks.toml");
        std::fs::write(
            &file,
            r#"
            listen = "127.0.0.1:9000"
            events = ["Billing.Invoice.Paid"]
            max_instances = 8
            [limits]
            timeout = "250ms"
            [sync]
            deadline = "250ms"
            [sync.triggers.PreRegistration]
            deadline = "1s"
            [[plugins]]
            name = "enrich"
            path = "plugins/enrich.wasm"
            [[hooks]]
            id = "audit"
            events = ["PostSignIn"]
            webhook = { url = "https://example.com/hook" }
            "#,
        )
        .unwrap();
        let config = Config::load(Some(&file)).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(
            config.plugins[0].path,
            dir.path().join("plugins/enrich.wasm")
        );
        assert_eq!(config.hooks[0].id, "audit");
        let host = config.host_config();
        assert_eq!(host.runtime.limits.timeout, Duration::from_millis(250));
        assert_eq!(
            host.runtime.limits.memory_bytes,
            Limits::default().memory_bytes
        );
        assert_eq!(host.runtime.max_instances, 8);
        assert_eq!(
            host.sync.deadline("PreRegistration"),
            Duration::from_secs(1)
        );
        assert_eq!(host.sync.deadline("Other"), Duration::from_millis(250));

        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nlisten_typo = 1\n").unwrap();
        let error = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(error.contains("listen_typo"), "{error}");
        let missing = Config::load(Some(&dir.path().join("nope.toml"))).unwrap_err();
        assert!(missing.to_string().contains("does not exist"));
    }
}
