//! `wasmhooks serve`: the HTTP server on the embedding API, with
//! configuration from defaults, a file and the environment.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::api::{self, BodyLimits, Tokens};
use crate::config::{Config, LogFormat};
use crate::console;
use crate::host::Host;
use crate::runtime::content_hash;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// A TOML configuration file (see the README for every key).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address, overriding the configuration (`127.0.0.1:0` picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory, overriding the configuration.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl ServeArgs {
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        super::init_logging(config.log_format == LogFormat::Json, "warn,wasmhooks=info");
        let tokens = tokens(&config)?;
        let host = Host::start(config.host_config()).await?;
        declare(&host, &config).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, data_dir = %config.data_dir.display(), "wasmhooks listening");
        println!("wasmhooks listening on http://{address}");
        std::io::stdout().flush()?;

        let limits = BodyLimits {
            json: config.max_body_bytes,
            plugin: config.max_plugin_bytes,
        };
        let app = api::router(host.clone(), tokens.clone(), limits).merge(console::router(
            host.clone(),
            tokens,
            limits,
        ));
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving HTTP")?;
        tracing::info!("no longer accepting requests; finishing deliveries in flight");
        host.shutdown().await;
        tracing::info!("shut down cleanly");
        Ok(ExitCode::SUCCESS)
    }
}

/// Resolve on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// The configured tokens; with no admin token configured, the one kept in
/// the data directory, made (and printed, once) on the first start.
fn tokens(config: &Config) -> anyhow::Result<Tokens> {
    let mut admin = config.admin_tokens.clone();
    if admin.is_empty() {
        admin.push(stored_admin_token(&config.data_dir)?);
    }
    Ok(Tokens::new(&admin, &config.ingest_tokens))
}

fn stored_admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("admin-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_string());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let token = format!("whk_{}", hex::encode(rand::random::<[u8; 24]>()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{token}")?;
    println!(
        "generated an admin token (kept in {}, shown only now): {token}",
        path.display()
    );
    Ok(token)
}

/// Register the plugins and hooks the configuration declares. A plugin
/// whose bytes are already stored is left alone (its machine code comes
/// from the compile cache).
async fn declare(host: &Host, config: &Config) -> anyhow::Result<()> {
    let stored = host.plugins().await?;
    for plugin in &config.plugins {
        let bytes = std::fs::read(&plugin.path).with_context(|| {
            format!(
                "plugin `{}`: reading {}",
                plugin.name,
                plugin.path.display()
            )
        })?;
        let hash = content_hash(&bytes);
        if stored
            .iter()
            .any(|p| p.record.name == plugin.name && p.record.hash == hash)
        {
            continue;
        }
        host.put_plugin(&plugin.name, bytes)
            .await
            .with_context(|| format!("plugin `{}` ({})", plugin.name, plugin.path.display()))?;
    }
    for hook in &config.hooks {
        host.put_hook(&hook.id, serde_json::Value::Object(hook.spec.clone()))
            .await
            .with_context(|| format!("hook `{}` in the configuration", hook.id))?;
    }
    for source in &config.sources {
        host.put_source(&source.id, serde_json::Value::Object(source.spec.clone()))
            .await
            .with_context(|| format!("source `{}` in the configuration", source.id))?;
    }
    Ok(())
}
